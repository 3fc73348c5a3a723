//! The chaos suite: the whole pipeline (`relec ingest`, `relec rules`, `relec notify`, each
//! a process of its own, from `relec::pipeline`) under a steady load of simulated incidents
//! through the ingest API, on a private Kafka broker of this suite's own (so stopping it
//! harms no other test), while faults are injected: kill -9 of each stage in turn, twice;
//! a broker stop and restart; one webhook endpoint hanging; a second rules instance joining
//! the group and leaving it. After each, the transitions on the alerts topic
//! (read_committed) are compared with a reference run of the same input without faults,
//! and the webhooks received are counted by idempotency key: no transition lost, none
//! twice, and no notification repeated unless it was in flight when the notifier was
//! killed (it then carries the same key). The SMTP outage of a minute is
//! `notify_stage::smtp_down_for_a_minute_then_up_every_email_once`.
//!
//! Run by tests/run.sh after the workspace's tests (`--ignored`: it takes about four
//! minutes and two cores):
//! `cargo test -p relec --test chaos -- --ignored --nocapture`.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use relec::pipeline::{
    Hit, Pipeline, Receiver, Spec, StageKind, StageProcess, free_port, settle, subscriptions,
};
use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::kafka::Kafka;
use relec_schemas::{Alert, AlertStatus, IncidentEvent};
use relec_tests::{group_lag, read_committed, unique};

/// 2025-01-06, a Monday.
const START_MS: i64 = 1_736_121_600_000;
const DAY_MS: i64 = 86_400_000;
/// `rules.lateness`. Reports later than this after their day are left out of the input
/// (see [`input`]).
const LATENESS: &str = "3d";
const LATENESS_MS: i64 = 3 * DAY_MS;
/// Reports kept must arrive this much before their day closes: batches of the load reach
/// the partitions a little apart, so event time may run ahead of a report by that much.
const LATE_MARGIN_MS: i64 = DAY_MS;
/// Days of simulated incidents (about 800 a day).
const DAYS: u32 = 40;
/// Incidents per second offered; the load lasts about DAYS * 800 / RATE seconds.
const RATE: f64 = 1_500.0;
/// Incidents per request.
const BATCH: usize = 100;
/// How long the load may go on retrying one batch (a stage or the broker down).
const BATCH_DEADLINE: Duration = Duration::from_secs(120);
/// The broker's smallest session timeout: a killed member holds its partitions this long.
const SESSION_TIMEOUT: &str = "6s";
/// How long the broker stays down.
const BROKER_DOWN: Duration = Duration::from_secs(8);
/// How long a stage may take to start, and the pipeline to settle after the load.
const READY: Duration = Duration::from_secs(90);
const SETTLE: Duration = Duration::from_secs(180);
/// The receiver's endpoints: `ncp` always answers, `slow` hangs when told to.
const HOOKS: [&str; 2] = ["ncp", "slow"];

// ---------------------------------------------------------------------------------------
// A private broker: the test bed's own script, on ports and a directory of this suite's.
// ---------------------------------------------------------------------------------------

