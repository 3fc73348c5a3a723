//! `relec bench stage`: incidents/s through the rules stage on Kafka with the whole rule
//! pack, against a bare consumer that only reads and decodes the same topic, alternating
//! round by round in one run on the same cluster; then the engine's own figures from
//! `relec bench rules` (one core, no Kafka; rhai against native Rust).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use relec_ingest::simulate::{Simulation, demo};
use relec_plumbing::{
    Config,
    kafka::Kafka,
    telemetry::{self, Telemetry},
};
use relec_rules::{
    processor::route_keys,
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
    stage::RulesStage,
};
use relec_schemas::{IncidentEvent, validate::validate};
use tokio_util::sync::CancellationToken;

/// Incidents per producer batch while the topic is filled; batches go one after the
/// other so every route's incidents land in the order the simulator made them.
const PUBLISH_BATCH: usize = 5_000;
/// How often the stage's metrics are read while it works.
const POLL: Duration = Duration::from_millis(10);
/// How long one measurement may take before the run is declared stuck.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Alerts are counted once no transition has come for this long with nothing left to
/// read: the router finds an input partition idle a second after its last record (and
/// asks again about the others before event time passes them), and the last days close
/// only when those marks arrive.
const SETTLE: Duration = Duration::from_secs(2);
/// The longest wait for that, after which the alerts are counted as they are.
const MAX_SETTLE: Duration = Duration::from_secs(15);

/// What `relec bench stage` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub days: Option<u32>,
    pub scale: Option<f64>,
    pub partitions: i32,
    pub rounds: usize,
    pub commit_interval: Option<Duration>,
    pub evaluations: u64,
}

/// The stage's own account of one round, read from its metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Incidents the router has read from the input topic.
    incidents: u64,
    processed: u64,
    duplicate: u64,
    late: u64,
    skipped: u64,
    commits: u64,
    commit_seconds: f64,
    aborts: u64,
    firing: u64,
    resolved: u64,
    evaluations: u64,
    evaluation_seconds: f64,
    partitions: i64,
    /// Records left to read on the stage's input topics; `None` before the first
    /// statistics.
    lag: Option<i64>,
}

impl Counts {
    /// Routed copies the stage has finished with, whatever their outcome.
    fn copies(&self) -> u64 {
        self.processed + self.duplicate + self.late + self.skipped
    }

    fn transitions(&self) -> u64 {
        self.firing + self.resolved
    }

    fn read(telemetry: &Telemetry) -> Self {
        let metric = gathered(telemetry);
        let value = |name: &str, label| metric(name, label).unwrap_or(0.0);
        let observed = |name: &str| value(name, None);
        let lag = metric("relec_rules_consumer_lag", None).map(|v| v as i64);
        let events = |outcome| value("relec_rules_events_total", Some(("outcome", outcome))) as u64;
        let transitions = |status| {
            value(
                "relec_rules_alert_transitions_total",
                Some(("status", status)),
            ) as u64
        };
        Self {
            incidents: value("relec_rules_incidents_total", None) as u64,
            processed: events("processed"),
            duplicate: events("duplicate"),
            late: events("late"),
            skipped: events("skipped"),
            commits: value("relec_rules_commits_total", None) as u64,
            commit_seconds: observed("relec_rules_commit_duration_seconds"),
            aborts: value("relec_rules_aborts_total", None) as u64,
            firing: transitions("firing"),
            resolved: transitions("resolved"),
            evaluations: value("relec_rules_evaluations_total", None) as u64,
            evaluation_seconds: observed("relec_rules_evaluation_duration_seconds"),
            partitions: value("relec_rules_partitions", None) as i64,
            lag,
        }
    }
}

/// One stage round: how long it took in all, how long until it owned its partitions, what
/// its metrics said then, and once event time had caught up.
#[derive(Debug)]
struct StageRound {
    timing: Timing,
    /// CPU time this process spent until the measurement ended (the stage's, all threads).
    cpu_secs: f64,
    /// The same by thread name (those that used any).
    threads: BTreeMap<String, f64>,
    ready_secs: f64,
    timed: Counts,
    settled: Counts,
}

