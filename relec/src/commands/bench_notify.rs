//! `relec bench notify`: the notifier stage on Kafka delivering webhooks to a receiver in
//! this process on 127.0.0.1 that verifies every Standard Webhooks signature. Two phases
//! per round, each round with a fresh stage, topics and consumer group: latency (alerts
//! published one by one at a steady moderate rate, the time from each publish to its
//! webhook's arrival) and throughput (a burst of alerts published at once, deliveries/s
//! until the last arrives). Every alert is a group of its own with `group_wait` 0, so
//! each is exactly one delivery and no waiting by design is in the figures.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use relec::pipeline::{Receiver, WEBHOOK_SECRET};
use relec_notifier::stage::NotifierStage;
use relec_plumbing::{
    Config,
    kafka::{Kafka, RecordProducer},
    telemetry::{self, Telemetry},
};
use relec_schemas::{Alert, AlertStatus, Tlp, sample};
use tokio_util::sync::CancellationToken;

use super::bench_stage::{gathered, peak_rss};
use crate::cli::NotifyBenchArgs as Options;

/// The issue's targets on this 2-core machine.
const TARGET_RATE: f64 = 2_000.0;
const TARGET_P99_MS: f64 = 50.0;
/// How long the stage may take to become ready, and the first delivery to arrive.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// How long the deliveries of one phase may take to arrive after its last publish.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(300);
/// How often arrivals are counted while waiting for them.
const POLL: Duration = Duration::from_millis(2);
/// Alerts per producer batch in the throughput phase.
const PUBLISH_BATCH: usize = 1_000;
/// The receiver's endpoint.
const HOOK: &str = "bench";

/// When each of a phase's alerts arrived, verified, by fingerprint (first arrival first).
type Arrivals = HashMap<String, Vec<Instant>>;

