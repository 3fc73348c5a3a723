//! `relec bench e2e`: the whole pipeline on a real broker, each stage a child process of
//! this binary (so each one's CPU time and peak memory can be read from `/proc`): the
//! simulator publishes a year of incidents through the ingest API at a set rate, the rules
//! stage turns them into alert transitions, the notifier delivers them as signed webhooks
//! to a receiver in this process. It reports the sustained rate, the latency from
//! publication to webhook receipt of the alerts that fire on the event, each stage's CPU
//! and memory, and, as the ceiling, the bare producer's and bare consumer's rates on the
//! same broker in the same run; then the rules stage's own rate over a backlog, against
//! the bare consumer's.

use std::{
    collections::{HashMap, HashSet},
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::{StreamExt, stream};
use relec::pipeline::{
    Pipeline, Receiver, Spec, StageKind, StageProcess, Usage, WEBHOOK_SECRET, metric, settle,
    subscriptions,
};
use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::{Config, kafka::Kafka};
use relec_schemas::IncidentEvent;
use serde_json::json;

use super::{bench_ingest::bare_produce, bench_stage, simulate::post};
use crate::cli::E2eBenchArgs as Options;

const DAY_MS: i64 = 86_400_000;
/// The rules that fire on the event itself (trigger "immediate"); the daily ones fire
/// when event time closes a day, so their latency says how the simulator's clock moves,
/// not how fast the pipeline is.
const IMMEDIATE_RULE: &str = "death_or_missing";
/// The receiver's one endpoint.
const HOOK: &str = "ncp";
/// Requests in flight at once to the ingest API.
const CONCURRENCY: usize = 4;
/// Events per request and producer batch of the backlog and the bare producer.
const BULK_BATCH: usize = 500;
/// How long a stage may take to become ready.
const READY: Duration = Duration::from_secs(120);
/// How often the stages' metrics are read while waiting for them.
const POLL: Duration = Duration::from_millis(100);

/// One stage's CPU and memory over a phase.
#[derive(Debug, Clone, Copy)]
struct StageFigures {
    cpu_secs: f64,
    peak_rss: u64,
}

pub async fn run(config: &Config, options: &Options) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !config.kafka.is_embedded(),
        "bench e2e measures a real broker: give --brokers (the embedded cluster lives in one \
         process, and the stages run in three)"
    );
    anyhow::ensure!(options.rate > 0.0, "--rate must be above 0");
    let max_wait = Duration::from_secs(options.max_seconds.max(1));
    let (paced, backlog) = stream_of(options);
    anyhow::ensure!(
        !paced.is_empty() && !backlog.is_empty(),
        "the simulator gave no events"
    );
    let all = paced.len() + backlog.len();
    println!(
        "end to end on {}: {} incidents over {} days (scale {}), then a backlog of {} over \
         {} days; {} partitions",
        config.kafka.brokers,
        paced.len(),
        options.days,
        options.scale,
        backlog.len(),
        options.backlog_days,
        options.partitions
    );

    // The ceiling: the bare producer and consumer over every event, on the same broker.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut bare_config = config.clone();
    bare_config.topics.incidents.name = format!("relec.e2e.{run}.bare");
    bare_config.topics.incidents.partitions = options.partitions;
    let kafka = Kafka::connect(&bare_config)?;
    kafka.create_topics(&bare_config.topics).await?;
    let producer = kafka
        .record_producer::<IncidentEvent>("bench", &bare_config.topics.incidents.name)
        .await?;
    let everything: Vec<IncidentEvent> = paced.iter().chain(&backlog).cloned().collect();
    let produce_secs = bare_produce(&producer, &everything, BULK_BATCH, CONCURRENCY).await?;
    drop(producer);
    let bare_timing = bench_stage::bare(
        &kafka,
        &bare_config.topics.incidents.name,
        &format!("relec-e2e-{run}-bare"),
        all as u64,
    )
    .await?;
    let bare_producer = all as f64 / produce_secs;
    let bare_consumer = all as f64 / bare_timing.sustained_secs();
    println!(
        "bare producer {bare_producer:.0} events/s, bare consumer {bare_consumer:.0} events/s \
         (sustained, from the first record)"
    );

    // The pipeline.
    let receiver = Receiver::start(WEBHOOK_SECRET).await?;
    let scratch = std::env::temp_dir().join(format!("relec-e2e-{run}"));
    let pipeline = Pipeline::prepare(Spec {
        binary: std::env::current_exe()?,
        brokers: config.kafka.brokers.clone(),
        dir: scratch.clone(),
        rules_dir: std::fs::canonicalize(&options.dir)?,
        partitions: options.partitions,
        lateness: humantime::format_duration(config.rules.lateness).to_string(),
        commit_interval: humantime::format_duration(config.rules.commit_interval).to_string(),
        session_timeout: "10s".into(),
        subscriptions: subscriptions(&[(HOOK, receiver.url(HOOK))], "10s"),
        notifier: String::new(),
        smtp_port: config.notifier.smtp.port,
    })?;
    let stage_kafka = Kafka::connect(&pipeline.config)?;
    stage_kafka.create_topics(&pipeline.config.topics).await?;
    let mut stages = HashMap::new();
    for kind in StageKind::ALL {
        stages.insert(kind, pipeline.start(kind, "e2e", READY).await?);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(60))
        .build()?;

    // Phase 1: a year at the offered rate, every stage live.
    let before = usages(&stages);
    let started = Instant::now();
    let sent = publish_paced(&client, &pipeline, &paced, options, max_wait).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    let lag_at_end = rules_lag(&stages[&StageKind::Rules]).await;
    let caught_up = settle(&mut stages, &receiver, max_wait).await?;
    let phase_secs = caught_up.duration_since(started).as_secs_f64();
    let after = usages(&stages);
    let phase1 = figures(&before, &after);
    let latencies = latencies(&receiver, &sent);
    let hits = receiver.hits();
    let unverified = hits.iter().filter(|h| !h.verified).count();
    let rules_text = stages[&StageKind::Rules]
        .metrics()
        .await
        .unwrap_or_default();
    let transitions = metric(&rules_text, "relec_rules_alert_transitions_total", &[]);
    let state_bytes = metric(&rules_text, "relec_rules_state_bytes", &[]);

    // Phase 2: the rules stage down while the backlog is published, then up again: its own
    // rate over the backlog, from a year of state restored from the changelog.
    let rules = stages.remove(&StageKind::Rules).expect("rules stage");
    let year_rss = rules.usage().map_or(0, |u| u.peak_rss);
    anyhow::ensure!(
        rules.terminate().await?,
        "the rules stage did not drain cleanly"
    );
    let started_backlog = Instant::now();
    publish_bulk(&client, &pipeline, &backlog).await?;
    let ingest_bulk = backlog.len() as f64 / started_backlog.elapsed().as_secs_f64();
    let (_, backlog_copies) = bench_stage::routed_copies(config, &options.dir, &backlog)?;
    let mut rules = pipeline.spawn(StageKind::Rules, "e2e")?;
    let timing = drain(&mut rules, backlog_copies, max_wait).await?;
    let rules_backlog = backlog.len() as f64 / timing.sustained_secs();
    let after_backlog = rules.usage().unwrap_or_default();
    for (_, stage) in stages.drain() {
        stage.terminate().await?;
    }
    rules.terminate().await?;

    // The report.
    let offered = paced.len() as f64 / publish_secs;
    let sustained = paced.len() as f64 / phase_secs;
    let pct = |p: f64| -> Option<f64> {
        (!latencies.is_empty())
            .then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize] * 1000.0)
    };
    let (p50, p99, max) = (pct(0.5), pct(0.99), pct(1.0));
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let ratio = rules_backlog / bare_consumer;
    println!(
        "paced phase: {} incidents offered at {offered:.0}/s (asked {:.0}/s) in {publish_secs:.1} s; \
         the rules stage {} records behind when publishing ended; everything delivered \
         {phase_secs:.1} s after the start",
        paced.len(),
        options.rate,
        lag_at_end.map_or("?".to_owned(), |l| l.to_string())
    );
    println!(
        "  {transitions:.0} alert transitions, {} webhooks received ({unverified} unverified), \
         {} latencies of `{IMMEDIATE_RULE}` firing on the event; rules state {:.1} MiB",
        hits.len(),
        latencies.len(),
        mib(state_bytes as u64)
    );
    println!(
        "{:<16} {:>10} {:>12} {:>10}",
        "stage", "CPU s", "CPU % core", "peak MiB"
    );
    for kind in StageKind::ALL {
        let f = phase1[&kind];
        println!(
            "{:<16} {:>10.1} {:>12.0} {:>10.0}",
            kind.command(),
            f.cpu_secs,
            f.cpu_secs / phase_secs * 100.0,
            mib(f.peak_rss)
        );
    }
    println!(
        "backlog: ingest took it at {ingest_bulk:.0} events/s (batches of {BULK_BATCH}); the \
         restarted rules stage read it at {rules_backlog:.0} incidents/s sustained ({:.1} s in \
         all with start-up and restore), peak {:.0} MiB",
        timing.secs,
        mib(after_backlog.peak_rss)
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    };
    println!();
    println!(
        "{:<44} {:>14} {:>14} {:>8} {:>7}",
        "figure", "measured", "target", "ratio", ""
    );
    let row = |what: &str, measured: String, target: String, ratio: Option<f64>, ok| {
        println!(
            "{what:<44} {measured:>14} {target:>14} {:>8} {:>7}",
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
            verdict(ok)
        );
    };
    row(
        "sustained events/s, end to end",
        format!("{sustained:.0}"),
        format!("{:.0}", options.rate),
        Some(sustained / options.rate),
        None,
    );
    row(
        "bare producer events/s (ceiling)",
        format!("{bare_producer:.0}"),
        "-".into(),
        None,
        None,
    );
    row(
        "bare consumer events/s (ceiling)",
        format!("{bare_consumer:.0}"),
        "-".into(),
        None,
        None,
    );
    row(
        "rules stage incidents/s / bare consumer",
        format!("{rules_backlog:.0}"),
        ">= 0.6".into(),
        Some(ratio),
        Some(ratio >= 0.6),
    );
    row("event to webhook p50", ms(p50), "-".into(), None, None);
    let at_rate = offered >= 0.95 * 5_000.0;
    row(
        "event to webhook p99",
        ms(p99),
        "<= 100 ms".into(),
        p99.map(|p| p / 100.0),
        p99.filter(|_| at_rate).map(|p| p <= 100.0),
    );
    row("event to webhook max", ms(max), "-".into(), None, None);
    let year = options.days >= 365;
    row(
        "rules stage peak RSS, one year of state",
        format!("{:.0} MiB", mib(year_rss)),
        "<= 256 MiB".into(),
        Some(mib(year_rss) / 256.0),
        year.then_some(mib(year_rss) <= 256.0),
    );
    if !at_rate {
        println!("(the p99 target is for 5,000 events/s; this run offered {offered:.0}/s)");
    }

    if let Some(out) = &options.out {
        let stage_json = |kind: StageKind| {
            let f = phase1[&kind];
            json!({ "cpu_seconds": f.cpu_secs, "cpu_share_of_core": f.cpu_secs / phase_secs,
                    "peak_rss_bytes": f.peak_rss })
        };
        let result = json!({
            "brokers": config.kafka.brokers,
            "paced": { "incidents": paced.len(), "days": options.days, "scale": options.scale,
                       "rate_asked": options.rate, "rate_offered": offered,
                       "publish_seconds": publish_secs, "seconds_to_delivered": phase_secs,
                       "sustained_events_per_second": sustained,
                       "rules_lag_when_publishing_ended": lag_at_end,
                       "alert_transitions": transitions, "webhooks": hits.len(),
                       "unverified_webhooks": unverified },
            "latency_ms": { "rule": IMMEDIATE_RULE, "samples": latencies.len(),
                            "p50": p50, "p99": p99, "max": max },
            "stages": { "ingest": stage_json(StageKind::Ingest),
                        "rules": stage_json(StageKind::Rules),
                        "notify": stage_json(StageKind::Notify) },
            "rules_state_bytes": state_bytes,
            "ceiling": { "bare_producer_events_per_second": bare_producer,
                         "bare_consumer_events_per_second": bare_consumer },
            "backlog": { "incidents": backlog.len(), "ingest_events_per_second": ingest_bulk,
                         "rules_incidents_per_second": rules_backlog,
                         "rules_seconds_with_startup": timing.secs,
                         "rules_peak_rss_bytes": after_backlog.peak_rss },
            "targets": {
                "rules_over_bare_consumer": { "measured": ratio, "target": 0.6, "met": ratio >= 0.6 },
                "p99_ms_at_5000": { "measured": p99, "target": 100.0, "rate_offered": offered,
                                     "met": p99.filter(|_| at_rate).map(|p| p <= 100.0) },
                "rules_peak_rss_mib_one_year": { "measured": mib(year_rss), "target": 256.0,
                                                  "met": year.then_some(mib(year_rss) <= 256.0) },
            },
        });
        std::fs::write(out, serde_json::to_vec_pretty(&result)?)?;
        println!("result written to {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ExitCode::SUCCESS)
}

/// The simulator's stream from a Monday far enough back that none of it lies in the
/// future: the paced days, then the backlog's, in report order.
fn stream_of(options: &Options) -> (Vec<IncidentEvent>, Vec<IncidentEvent>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let days = i64::from(options.days + options.backlog_days) + 14;
    let day0 = now / DAY_MS - days;
    // 1970-01-01 was a Thursday: day numbers 4 (mod 7) are Mondays.
    let monday = day0 - (day0 - 4).rem_euclid(7);
    let start_ms = monday * DAY_MS;
    let sim = Simulation::new(SimConfig {
        seed: 2026,
        start_ms,
        days: options.days + options.backlog_days,
        scale: options.scale,
        scenarios: Vec::new(),
        background_casualties: true,
    });
    let cut = start_ms + i64::from(options.days) * DAY_MS;
    sim.events().partition(|e| e.reported_at < cut)
}

/// Publishes `events` through the ingest API at `options.rate`, `options.batch` per
/// request, at most [`CONCURRENCY`] requests in flight; returns when each event whose
/// report may fire the immediate rule (a death or a missing person) was sent.
async fn publish_paced(
    client: &reqwest::Client,
    pipeline: &Pipeline,
    events: &[IncidentEvent],
    options: &Options,
    max_wait: Duration,
) -> anyhow::Result<HashMap<String, Instant>> {
    let batch = options.batch.max(1);
    let started = tokio::time::Instant::now();
    let sent = stream::iter(events.chunks(batch).enumerate())
        .map(|(i, chunk)| async move {
            let due = started + Duration::from_secs_f64((i * batch) as f64 / options.rate);
            tokio::time::sleep_until(due).await;
            let at = Instant::now();
            post(client, &pipeline.ingest_url, &pipeline.key, chunk).await?;
            anyhow::Ok(
                chunk
                    .iter()
                    .filter(|e| e.dead + e.missing > 0)
                    .map(|e| (e.event_id.clone(), at))
                    .collect::<Vec<_>>(),
            )
        })
        .buffer_unordered(CONCURRENCY);
    let sent: Vec<anyhow::Result<Vec<(String, Instant)>>> =
        tokio::time::timeout(max_wait, sent.collect())
            .await
            .map_err(|_| anyhow::anyhow!("publishing took longer than {max_wait:?}"))?;
    let mut map = HashMap::new();
    for batch in sent {
        map.extend(batch?);
    }
    Ok(map)
}

/// Publishes `events` through the ingest API as fast as it takes them.
async fn publish_bulk(
    client: &reqwest::Client,
    pipeline: &Pipeline,
    events: &[IncidentEvent],
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = stream::iter(events.chunks(BULK_BATCH))
        .map(|chunk| post(client, &pipeline.ingest_url, &pipeline.key, chunk))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The rules stage's consumer lag, from its metrics.
async fn rules_lag(rules: &StageProcess) -> Option<i64> {
    let text = rules.metrics().await?;
    Some(metric(&text, "relec_rules_consumer_lag", &[]) as i64)
}

/// Runs the restarted rules stage until it has handled `copies` routed copies: how long
/// from its start, and from its first copy.
async fn drain(
    rules: &mut StageProcess,
    copies: u64,
    max_wait: Duration,
) -> anyhow::Result<bench_stage::Timing> {
    let started = Instant::now();
    let mut first = None;
    loop {
        rules.check_running()?;
        let done = match rules.metrics().await {
            Some(text) => metric(&text, "relec_rules_events_total", &[]) as u64,
            None => 0,
        };
        if done > 0 && first.is_none() {
            first = Some(started.elapsed().saturating_sub(POLL).as_secs_f64());
        }
        if done >= copies {
            let secs = started.elapsed().as_secs_f64();
            return Ok(bench_stage::Timing {
                secs,
                first_secs: first.unwrap_or(secs),
            });
        }
        anyhow::ensure!(
            started.elapsed() < max_wait,
            "the rules stage handled {done} of {copies} copies in {max_wait:?}"
        );
        tokio::time::sleep(POLL / 10).await;
    }
}

fn usages(stages: &HashMap<StageKind, StageProcess>) -> HashMap<StageKind, Usage> {
    stages
        .iter()
        .map(|(k, s)| (*k, s.usage().unwrap_or_default()))
        .collect()
}

fn figures(
    before: &HashMap<StageKind, Usage>,
    after: &HashMap<StageKind, Usage>,
) -> HashMap<StageKind, StageFigures> {
    StageKind::ALL
        .iter()
        .map(|k| {
            let (b, a) = (before[k], after[k]);
            let f = StageFigures {
                cpu_secs: a.cpu_secs - b.cpu_secs,
                peak_rss: a.peak_rss,
            };
            (*k, f)
        })
        .collect()
}

/// Seconds from the publication of each incident that fired the immediate rule to the
/// first webhook carrying that alert, sorted: firing, or already resolved where it fired
/// and resolved before its group flushed (it is announced even so). Seen again later (in
/// a group's next notification, or resolved after firing), it counts once.
fn latencies(receiver: &Receiver, sent: &HashMap<String, Instant>) -> Vec<f64> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hit in receiver.hits().iter().filter(|h| h.delivered) {
        for alert in &hit.alerts {
            if alert.rule_id != IMMEDIATE_RULE {
                continue;
            }
            let Some(event) = alert.annotations.get("incident") else {
                continue;
            };
            let Some(at) = sent.get(event) else { continue };
            if seen.insert((alert.fingerprint.clone(), alert.starts_at)) {
                out.push(hit.at.saturating_duration_since(*at).as_secs_f64());
            }
        }
    }
    out.sort_by(f64::total_cmp);
    out
}