pub async fn run(config: &Config, options: Options) -> anyhow::Result<ExitCode> {
    // The stage's logs (alert transitions among them) would bury the table; RUST_LOG asks
    // for them on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        telemetry::init_logs(&config.telemetry)?;
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut sim = demo();
    if let Some(days) = options.days {
        sim.days = days;
        sim.scenarios.retain(|s| s.day() < days);
    }
    if let Some(scale) = options.scale {
        sim.scale = scale;
    }
    let (days, scale) = (sim.days, sim.scale);
    let events: Vec<IncidentEvent> = Simulation::new(sim).events().collect();
    anyhow::ensure!(!events.is_empty(), "the simulator gave no events");
    let n = events.len() as u64;

    let (rules, expected) = routed_copies(config, &options.dir, &events)?;

    let partitions = options.partitions.max(1);
    let mut base = config.clone();
    base.topics.incidents.name = format!("relec.bench.{run}.incidents");
    base.topics.incidents.partitions = partitions;
    base.topics.rules_repartition.partitions = partitions;
    base.topics.rules_changelog.partitions = partitions;
    base.rules.dir = options.dir.clone();
    if let Some(interval) = options.commit_interval {
        base.rules.commit_interval = interval;
    }
    let kafka = Kafka::connect(&base)?;
    let topic = base.topics.incidents.name.clone();

    // Everything is on the topic before either path starts: the stage's event time follows
    // its slowest input partition, so a partition still being written would hold it back.
    // Round 0 is a warm-up, not counted: a broker's first consumer group and first
    // transactional producer create its internal topics, which took a first bare round
    // 3.4 s instead of 0.3 s on a fresh broker.
    let rounds: Vec<Config> = (0..=options.rounds.max(1))
        .map(|round| {
            let mut c = base.clone();
            round_topics(&mut c, &run, round);
            c.rules.group = format!("relec-bench-{run}-rules-{round}");
            c.rules.instance = Some("bench".to_owned());
            c
        })
        .collect();
    for c in &rounds {
        kafka.create_topics(&c.topics).await?;
    }
    // This run's topics go when it ends, however it ends: a broker left with every run's
    // topics (about 30 partitions a round) does more background work in the next one.
    let mut names = vec![topic.clone()];
    for c in &rounds {
        let t = &c.topics;
        for spec in [
            &t.incidents_rejected,
            &t.alerts,
            &t.rules_repartition,
            &t.rules_changelog,
        ] {
            names.push(spec.name.clone());
        }
    }
    let measured = async {
        let started = Instant::now();
        let producer = kafka
            .record_producer::<IncidentEvent>("bench", &topic)
            .await?;
        for chunk in events.chunks(PUBLISH_BATCH) {
            let results = producer
                .send_all(chunk.iter().map(|e| (e.route.as_str(), e)))
                .await;
            let failures = results.iter().filter(|r| r.is_err()).count();
            anyhow::ensure!(failures == 0, "{failures} incidents were not published");
        }
        let published_secs = started.elapsed().as_secs_f64();
        drop(events);

        println!(
            "rules stage vs bare consumer on {}: {n} demo incidents ({days} days, scale {scale}) \
             on {partitions} partitions, published in {published_secs:.1} s",
            kafka.bootstrap_servers()
        );
        println!(
            "{rules} rules from {}, {expected} routed copies ({:.2} per incident), commit interval {:?}, \
             commits at most {} of the time",
            options.dir.display(),
            expected as f64 / n as f64,
            base.rules.commit_interval,
            base.rules.max_commit_share
        );
        println!(
            "{:<6} {:<14} {:>9} {:>7} {:>12} {:>10} {:>10} {:>8} {:>8} {:>10} {:>11} {:>6} {:>6}",
            "round",
            "path",
            "seconds",
            "cpu s",
            "incidents/s",
            "sustained",
            "copies/s",
            "ready s",
            "commits",
            "commit ms",
            "transitions",
            "late",
            "dups"
        );
        let (mut bare_times, mut stage_times) = (Vec::new(), Vec::new());
        let mut cpu_secs: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        let mut last = None;
        let (warm_up, rounds) = rounds.split_first().expect("a warm-up round and one more");
        let bare_warm_up = bare(&kafka, &topic, &format!("relec-bench-{run}-bare-0"), n).await?;
        let stage_warm_up = stage(
            warm_up,
            &Kafka::connect_like(&kafka, warm_up),
            expected,
            false,
        )
        .await?;
        println!(
            "{:<6} {:<14} {:>9.2}  (warm-up, not counted)\n{:<6} {:<14} {:>9.2}  (warm-up, not counted)",
            0, "bare consumer", bare_warm_up.secs, 0, "rules stage", stage_warm_up.timing.secs
        );
        for (round, c) in (1..).zip(rounds) {
            let cpu = process_cpu_secs();
            let b = bare(
                &kafka,
                &topic,
                &format!("relec-bench-{run}-bare-{round}"),
                n,
            )
            .await?;
            let bare_cpu = process_cpu_secs() - cpu;
            println!(
                "{round:<6} {:<14} {:>9.2} {:>7.2} {:>12.0} {:>10.0}",
                "bare consumer",
                b.secs,
                bare_cpu,
                n as f64 / b.secs,
                n as f64 / b.sustained_secs()
            );
            bare_times.push(b);
            cpu_secs.0.push(bare_cpu);

            let s = stage(c, &Kafka::connect_like(&kafka, c), expected, true).await?;
            let (k, settled) = (&s.timed, &s.settled);
            println!(
                "{round:<6} {:<14} {:>9.2} {:>7.2} {:>12.0} {:>10.0} {:>10.0} {:>8.2} {:>8} {:>10.1} {:>11} {:>6} {:>6}",
                "rules stage",
                s.timing.secs,
                s.cpu_secs,
                n as f64 / s.timing.secs,
                n as f64 / s.timing.sustained_secs(),
                k.copies() as f64 / s.timing.sustained_secs(),
                s.ready_secs,
                k.commits,
                k.commit_seconds * 1000.0 / k.commits.max(1) as f64,
                settled.transitions(),
                settled.late,
                settled.duplicate
            );
            let mut threads: Vec<_> = s.threads.iter().collect();
            threads.sort_by(|a, b| b.1.total_cmp(a.1));
            let threads: Vec<String> = (threads.iter())
                .map(|(name, secs)| format!("{name} {secs:.2}"))
                .collect();
            println!("       CPU s by thread: {}", threads.join(", "));
            if settled.aborts > 0 {
                println!(
                    "       ({} aborted transactions: their input was processed again, so this \
                     round's figures count it twice)",
                    settled.aborts
                );
            }
            stage_times.push(s.timing);
            cpu_secs.1.push(s.cpu_secs);
            last = Some(s);
        }

        let median_rate =
            |times: &[Timing], secs: fn(&Timing) -> f64| n as f64 / median(times.iter().map(secs));
        for (what, secs) in [
            ("from start", (|t| t.secs) as fn(&Timing) -> f64),
            ("sustained, from the first record", Timing::sustained_secs),
        ] {
            let (bare_rate, stage_rate) = (
                median_rate(&bare_times, secs),
                median_rate(&stage_times, secs),
            );
            println!(
                "median {what}: bare consumer {bare_rate:.0} incidents/s, rules stage \
                 {stage_rate:.0} incidents/s; ratio stage/bare: {:.2} (target >= 0.6)",
                stage_rate / bare_rate
            );
        }
        let (bare_cpu, stage_cpu) = (median(cpu_secs.0), median(cpu_secs.1));
        println!(
            "median CPU time of this process per incident (the broker's not included): bare \
             consumer {:.2} µs, rules stage {:.2} µs ({:.1}x)",
            bare_cpu * 1e6 / n as f64,
            stage_cpu * 1e6 / n as f64,
            stage_cpu / bare_cpu.max(f64::EPSILON)
        );
        if let Some(StageRound { timed, settled, .. }) = &last {
            println!(
                "last stage round, while measured: {} commits taking {:.2} s in all, {} rule \
                 evaluations taking {:.2} s in all",
                timed.commits, timed.commit_seconds, timed.evaluations, timed.evaluation_seconds
            );
            println!(
                "  once event time caught up: {} copies processed, {} late, {} duplicate, \
                 {} skipped; {} alert transitions ({} firing, {} resolved)",
                settled.processed,
                settled.late,
                settled.duplicate,
                settled.skipped,
                settled.transitions(),
                settled.firing,
                settled.resolved
            );
        }
        if let Some(peak) = peak_rss() {
            println!(
                "peak resident memory of this process: {:.0} MiB",
                peak as f64 / 1_048_576.0
            );
        }
        anyhow::Ok(())
    }
    .await;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Err(e) = kafka.delete_topics(&names).await {
        eprintln!("this run's topics were not deleted: {e}");
    }
    measured?;
    if options.evaluations > 0 {
        println!();
        return super::bench_rules::run(&options.dir, options.evaluations);
    }
    Ok(ExitCode::SUCCESS)
}