/// Waits until every one of `fingerprints` has arrived with a verified signature among
/// the requests from the `since`-th on, at most `deadline`.
async fn arrivals(
    receiver: &Receiver,
    since: usize,
    fingerprints: &[String],
    deadline: Duration,
) -> anyhow::Result<Arrivals> {
    let until = Instant::now() + deadline;
    loop {
        // Counting is cheap; the requests are looked at once there are enough of them.
        if receiver.count() >= since + fingerprints.len() {
            let hits = receiver.hits();
            let mut at = Arrivals::new();
            for hit in hits.iter().skip(since).filter(|h| h.verified) {
                for alert in &hit.alerts {
                    at.entry(alert.fingerprint.clone())
                        .or_default()
                        .push(hit.at);
                }
            }
            if fingerprints.iter().all(|fp| at.contains_key(fp)) {
                return Ok(at);
            }
            if Instant::now() > until {
                let unverified = hits.iter().skip(since).filter(|h| !h.verified).count();
                let arrived = fingerprints
                    .iter()
                    .filter(|fp| at.contains_key(*fp))
                    .count();
                anyhow::bail!(
                    "{arrived} of {} deliveries arrived within {deadline:?} ({} requests, {} \
                     with a bad signature)",
                    fingerprints.len(),
                    hits.len() - since,
                    unverified
                );
            }
        } else if Instant::now() > until {
            anyhow::bail!(
                "{} requests of {} deliveries arrived within {deadline:?}",
                receiver.count() - since,
                fingerprints.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// When each of `fingerprints` first arrived, and how many arrived more than once.
fn first_arrivals(at: &Arrivals, fingerprints: &[String]) -> (Vec<Instant>, usize) {
    let first = fingerprints.iter().map(|fp| at[fp][0]).collect();
    let repeated = (fingerprints.iter()).filter(|fp| at[*fp].len() > 1).count();
    (first, repeated)
}

/// The figures of one round.
#[derive(Debug)]
struct Round {
    /// Latency phase: ms from publish to arrival, sorted.
    latencies_ms: Vec<f64>,
    /// Latency phase: seconds into the phase at which each alert over the p99 target was
    /// published, in order: one stall or a steady tail.
    slow_at: Vec<f64>,
    /// Latency phase: checkpoints committed, and how many of them took over 50 ms.
    slow_checkpoints: (u64, u64),
    /// Throughput phase: deliveries/s from the first publish to the last arrival.
    rate: f64,
    /// Throughput phase: seconds from the first publish to the last arrival.
    secs: f64,
    /// Deliveries that arrived more than once, both phases.
    repeated: usize,
    checkpoints: u64,
    checkpoint_ms: f64,
}

pub async fn run(config: &Config, options: &Options) -> anyhow::Result<ExitCode> {
    // The stage's logs would bury the table; RUST_LOG asks for them on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        telemetry::init_logs(&config.telemetry)?;
    }
    anyhow::ensure!(
        options.rate > 0.0 && options.rate.is_finite(),
        "--rate must be positive"
    );
    anyhow::ensure!(options.seconds >= 0.0, "--seconds must not be negative");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let scratch = std::env::temp_dir().join(format!("relec-bench-notify-{run}"));
    std::fs::create_dir_all(&scratch)?;
    let _scratch = RemoveOnDrop(scratch.clone());
    let receiver = Receiver::start(WEBHOOK_SECRET).await?;
    let subscriptions = scratch.join("subscriptions.toml");
    std::fs::write(&subscriptions, subscriptions_toml(&receiver.url(HOOK)))?;

    let mut base = config.clone();
    base.notifier.subscriptions = subscriptions;
    if let Some(n) = options.endpoint_concurrency {
        base.notifier.endpoint_concurrency = n;
    }
    let kafka = Kafka::connect(&base)?;
    let latency_alerts = (options.rate * options.seconds).round() as u64;
    println!(
        "notifier stage on {}: webhooks to a receiver on 127.0.0.1 that verifies every \
         signature; each alert its own group, group_wait 0; endpoint concurrency {}",
        kafka.bootstrap_servers(),
        base.notifier.endpoint_concurrency
    );
    println!(
        "per round (fresh stage, topics, group): latency phase {latency_alerts} alerts at \
         {} alerts/s, then throughput phase {} alerts published at once",
        options.rate, options.alerts
    );
    println!(
        "{:<6} {:>13} {:>9} {:>9} {:>9} {:>9} {:>13} {:>9} {:>12} {:>9}",
        "round",
        "deliveries/s",
        "seconds",
        "p50 ms",
        "p99 ms",
        "max ms",
        "latency n",
        "repeats",
        "checkpoints",
        "ckpt ms"
    );
    let mut rounds = Vec::new();
    for round in 1..=options.rounds.max(1) {
        let mut c = base.clone();
        let t = &mut c.topics;
        for (suffix, spec) in [
            ("alerts", &mut t.alerts),
            ("dlq", &mut t.notifications_dlq),
            ("deliveries", &mut t.notifier_deliveries),
            ("silences", &mut t.notifier_silences),
        ] {
            spec.name = format!("relec.bench.{run}.{round}.{suffix}");
        }
        c.notifier.group = format!("relec-bench-{run}-notifier-{round}");
        let kafka = Kafka::connect_like(&kafka, &c);
        kafka.create_topics(&c.topics).await?;
        let r = one_round(&c, &kafka, &receiver, options, round).await?;
        println!(
            "{round:<6} {:>13.0} {:>9.2} {:>9.1} {:>9.1} {:>9.1} {:>13} {:>9} {:>12} {:>9.1}",
            r.rate,
            r.secs,
            percentile(&r.latencies_ms, 0.5),
            percentile(&r.latencies_ms, 0.99),
            percentile(&r.latencies_ms, 1.0),
            r.latencies_ms.len(),
            r.repeated,
            r.checkpoints,
            r.checkpoint_ms
        );
        if let (Some(first), Some(last)) = (r.slow_at.first(), r.slow_at.last()) {
            println!(
                "       over {TARGET_P99_MS:.0} ms: {} alerts, published {first:.2}-{last:.2} s into the \
                 phase; {} of {} checkpoints took over 50 ms",
                r.slow_at.len(),
                r.slow_checkpoints.1,
                r.slow_checkpoints.0
            );
        }
        rounds.push(r);
    }

    let range = |f: &dyn Fn(&Round) -> f64| {
        let values: Vec<f64> = rounds.iter().map(f).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let (rate_lo, rate_hi) = range(&|r| r.rate);
    let (p50_lo, p50_hi) = range(&|r| percentile(&r.latencies_ms, 0.5));
    let (p99_lo, p99_hi) = range(&|r| percentile(&r.latencies_ms, 0.99));
    let (max_lo, max_hi) = range(&|r| percentile(&r.latencies_ms, 1.0));
    let repeated: usize = rounds.iter().map(|r| r.repeated).sum();
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "throughput: {rate_lo:.0}-{rate_hi:.0} deliveries/s; target >= {TARGET_RATE:.0}: \
         ratio {:.2}-{:.2}, {} in every round",
        rate_lo / TARGET_RATE,
        rate_hi / TARGET_RATE,
        met(rate_lo >= TARGET_RATE)
    );
    println!(
        "latency at {} alerts/s: p50 {p50_lo:.1}-{p50_hi:.1} ms, p99 {p99_lo:.1}-{p99_hi:.1} ms, \
         max {max_lo:.1}-{max_hi:.1} ms; p99 target <= {TARGET_P99_MS:.0} ms: p99/target \
         {:.2}-{:.2}, {} in every round",
        options.rate,
        p99_lo / TARGET_P99_MS,
        p99_hi / TARGET_P99_MS,
        met(p99_hi <= TARGET_P99_MS)
    );
    println!("deliveries that arrived more than once: {repeated}");
    if let Some(peak) = peak_rss() {
        println!(
            "peak resident memory of this process: {:.0} MiB",
            peak as f64 / 1_048_576.0
        );
    }
    if options.json {
        let json = serde_json::json!({
            "bench": "notify",
            "rounds": rounds.iter().map(|r| serde_json::json!({
                "deliveries_per_second": r.rate,
                "throughput_alerts": options.alerts,
                "latency_rate": options.rate,
                "latency_alerts": r.latencies_ms.len(),
                "p50_ms": percentile(&r.latencies_ms, 0.5),
                "p99_ms": percentile(&r.latencies_ms, 0.99),
                "over_target_published_at_s": r.slow_at,
                "max_ms": percentile(&r.latencies_ms, 1.0),
                "repeated": r.repeated,
                "checkpoints": r.checkpoints,
                "checkpoint_ms": r.checkpoint_ms,
            })).collect::<Vec<_>>(),
            "target_deliveries_per_second": TARGET_RATE,
            "target_p99_ms": TARGET_P99_MS,
        });
        println!("{json}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One subscriber whose one webhook takes every alert; `group_by = ["..."]` makes each
/// alert (distinct labels) a group of its own, flushed at once.
fn subscriptions_toml(url: &str) -> String {
    format!(
        r#"[[subscribers]]
id = "bench"
country = "TUR"
clearance = "AMBER_STRICT"
[[subscribers.webhooks]]
name = "receiver"
url = {url:?}
secret = {WEBHOOK_SECRET:?}
format = "native"
timeout = "10s"

[[receivers]]
name = "bench"
channels = ["bench/webhook/receiver"]

[route]
receiver = "bench"
group_by = ["..."]
group_wait = "0s"
group_interval = "5m"
repeat_interval = "4h"
"#
    )
}

/// A firing GREEN alert of its own group, generated now.
fn alert(run: &str, phase: &str, i: u64) -> Alert {
    let mut a = sample::alert(7, i);
    a.fingerprint = format!("{run}-{phase}-{i}");
    a.status = AlertStatus::Firing;
    a.ends_at = None;
    a.handling = Tlp::Green;
    a.labels.insert("bench".to_owned(), a.fingerprint.clone());
    a.generated_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    a
}

async fn one_round(
    config: &Config,
    kafka: &Kafka,
    receiver: &Receiver,
    options: &Options,
    round: usize,
) -> anyhow::Result<Round> {
    let telemetry = Telemetry::new();
    let stage = NotifierStage::build(config, kafka, &telemetry.registry).await?;
    let token = CancellationToken::new();
    let _cancel = token.clone().drop_guard();
    let health = telemetry.health.clone();
    let mut task = tokio::spawn({
        let token = token.clone();
        async move { stage.run(&health, token).await }
    });
    // The alerts' publisher sends each at once (no linger): latency is counted from the
    // publish call, and the time it would wait to fill a batch is not the notifier's.
    let producer = Arc::new(
        kafka
            .eager()
            .record_producer::<Alert>("bench", &config.topics.alerts.name)
            .await?,
    );
    let tag = format!("r{round}");

    // Warm up: the group joined, the connection to the receiver open.
    let warm = alert(&tag, "warm", 0);
    let since = receiver.count();
    producer.send(&warm.fingerprint, &warm).await?;
    let started = Instant::now();
    let warmed = std::slice::from_ref(&warm.fingerprint);
    tokio::select! {
        r = arrivals(receiver, since, warmed, START_DEADLINE) => { r?; }
        r = &mut task => {
            r??;
            anyhow::bail!("the stage stopped before its first delivery");
        }
    }
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "first delivery");

    let (latencies_ms, slow_at, repeated_latency) =
        latency(receiver, &producer, &tag, options).await?;
    let slow_checkpoints = checkpoints_over(&telemetry, 0.05);
    let (secs, repeated_burst) = throughput(receiver, &producer, &tag, options.alerts).await?;
    let metric = gathered(&telemetry);
    let checkpoints = metric("relec_notifier_checkpoints_total", None).unwrap_or(0.0);
    let checkpoint_secs = metric("relec_notifier_checkpoint_duration_seconds", None).unwrap_or(0.0);

    token.cancel();
    let drain = config.shutdown.drain_deadline + Duration::from_secs(30);
    match tokio::time::timeout(drain, task).await {
        Ok(result) => result??,
        Err(_) => anyhow::bail!("the stage did not stop within {drain:?}"),
    }
    Ok(Round {
        latencies_ms,
        slow_at,
        slow_checkpoints,
        rate: options.alerts as f64 / secs,
        secs,
        repeated: repeated_latency + repeated_burst,
        checkpoints: checkpoints as u64,
        checkpoint_ms: checkpoint_secs * 1000.0 / checkpoints.max(1.0),
    })
}

/// Publishes `rate` alerts/s for `seconds`, each on its own, and measures each one's time
/// from the publish call to its arrival; sorted ms, and how many arrived more than once.
async fn latency(
    receiver: &Receiver,
    producer: &Arc<RecordProducer<Alert>>,
    tag: &str,
    options: &Options,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
    let n = (options.rate * options.seconds).round() as u64;
    let since = receiver.count();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
    let mut sent = Vec::with_capacity(n as usize);
    let mut sends = Vec::with_capacity(n as usize);
    for i in 0..n {
        tick.tick().await;
        let a = alert(tag, "lat", i);
        sent.push((a.fingerprint.clone(), Instant::now()));
        let producer = producer.clone();
        sends.push(tokio::spawn(async move {
            producer.send(&a.fingerprint, &a).await
        }));
    }
    for send in sends {
        send.await??;
    }
    let fingerprints: Vec<String> = sent.iter().map(|(fp, _)| fp.clone()).collect();
    let at = arrivals(receiver, since, &fingerprints, ARRIVAL_DEADLINE).await?;
    let (arrived, repeated) = first_arrivals(&at, &fingerprints);
    let mut ms: Vec<f64> = (sent.iter().zip(arrived))
        .map(|((_, at), arrived)| arrived.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        .collect();
    let start = sent.first().map(|(_, at)| *at);
    let slow_at = (sent.iter().zip(&ms))
        .filter(|(_, ms)| **ms > TARGET_P99_MS)
        .filter_map(|((_, at), _)| Some(at.duration_since(start?).as_secs_f64()))
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok((ms, slow_at, repeated))
}

/// Checkpoints committed so far, and how many took longer than `secs` (a bucket bound of
/// the duration histogram).
fn checkpoints_over(telemetry: &Telemetry, secs: f64) -> (u64, u64) {
    let families = telemetry.registry.gather();
    let Some(h) = (families.iter())
        .find(|f| f.name() == "relec_notifier_checkpoint_duration_seconds")
        .and_then(|f| f.get_metric().first())
        .map(|m| m.get_histogram())
    else {
        return (0, 0);
    };
    let within = (h.get_bucket().iter())
        .find(|b| b.upper_bound() == secs)
        .map_or(0, |b| b.cumulative_count());
    (h.get_sample_count(), h.get_sample_count() - within)
}

/// Publishes `n` alerts at once and waits for all of them; seconds from the first publish
/// to the last arrival, and how many arrived more than once.
async fn throughput(
    receiver: &Receiver,
    producer: &Arc<RecordProducer<Alert>>,
    tag: &str,
    n: u64,
) -> anyhow::Result<(f64, usize)> {
    let alerts: Vec<Alert> = (0..n.max(1)).map(|i| alert(tag, "burst", i)).collect();
    let fingerprints: Vec<String> = alerts.iter().map(|a| a.fingerprint.clone()).collect();
    let since = receiver.count();
    let started = Instant::now();
    let publisher = {
        let producer = producer.clone();
        tokio::spawn(async move {
            for chunk in alerts.chunks(PUBLISH_BATCH) {
                let results = producer
                    .send_all(chunk.iter().map(|a| (a.fingerprint.as_str(), a)))
                    .await;
                let failures = results.iter().filter(|r| r.is_err()).count();
                anyhow::ensure!(failures == 0, "{failures} alerts were not published");
            }
            anyhow::Ok(())
        })
    };
    let at = arrivals(receiver, since, &fingerprints, ARRIVAL_DEADLINE).await?;
    publisher.await??;
    let (arrived, repeated) = first_arrivals(&at, &fingerprints);
    let last = arrived.into_iter().max().unwrap_or(started);
    Ok((
        last.saturating_duration_since(started).as_secs_f64(),
        repeated,
    ))
}

/// The `p`-quantile (0..=1) of sorted `values` (nearest rank); 0 if there are none.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// The bench's scratch directory (the subscriptions file), removed at the end.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.0));
    }
}