struct Broker {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Self {
        let broker = Self {
            dir: dir.join("bed"),
            port: free_port().expect("port"),
            controller_port: free_port().expect("port"),
        };
        // The jars the shared bed fetched serve this broker too (no second Maven run).
        let shared = std::env::var("RELEC_BED_DIR").unwrap_or_else(|_| "/tmp/relec-bed".into());
        let state = broker.dir.join("kafka");
        std::fs::create_dir_all(&state).expect("bed dir");
        for entry in std::fs::read_dir(Path::new(&shared).join("kafka"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("libs-")
                && entry.path().join(".complete").exists()
            {
                let _ = std::os::unix::fs::symlink(entry.path(), state.join(name));
            }
        }
        broker.script("start");
        broker
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs tests/bed/kafka.sh `action` for this broker.
    fn script(&self, action: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bed/kafka.sh");
        let output = Command::new("bash")
            .arg(script)
            .arg(action)
            .env("RELEC_BED_DIR", &self.dir)
            .env("RELEC_KAFKA_PORT", self.port.to_string())
            .env(
                "RELEC_KAFKA_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            // Its pipeline speaks plaintext; no SSL or SASL_SSL listener to collide with
            // the shared bed's ports.
            .env("RELEC_KAFKA_SSL_PORT", "off")
            .env("RELEC_KAFKA_SASL_PORT", "off")
            .output()
            .expect("run kafka.sh");
        assert!(
            output.status.success(),
            "kafka.sh {action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.script("stop");
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The input and the load.
// ---------------------------------------------------------------------------------------

/// The simulator's stream with a spike and a mass-casualty event, less the reports that
/// arrive after their day closes (or within [`LATE_MARGIN_MS`] of it). Whether such a report
/// is late depends on how far apart the partitions were read at that moment, which faults
/// change on purpose; on-time reports give the same transitions in every run, so a
/// difference can only be a lost or repeated one. Lateness has tests of its own in
/// tests/rules_stage.rs.
fn input() -> Vec<IncidentEvent> {
    let config = SimConfig {
        seed: 7,
        start_ms: START_MS,
        days: DAYS,
        scale: 1.0,
        scenarios: [
            "spike:AFG-IRN-NIMROZ@day=25,days=5,factor=4",
            "casualty:IRN-TUR-VAN@day=20,dead=12,missing=5",
        ]
        .iter()
        .map(|s| s.parse().expect("scenario"))
        .collect(),
        background_casualties: true,
    };
    Simulation::new(config)
        .events()
        .filter(|e| {
            let day_end = (e.occurred_at.div_euclid(DAY_MS) + 1) * DAY_MS;
            e.reported_at <= day_end + LATENESS_MS - LATE_MARGIN_MS
        })
        .collect()
}

/// Publishes the input through the ingest API in order, one request at a time (so a batch
/// that fails is sent again before any later one, and reports keep their order), at
/// [`RATE`]; `done` counts the batches accepted.
struct Load {
    done: AtomicUsize,
    batches: usize,
    retries: AtomicUsize,
}

impl Load {
    fn progress(&self) -> f64 {
        self.done.load(Ordering::Relaxed) as f64 / self.batches as f64
    }

    async fn run(self: Arc<Self>, url: String, key: String, events: Arc<Vec<IncidentEvent>>) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let started = tokio::time::Instant::now();
        for (i, chunk) in events.chunks(BATCH).enumerate() {
            let due = started + Duration::from_secs_f64((i * BATCH) as f64 / RATE);
            tokio::time::sleep_until(due).await;
            let until = Instant::now() + BATCH_DEADLINE;
            loop {
                let answer = client.post(&url).bearer_auth(&key).json(chunk).send().await;
                match answer {
                    Ok(r) if r.status() == 200 => break,
                    Ok(r) if r.status().is_client_error() => {
                        panic!(
                            "ingest refused batch {i}: {}",
                            r.text().await.unwrap_or_default()
                        )
                    }
                    // Ingest down (killed) or unavailable (the broker down): the same batch
                    // again, as an agency's client would.
                    _ => {
                        assert!(
                            Instant::now() < until,
                            "batch {i} not accepted in {BATCH_DEADLINE:?}"
                        );
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------
// One run of the pipeline over the input, with or without a fault.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// kill -9 of ingest, rules, notify, ingest, rules, notify, at shares of the load.
    Kills,
    Broker,
    HangingWebhook,
    Rebalance,
}

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    published: usize,
    load_retries: usize,
    transitions: Vec<Alert>,
    hits: Vec<Hit>,
    /// When the notifier was killed, and when it was up again.
    notifier_kills: Vec<(Instant, Instant)>,
    /// Stages that exited without being killed (and were started again), with why.
    exits: Vec<String>,
    faults: Vec<String>,
    secs: f64,
}

/// The running stages, restarted like a supervisor would when one exits by itself.
struct Stages {
    pipeline: Pipeline,
    running: HashMap<StageKind, StageProcess>,
    exits: Vec<String>,
}

impl Stages {
    async fn supervise(&mut self) {
        for kind in StageKind::ALL {
            let exited = match self.running.get_mut(&kind) {
                Some(stage) => stage.check_running().err(),
                None => None,
            };
            if let Some(e) = exited {
                let first: String = format!("{e:#}")
                    .lines()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ");
                self.exits.push(format!("{kind}: {first}"));
                self.restart(kind).await;
            }
        }
    }

    /// The end of each running stage's log, for a failure message.
    fn logs(&self, lines: usize) -> String {
        let mut text = String::new();
        for (kind, stage) in &self.running {
            text += &format!("--- {kind} ({}), last {lines} lines:\n", stage.instance);
            text += &stage.log_tail(lines);
            text += "\n";
        }
        text
    }

    async fn restart(&mut self, kind: StageKind) {
        self.running.remove(&kind);
        let stage = self.pipeline.start(kind, "a", READY).await;
        let stage = stage.unwrap_or_else(|e| panic!("{kind} did not start again: {e:#}"));
        self.running.insert(kind, stage);
    }

    async fn kill(&mut self, kind: StageKind) {
        let stage = self.running.remove(&kind).expect("running");
        stage.kill().expect("kill -9");
        self.restart(kind).await;
    }

    /// Until the load has done `share` of its batches, keeping the stages running.
    async fn until(&mut self, load: &Load, share: f64) {
        let until = Instant::now() + SETTLE;
        while load.progress() < share {
            assert!(
                Instant::now() < until,
                "the load stalled at {:.0}%\n{}",
                load.progress() * 100.0,
                self.logs(40)
            );
            self.supervise().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn run(
    broker: &Broker,
    scratch: &Path,
    name: &str,
    events: &Arc<Vec<IncidentEvent>>,
    fault: Fault,
) -> Outcome {
    let started = Instant::now();
    let receiver = Receiver::start(relec::pipeline::WEBHOOK_SECRET)
        .await
        .expect("receiver");
    let hooks: Vec<(&str, String)> = HOOKS.iter().map(|h| (*h, receiver.url(h))).collect();
    let pipeline = Pipeline::prepare(Spec {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_relec")),
        brokers: broker.brokers(),
        dir: scratch.join(name),
        rules_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/pack"),
        partitions: 3,
        lateness: LATENESS.into(),
        commit_interval: "100ms".into(),
        session_timeout: SESSION_TIMEOUT.into(),
        subscriptions: subscriptions(&hooks, "2s"),
        notifier: "breaker_failures = 3\nbreaker_open_for = \"1s\"\n\
                   [notifier.retry]\ninitial_backoff = \"200ms\"\nmax_backoff = \"2s\"\nmax_attempts = 1000\n"
            .into(),
        smtp_port: free_port().expect("port"),
    })
    .expect("pipeline");
    let kafka = Kafka::connect(&pipeline.config).expect("connect");
    kafka
        .create_topics(&pipeline.config.topics)
        .await
        .expect("topics");
    let mut stages = Stages {
        running: HashMap::new(),
        exits: Vec::new(),
        pipeline,
    };
    for kind in StageKind::ALL {
        stages.restart(kind).await;
    }
    let load = Arc::new(Load {
        done: AtomicUsize::new(0),
        batches: events.len().div_ceil(BATCH),
        retries: AtomicUsize::new(0),
    });
    let publishing = tokio::spawn(load.clone().run(
        stages.pipeline.ingest_url.clone(),
        stages.pipeline.key.clone(),
        events.clone(),
    ));

    let mut faults = Vec::new();
    let mut notifier_kills = Vec::new();
    match fault {
        Fault::None => {}
        Fault::Kills => {
            let order = [StageKind::Ingest, StageKind::Rules, StageKind::Notify];
            for (i, kind) in order.iter().cycle().take(6).enumerate() {
                stages.until(&load, 0.1 + 0.13 * i as f64).await;
                let at = Instant::now();
                stages.kill(*kind).await;
                if *kind == StageKind::Notify {
                    notifier_kills.push((at, Instant::now()));
                }
                faults.push(format!("kill -9 {kind} at {:.0}%", load.progress() * 100.0));
            }
        }
        Fault::Broker => {
            stages.until(&load, 0.3).await;
            faults.push(format!("broker stopped at {:.0}%", load.progress() * 100.0));
            broker.script("stop");
            tokio::time::sleep(BROKER_DOWN).await;
            broker.script("resume");
            faults.push(format!("broker back after {BROKER_DOWN:?}"));
        }
        Fault::HangingWebhook => {
            stages.until(&load, 0.2).await;
            receiver.hang("slow", true);
            faults.push(format!("`slow` hangs from {:.0}%", load.progress() * 100.0));
            stages.until(&load, 0.7).await;
            receiver.hang("slow", false);
            faults.push(format!(
                "`slow` answers again from {:.0}%",
                load.progress() * 100.0
            ));
        }
        Fault::Rebalance => {
            stages.until(&load, 0.25).await;
            let second = stages
                .pipeline
                .start(StageKind::Rules, "b", READY)
                .await
                .expect("rules b");
            faults.push(format!("rules b joined at {:.0}%", load.progress() * 100.0));
            stages.until(&load, 0.65).await;
            assert!(
                second.terminate().await.expect("SIGTERM"),
                "rules b did not leave cleanly"
            );
            faults.push(format!("rules b left at {:.0}%", load.progress() * 100.0));
        }
    }
    stages.until(&load, 1.0).await;
    publishing.await.expect("the load");
    // Everything read and committed, then quiet. The alerts topic is written in
    // transactions: a partition whose last record is a commit marker stays one short.
    let c = stages.pipeline.config.clone();
    let groups = [
        (c.rules.group.clone(), c.topics.incidents.name.clone(), 0),
        (
            c.notifier.group.clone(),
            c.topics.alerts.name.clone(),
            i64::from(c.topics.alerts.partitions),
        ),
    ];
    let until = Instant::now() + SETTLE;
    for (group, topic, markers) in &groups {
        loop {
            let lag = group_lag(&kafka, group, topic).await;
            if lag <= *markers {
                break;
            }
            if Instant::now() >= until {
                panic!(
                    "{name}: {group} did not commit {topic} to its end ({lag} behind) \
                     after faults {faults:?}, exits {:?}\n{}",
                    stages.exits,
                    stages.logs(40)
                );
            }
            stages.supervise().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    stages.supervise().await;
    settle(&mut stages.running, &receiver, SETTLE)
        .await
        .expect("settled");
    let transitions = read_committed::<Alert>(&kafka, &c.topics.alerts.name).await;
    for (_, stage) in stages.running.drain() {
        stage.terminate().await.expect("SIGTERM");
    }
    Outcome {
        published: events.len(),
        load_retries: load.retries.load(Ordering::Relaxed),
        transitions,
        hits: receiver.hits(),
        notifier_kills,
        exits: stages.exits,
        faults,
        secs: started.elapsed().as_secs_f64(),
    }
}

// ---------------------------------------------------------------------------------------
// Counting.
// ---------------------------------------------------------------------------------------

/// A transition as the rules stage decides it, without the wall-clock parts.
fn identity(a: &Alert) -> String {
    format!(
        "{} {:?} {} {} {} {}",
        a.fingerprint, a.status, a.starts_at, a.window_end, a.generated_at, a.value
    )
}

fn multiset(t: &[Alert]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for a in t {
        *m.entry(identity(a)).or_insert(0) += 1;
    }
    m
}

/// The counts of one run against the reference.
#[derive(Debug, Default)]
struct Counts {
    published: usize,
    expected: usize,
    transitions: usize,
    lost: Vec<String>,
    duplicated: Vec<String>,
    /// Per endpoint: notifications delivered (distinct keys), repeats of a key.
    delivered: BTreeMap<String, (usize, usize)>,
    /// Repeated keys not explained by a notifier kill (received before it, again after).
    unexplained_repeats: Vec<String>,
    /// Alerts whose end state no delivered notification of an endpoint carries.
    unnotified: Vec<String>,
}

fn count(outcome: &Outcome, reference: &BTreeMap<String, usize>) -> Counts {
    let got = multiset(&outcome.transitions);
    let mut counts = Counts {
        published: outcome.published,
        expected: reference.values().sum(),
        transitions: outcome.transitions.len(),
        ..Counts::default()
    };
    for (id, want) in reference {
        let have = got.get(id).copied().unwrap_or(0);
        if have < *want {
            counts.lost.push(id.clone());
        }
    }
    for (id, have) in &got {
        let want = reference.get(id).copied().unwrap_or(0);
        if *have > want {
            counts
                .duplicated
                .push(format!("{id} x{have} (expected {want})"));
        }
    }
    for hook in HOOKS {
        let hits: Vec<&Hit> = outcome
            .hits
            .iter()
            .filter(|h| h.hook == hook && h.delivered)
            .collect();
        let mut by_key: BTreeMap<&str, Vec<&Hit>> = BTreeMap::new();
        for h in &hits {
            by_key.entry(h.key.as_str()).or_default().push(h);
        }
        let repeats: usize = by_key.values().map(|v| v.len() - 1).sum();
        counts
            .delivered
            .insert(hook.to_owned(), (by_key.len(), repeats));
        for (key, v) in by_key.iter().filter(|(_, v)| v.len() > 1) {
            // Allowed only as the in-flight delivery of a killed notifier: the first copy
            // before the kill, the next ones after the restart, one per kill.
            let straddles = v.windows(2).all(|w| {
                outcome
                    .notifier_kills
                    .iter()
                    .any(|(killed, up)| w[0].at <= *killed && w[1].at >= *up)
            });
            let same = v.windows(2).all(|w| w[0].alerts == w[1].alerts);
            if !(straddles && same && v.len() <= outcome.notifier_kills.len() + 1) {
                counts
                    .unexplained_repeats
                    .push(format!("{hook} {key} x{}", v.len()));
            }
        }
        // As in Alertmanager, a notification carries a group's state at its flush: an
        // alert that fired and resolved between two flushes may never be sent, and how
        // transitions fall into flushes depends on timing. What must hold is the end
        // state: each alert's last episode, if it fires, was delivered firing; if it
        // resolved after being delivered firing, its resolution was delivered too.
        let carried = |fp: &str, status: AlertStatus, starts_at: i64| {
            hits.iter().any(|h| {
                (h.alerts.iter())
                    .any(|n| n.fingerprint == fp && n.status == status && n.starts_at == starts_at)
            })
        };
        let mut last: BTreeMap<&str, &Alert> = BTreeMap::new();
        for a in &outcome.transitions {
            let later = last
                .get(a.fingerprint.as_str())
                .is_none_or(|l| (a.starts_at, a.status as u8) >= (l.starts_at, l.status as u8));
            if later {
                last.insert(&a.fingerprint, a);
            }
        }
        for a in last.values() {
            let missing = match a.status {
                AlertStatus::Firing => !carried(&a.fingerprint, AlertStatus::Firing, a.starts_at),
                AlertStatus::Resolved => {
                    carried(&a.fingerprint, AlertStatus::Firing, a.starts_at)
                        && !carried(&a.fingerprint, AlertStatus::Resolved, a.starts_at)
                }
            };
            if missing {
                counts.unnotified.push(format!("{hook}: {}", identity(a)));
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the chaos suite: about four minutes on a broker of its own; tests/run.sh runs it"]
async fn chaos_loses_and_repeats_nothing() {
    let started = Instant::now();
    let scratch = std::env::temp_dir().join(unique("relec-chaos"));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let broker = Broker::start(&scratch);
    let events = Arc::new(input());
    let reference = run(&broker, &scratch, "reference", &events, Fault::None).await;
    let expected = multiset(&reference.transitions);
    let scenarios = [
        ("reference (no fault)", Fault::None, reference),
        (
            "kill -9 each stage twice",
            Fault::Kills,
            run(&broker, &scratch, "kills", &events, Fault::Kills).await,
        ),
        (
            "broker stop and restart",
            Fault::Broker,
            run(&broker, &scratch, "broker", &events, Fault::Broker).await,
        ),
        (
            "one webhook hanging",
            Fault::HangingWebhook,
            run(&broker, &scratch, "hang", &events, Fault::HangingWebhook).await,
        ),
        (
            "rules instance joins, leaves",
            Fault::Rebalance,
            run(&broker, &scratch, "rebalance", &events, Fault::Rebalance).await,
        ),
    ];
    println!(
        "chaos suite: {} incidents per run ({DAYS} days, {RATE:.0}/s through the ingest API)",
        events.len()
    );
    println!(
        "{:<30} {:>9} {:>8} {:>6} {:>5} {:>5} {:>13} {:>13} {:>6} {:>7}",
        "scenario",
        "published",
        "expected",
        "alerts",
        "lost",
        "dups",
        "ncp delivered",
        "slow delivered",
        "exits",
        "seconds"
    );
    let mut failures = Vec::new();
    for (name, _, outcome) in &scenarios {
        let c = count(outcome, &expected);
        let hook = |h: &str| {
            let (n, r) = c.delivered[h];
            format!("{n} (+{r} rep)")
        };
        println!(
            "{name:<30} {:>9} {:>8} {:>6} {:>5} {:>5} {:>13} {:>13} {:>6} {:>7.0}",
            c.published,
            c.expected,
            c.transitions,
            c.lost.len(),
            c.duplicated.len(),
            hook("ncp"),
            hook("slow"),
            outcome.exits.len(),
            outcome.secs
        );
        for f in &outcome.faults {
            println!("    fault: {f}");
        }
        println!(
            "    the load sent a batch again {} times",
            outcome.load_retries
        );
        for e in &outcome.exits {
            println!("    exited by itself (started again): {e}");
        }
        for (what, list) in [
            ("lost", &c.lost),
            ("duplicated", &c.duplicated),
            ("repeated notification", &c.unexplained_repeats),
            ("end state never notified", &c.unnotified),
        ] {
            for item in list.iter().take(10) {
                println!("    {what}: {item}");
            }
            if !list.is_empty() {
                failures.push(format!("{name}: {} {what}", list.len()));
            }
        }
    }
    println!("chaos suite took {:.0} s", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        !expected.is_empty(),
        "the reference run gave no transitions"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&scratch);
}