/// The rules of `dir`, and what the stage must get through for `events`: a copy per group
/// key for each valid incident, and one `skipped` count for each incident its screen
/// refuses.
pub(super) fn routed_copies(
    config: &Config,
    dir: &Path,
    events: &[IncidentEvent],
) -> anyhow::Result<(usize, u64)> {
    let engine = engine(&Limits::default());
    let (rules, errors) = load_dir(&engine, dir);
    anyhow::ensure!(
        errors.is_empty(),
        "{}: rules with problems (the stage would leave them out): {errors:?}",
        dir.display()
    );
    anyhow::ensure!(!rules.is_empty(), "{}: no rules", dir.display());
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let copies = events
        .iter()
        .map(|e| {
            if validate(e, now, config.ingest.clock_skew).is_empty() {
                route_keys(&rules, e).len() as u64
            } else {
                1
            }
        })
        .sum();
    Ok((rules.len(), copies))
}

/// Names the stage's topics of one round apart from every other run's and round's; the
/// incidents topic is shared by all rounds.
fn round_topics(config: &mut Config, run: &str, round: usize) {
    let t = &mut config.topics;
    for (suffix, spec) in [
        ("rejected", &mut t.incidents_rejected),
        ("alerts", &mut t.alerts),
        ("repartition", &mut t.rules_repartition),
        ("changelog", &mut t.rules_changelog),
    ] {
        spec.name = format!("relec.bench.{run}.{round}.{suffix}");
    }
}

/// How long one path took over the whole topic: from its start, so joining the group
/// counts, and from its first record on (sustained, start-up left out).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub secs: f64,
    pub first_secs: f64,
}

impl Timing {
    pub fn sustained_secs(&self) -> f64 {
        (self.secs - self.first_secs).max(f64::EPSILON)
    }
}

/// Time for a fresh consumer group to read and decode the whole topic (`n` records),
/// from creating the consumer, so joining the group counts as it does for the stage.
pub(super) async fn bare(
    kafka: &Kafka,
    topic: &str,
    group: &str,
    n: u64,
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let consumer = kafka.record_consumer::<IncidentEvent>("bench-bare", group, &[topic])?;
    let (mut read, mut failed) = (0u64, 0u64);
    let mut first_secs = None;
    let finished = tokio::time::timeout(MAX_WAIT, async {
        while read < n {
            let consumed = consumer.next().await?;
            first_secs.get_or_insert_with(|| started.elapsed().as_secs_f64());
            failed += u64::from(std::hint::black_box(&consumed.record).is_err());
            read += 1;
        }
        anyhow::Ok(())
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    match finished {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("the bare consumer read {read} of {n} records in {MAX_WAIT:?}"),
    }
    anyhow::ensure!(failed == 0, "{failed} of {n} records did not decode");
    Ok(Timing {
        secs,
        first_secs: first_secs.unwrap_or(secs),
    })
}

/// Runs the stage on `config`'s fresh topics and group until its metrics show every one
/// of the `expected` routed copies handled (the measurement), lets event time catch up
/// if `settle` (for the alert count), and stops it.
async fn stage(
    config: &Config,
    kafka: &Kafka,
    expected: u64,
    settle: bool,
) -> anyhow::Result<StageRound> {
    let telemetry = Telemetry::new();
    let stage = RulesStage::build(config, kafka, &telemetry.registry).await?;
    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let started = Instant::now();
    let cpu = process_cpu_secs();
    let threads_before = thread_cpu_secs();
    let mut task = tokio::spawn(stage.run(token.clone()));
    let (mut ready_secs, mut first_secs) = (None, None);
    let (secs, cpu_secs, threads) = loop {
        let counts = Counts::read(&telemetry);
        if ready_secs.is_none() && counts.partitions > 0 {
            ready_secs = Some(started.elapsed().as_secs_f64());
        }
        if first_secs.is_none() && counts.incidents > 0 {
            // Metrics are read every POLL: the first record was read at most that long ago.
            // (Not the first copy processed: copies become readable only once the router's
            // first transaction commits, and the routing before it is the stage's work too.)
            first_secs = Some(started.elapsed().saturating_sub(POLL).as_secs_f64());
        }
        if counts.copies() >= expected {
            let mut threads = thread_cpu_secs();
            for (name, secs) in &mut threads {
                *secs -= threads_before.get(name).copied().unwrap_or(0.0);
            }
            threads.retain(|_, secs| *secs > 0.0);
            break (
                started.elapsed().as_secs_f64(),
                process_cpu_secs() - cpu,
                threads,
            );
        }
        if task.is_finished() {
            (&mut task).await??;
            anyhow::bail!(
                "the stage stopped after {} of {expected} copies",
                counts.copies()
            );
        }
        if started.elapsed() > MAX_WAIT {
            anyhow::bail!(
                "the stage handled {} of {expected} copies in {MAX_WAIT:?}",
                counts.copies()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let timed = Counts::read(&telemetry);
    let (mut transitions, mut changed) = (timed.transitions(), Instant::now());
    let settled = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let counts = Counts::read(&telemetry);
        if counts.transitions() != transitions {
            (transitions, changed) = (counts.transitions(), Instant::now());
        }
        let caught_up = counts.lag == Some(0) && changed.elapsed() >= SETTLE;
        if !settle || caught_up || started.elapsed().as_secs_f64() > secs + MAX_SETTLE.as_secs_f64()
        {
            break counts;
        }
    };
    token.cancel();
    task.await??;
    Ok(StageRound {
        timing: Timing {
            secs,
            first_secs: first_secs.unwrap_or(secs),
        },
        ready_secs: ready_secs.unwrap_or(secs),
        cpu_secs,
        threads,
        timed,
        settled,
    })
}

/// The registry's metrics as of now, as a lookup: the values of `name`'s series (only
/// those labelled `label`, if given) summed, a histogram's as the sum of its
/// observations; `None` if no series matches.
pub(super) fn gathered(
    telemetry: &Telemetry,
) -> impl Fn(&str, Option<(&str, &str)>) -> Option<f64> {
    let families = telemetry.registry.gather();
    move |name, label| {
        families
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric())
            .filter(|m| {
                label.is_none_or(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == k && l.value() == v)
                })
            })
            // Only the field of the metric's own type is set; the others read as zero.
            .map(|m| {
                m.get_counter().get_value()
                    + m.get_gauge().get_value()
                    + m.get_histogram().get_sample_sum()
            })
            .reduce(|a, b| a + b)
    }
}

/// CPU time (user and system, all threads) this process has used so far, in seconds, at
/// the kernel's clock-tick resolution (10 ms); 0 where /proc is missing.
pub(super) fn process_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0.0, |stat| stat_cpu_secs(&stat).1)
}

/// A /proc `stat` line's command name and its CPU time (user and system), in seconds.
fn stat_cpu_secs(stat: &str) -> (&str, f64) {
    // The name is between the first '(' and the last ')' (it may hold spaces); after it,
    // state is the first field, utime and stime the 12th and 13th.
    let close = stat.rfind(')').unwrap_or(stat.len());
    let name = stat
        .find('(')
        .map_or("", |open| &stat[(open + 1).min(close)..close]);
    let ticks: u64 = (stat.get(close + 1..).unwrap_or_default().split_whitespace())
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    (name, ticks as f64 / 100.0)
}

/// CPU time (user and system) this process's live threads have used so far, in seconds,
/// summed by thread name (lanes and librdkafka's broker threads share theirs); empty
/// where /proc is missing.
fn thread_cpu_secs() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (name, secs) = stat_cpu_secs(&stat);
        let name = name.trim_end_matches(|c: char| c.is_ascii_digit());
        *by_name.entry(name.to_owned()).or_default() += secs;
    }
    by_name
}

/// Peak resident set size of this process, in bytes (Linux only).
pub(super) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The middle value (the upper one of an even count); rounds are at least one.
fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
