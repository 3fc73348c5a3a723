//! The rules stage as operators run it, `relec rules` in a process of its own, against the
//! real broker: the pack fires on simulated scenarios and stays quiet on the baseline;
//! SIGKILL at random points and a second instance in the group change no alert
//! transition; rule files reload while it runs; reports arriving after their day was
//! evaluated are counted late, and arrival order within the lateness changes nothing.
//!
//! Every stream is published before the stage starts (where a test does not say
//! otherwise): event time follows the slowest input partition still being read, and one
//! the stage has caught up with stops holding it back, so months of simulated reports
//! published while the stage runs could make some of them late.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::{Config, kafka::Kafka};
use relec_rules::{
    processor::{Processor, Settings, route_keys},
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
};
use relec_schemas::{Alert, AlertStatus, IncidentEvent, WireFormat};
use relec_tests::{
    broker, config, group_lag, metric, read_committed, read_committed_raw, relec_binary, unique,
};
use tokio::sync::OnceCell;

/// 2025-01-06, a Monday.
const START_MS: i64 = 1_736_121_600_000;
const DAY_MS: i64 = 86_400_000;
/// The stage's `[rules] lateness`, and the in-memory reference's.
const LATENESS: &str = "1h";
const SETTINGS: Settings = Settings {
    lateness_ms: 3_600_000,
    horizon_days: 400,
};
/// Short, so a SIGKILL loses little and the tests do not wait on commits.
const COMMIT_INTERVAL: &str = "50ms";
/// The broker's smallest session timeout: a killed instance holds its partitions this
/// long before the group gives them to its successor.
const SESSION_TIMEOUT: &str = "6s";
/// How long a stage may take to work through a stream and fall quiet.
const SETTLE_DEADLINE: Duration = Duration::from_secs(180);
/// Nothing changed on any instance for this long, nothing left to read: it is done.
const QUIET: Duration = Duration::from_secs(3);
/// The scenario stream: a week-long spike on one route and one mass-casualty incident.
const SCENARIOS: [&str; 2] = [
    "spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4",
    "casualty:IRN-TUR-VAN@day=90,dead=12,missing=5",
];

/// `days` simulated days from [`START_MS`] (about 750 incidents a day at scale 1), in
/// report order.
fn stream(days: u32, scale: f64, scenarios: &[&str]) -> Vec<IncidentEvent> {
    let config = SimConfig {
        seed: 11,
        start_ms: START_MS,
        days,
        scale,
        scenarios: scenarios
            .iter()
            .map(|s| s.parse().expect("scenario"))
            .collect(),
        // No deaths in ordinary traffic, so "any death" fires only on the casualty scenario.
        background_casualties: false,
    };
    Simulation::new(config).events().collect()
}

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/pack")
}

/// How many rule files the pack has (its fixtures directory aside).
fn pack_rules() -> usize {
    std::fs::read_dir(pack_dir())
        .expect("the rule pack")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "rhai"))
        })
        .count()
}

/// The transitions of the pack over `events` through one in-memory processor, every day
/// closed at the end.
fn reference(events: &[IncidentEvent]) -> Vec<Alert> {
    let engine = engine(&Limits::default());
    let (rules, errors) = load_dir(&engine, &pack_dir());
    assert!(errors.is_empty(), "{errors:?}");
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    let mut p = Processor::new(Arc::new(engine), rules, SETTINGS);
    let mut transitions = Vec::new();
    for e in events {
        transitions.extend(p.process(e.clone()).transitions);
    }
    let last = events.iter().map(|e| e.reported_at).max().unwrap_or(0);
    transitions.extend(p.advance_to(last + 2 * DAY_MS).transitions);
    sorted(transitions)
}

/// Transitions in one order, whatever order the alerts topic's partitions were read in.
fn sorted(mut t: Vec<Alert>) -> Vec<Alert> {
    t.sort_by(|a, b| {
        (&a.fingerprint, a.generated_at, a.status as u8, a.window_end).cmp(&(
            &b.fingerprint,
            b.generated_at,
            b.status as u8,
            b.window_end,
        ))
    });
    t
}

fn of<'a>(t: &'a [Alert], rule: &str, status: AlertStatus) -> Vec<&'a Alert> {
    t.iter()
        .filter(|a| a.rule_id == rule && a.status == status)
        .collect()
}

/// One line per transition, for assertion messages that can be read.
fn summary(t: &[Alert]) -> String {
    t.iter()
        .map(|a| {
            format!(
                "{} {} {:?} day {} {:?} v{}",
                a.rule_id,
                a.fingerprint,
                a.status,
                (a.window_end - START_MS) / DAY_MS,
                a.labels,
                a.rule_version
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A directory of its own under the system temp dir, removed when the test passes (kept
/// with the stage logs when it fails).
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("relec-rules-stage"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One run's topics (all five, unique) and consumer group on the real broker.
struct Bed {
    config: Config,
    kafka: Kafka,
    group: String,
    scratch: Scratch,
}

impl Bed {
    async fn new() -> Self {
        let config = config(&broker(), WireFormat::SingleObject);
        let kafka = Kafka::connect(&config).expect("connect");
        kafka.create_topics(&config.topics).await.expect("topics");
        Self {
            config,
            kafka,
            group: unique("rules"),
            scratch: Scratch::new(),
        }
    }

    /// Publishes `events` to the incidents topic keyed by route, as ingest does, in order.
    async fn publish(&self, events: &[IncidentEvent]) {
        let producer = self
            .kafka
            .record_producer::<IncidentEvent>("test", &self.config.topics.incidents.name)
            .await
            .expect("producer");
        // In chunks well under the producer queue, so records are enqueued in order.
        for chunk in events.chunks(5_000) {
            for result in producer
                .send_all(chunk.iter().map(|e| (e.route.as_str(), e)))
                .await
            {
                result.expect("published");
            }
        }
    }

    /// Starts `relec rules` as instance `instance` of this run's group, on the rules in
    /// `rules`, logging to a file of the scratch dir.
    fn start(&self, instance: &str, rules: &Path, reload_interval: &str) -> Stage {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let t = &self.config.topics;
        let file = self.scratch.0.join(format!("{instance}.toml"));
        std::fs::write(
            &file,
            format!(
                "[kafka]\nbrokers = {:?}\n\
                 [kafka.consumer]\nsession_timeout = {SESSION_TIMEOUT:?}\n\
                 [topics.incidents]\nname = {:?}\n\
                 [topics.incidents_rejected]\nname = {:?}\n\
                 [topics.alerts]\nname = {:?}\n\
                 [topics.rules_repartition]\nname = {:?}\n\
                 [topics.rules_changelog]\nname = {:?}\n\
                 [rules]\ndir = {:?}\nreload_interval = {reload_interval:?}\ngroup = {:?}\n\
                 instance = {instance:?}\nlateness = {LATENESS:?}\n\
                 commit_interval = {COMMIT_INTERVAL:?}\n\
                 [telemetry]\nlisten = \"127.0.0.1:{port}\"\n",
                self.config.kafka.brokers,
                t.incidents.name,
                t.incidents_rejected.name,
                t.alerts.name,
                t.rules_repartition.name,
                t.rules_changelog.name,
                rules.display().to_string(),
                self.group,
            ),
        )
        .expect("config file");
        let log = self
            .scratch
            .0
            .join(format!("{instance}-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(relec_binary())
            .arg("--config")
            .arg(&file)
            .arg("rules")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start relec rules");
        Stage {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
        }
    }

    /// Every transition on the alerts topic (read_committed), sorted.
    async fn alerts(&self) -> Vec<Alert> {
        sorted(read_committed(&self.kafka, &self.config.topics.alerts.name).await)
    }
}

/// A running `relec rules`, killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind.
struct Stage {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stage {
    /// SIGKILL: no drain, no last commit, an open transaction left behind.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Fails the test, with the end of the log, if the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "relec rules exited ({status}); log {}:\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The /metrics text, or `None` while the listener is not up.
    async fn metrics(&self) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .expect("admin request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }
}

/// Counters that move while an instance works; all still for [`QUIET`] means done.
fn counters(text: &str) -> Vec<Option<f64>> {
    [
        "relec_rules_events_total",
        "relec_rules_alert_transitions_total",
        "relec_rules_commits_total",
        "relec_rules_aborts_total",
        "relec_rules_restores_total",
    ]
    .iter()
    .map(|name| metric(text, name, &[]))
    .collect()
}

/// Records of both input topics the run's group has not committed yet: what the stage
/// still has to do. Read from the group's committed offsets, not from the stage's lag
/// gauge (see `an_empty_input_partition_does_not_hold_event_time_back` for why the gauge
/// cannot be trusted). The repartition topic is written in transactions: a partition whose
/// last record is a transaction marker may stay one offset short of its end.
async fn remaining(bed: &Bed) -> (i64, i64) {
    let t = &bed.config.topics;
    (
        group_lag(&bed.kafka, &bed.group, &t.incidents.name).await,
        group_lag(&bed.kafka, &bed.group, &t.rules_repartition.name).await,
    )
}

/// Whether `remaining` leaves nothing but transaction markers.
fn nothing_left(bed: &Bed, (incidents, repartition): (i64, i64)) -> bool {
    incidents == 0 && repartition <= i64::from(bed.config.topics.rules_repartition.partitions)
}

/// Waits until the group has committed both input topics to their end and nothing has
/// moved on any instance for [`QUIET`]; returns each instance's last /metrics.
async fn settle(bed: &Bed, stages: &mut [&mut Stage]) -> Vec<String> {
    let started = Instant::now();
    let mut last = None;
    let mut quiet_since = Instant::now();
    loop {
        let left = remaining(bed).await;
        let mut texts = Vec::new();
        for stage in stages.iter_mut() {
            stage.assert_running();
            texts.push(stage.metrics().await);
        }
        if texts.iter().all(Option::is_some) {
            let texts: Vec<String> = texts.into_iter().flatten().collect();
            let now = (left, texts.iter().map(|t| counters(t)).collect::<Vec<_>>());
            if !nothing_left(bed, left) || last.as_ref() != Some(&now) {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= QUIET {
                return texts;
            }
            last = Some(now);
        }
        if started.elapsed() > SETTLE_DEADLINE {
            let logs: Vec<String> = stages
                .iter()
                .map(|s| format!("{}:\n{}", s.log.display(), s.log_tail()))
                .collect();
            panic!(
                "the stage did not finish in {SETTLE_DEADLINE:?}: {left:?} records left, last {last:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Publishes `events` on a fresh bed, runs one instance over them until it is done, and
/// returns the bed, the instance's last /metrics and the transitions.
async fn run_once(events: &[IncidentEvent]) -> (Bed, String, Vec<Alert>) {
    let bed = Bed::new().await;
    bed.publish(events).await;
    let mut stage = bed.start("only", &pack_dir(), "10s");
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    let alerts = bed.alerts().await;
    drop(stage);
    (bed, text, alerts)
}

/// The scenario stream through one uninterrupted instance: what the other runs of the same
/// stream are held to. Run once for the whole file, by whichever test needs it first.
async fn uninterrupted() -> &'static [Alert] {
    static RUN: OnceCell<Vec<Alert>> = OnceCell::const_new();
    RUN.get_or_init(|| async { run_once(&stream(140, 1.0, &SCENARIOS)).await.2 })
        .await
}

/// Transitions generated by `cutoff`: the stage closes a day only once every input
/// partition has moved past it, so the last day or two may stay open there while the
/// in-memory reference closes them all.
fn until(t: &[Alert], cutoff: i64) -> Vec<Alert> {
    t.iter()
        .filter(|a| a.generated_at <= cutoff)
        .cloned()
        .collect()
}

fn last_report(events: &[IncidentEvent]) -> i64 {
    events.iter().map(|e| e.reported_at).max().unwrap_or(0)
}

fn assert_same(got: &[Alert], want: &[Alert], what: &str) {
    assert!(
        got == want,
        "{what}\ngot:\n{}\nwanted:\n{}",
        summary(got),
        summary(want)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pack_fires_on_the_scenarios_and_stays_quiet_on_the_baseline() {
    let events = stream(140, 1.0, &SCENARIOS);
    let baseline = stream(140, 1.0, &[]);
    let (scenario, (bed, _, quiet)) = tokio::join!(uninterrupted(), run_once(&baseline));
    assert!(
        quiet.is_empty(),
        "alerts on the baseline:\n{}",
        summary(&quiet)
    );
    // A sole instance owns every shard: its copies skip the repartition topic (and it
    // applies its watermark markers itself).
    let repartition =
        read_committed_raw(&bed.kafka, &bed.config.topics.rules_repartition.name).await;
    let frames = (repartition.iter())
        .filter(|r| r.headers.contains_key("relec.copies"))
        .count();
    assert_eq!(
        frames, 0,
        "frames in the repartition topic of a sole instance"
    );

    let spikes = of(scenario, "route_spike", AlertStatus::Firing);
    assert!(!spikes.is_empty(), "no spike alert:\n{}", summary(scenario));
    for a in scenario.iter().filter(|a| a.rule_id == "route_spike") {
        assert_eq!(
            a.labels.get("route").map(String::as_str),
            Some("AFG-IRN-NIMROZ"),
            "{a:#?}"
        );
    }
    let fired_day = (spikes[0].window_end - START_MS) / DAY_MS;
    assert!((100..=108).contains(&fired_day), "fired on day {fired_day}");

    let deaths = of(scenario, "death_or_missing", AlertStatus::Firing);
    assert_eq!(deaths.len(), 1, "{}", summary(scenario));
    assert_eq!(deaths[0].value, 17.0);
    assert_eq!(
        deaths[0].labels.get("route").map(String::as_str),
        Some("IRN-TUR-VAN")
    );
    assert_eq!(deaths[0].evidence.len(), 1);

    let cutoff = last_report(&events) - 2 * DAY_MS;
    assert_same(
        &until(scenario, cutoff),
        &until(&reference(&events), cutoff),
        "the stage and the in-memory processor differ",
    );
}

/// SIGKILLs in one run while it works (and one more while an instance starts).
const KILLS: usize = 5;

/// xorshift64: enough randomness for kill points, and the seed in a failure message
/// reproduces them.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// How many routed copies the pack makes of `events`: one per group key they reach, what
/// `relec_rules_events_total` counts.
fn copies(events: &[IncidentEvent]) -> usize {
    let engine = engine(&Limits::default());
    let (rules, errors) = load_dir(&engine, &pack_dir());
    assert!(errors.is_empty(), "{errors:?}");
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    events.iter().map(|e| route_keys(&rules, e).len()).sum()
}

/// The copies `stage` has evaluated since it started (0 before it serves metrics).
/// Waits until `stage` has partitions of its own (it joined the group and read their
/// state back).
async fn until_assigned(stage: &mut Stage, what: &str) {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    loop {
        stage.assert_running();
        let text = stage.metrics().await.unwrap_or_default();
        if metric(&text, "relec_rules_partitions", &[]).unwrap_or(0.0) > 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} got no partitions:\n{}",
            stage.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn evaluated(stage: &Stage) -> f64 {
    let text = stage.metrics().await.unwrap_or_default();
    metric(&text, "relec_rules_events_total", &[]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_changes_no_transition() {
    let events = stream(140, 1.0, &SCENARIOS);
    let total = copies(&events) as f64;
    let bed = Bed::new().await;
    bed.publish(&events).await;
    // RELEC_TEST_SEED replays the kill points of a failed run (its message gives the seed).
    let seed = (std::env::var("RELEC_TEST_SEED").ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 | 1);
    let mut rng = seed;
    // Kill points as shares of the work rather than times, so that every kill lands
    // mid-stream however fast the stage runs: between 5 % and 90 % of the copies evaluated
    // (work done again after a kill counts twice, so they come a little early).
    let mut points: Vec<f64> = (0..KILLS)
        .map(|_| 0.05 + (next(&mut rng) % 850) as f64 / 1000.0)
        .collect();
    points.sort_by(f64::total_cmp);
    // One restart is also killed while it starts: joining the group or reading its state
    // back.
    let early = next(&mut rng) as usize % KILLS;

    // One instance name across restarts: each new process fences off the killed one's
    // transactional id, which aborts what it left open.
    let mut stage = bed.start("only", &pack_dir(), "10s");
    let mut done = 0.0; // copies evaluated by the instances killed so far
    let mut kills = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if i == early {
            let delay = Duration::from_millis(next(&mut rng) % 1500);
            tokio::time::sleep(delay).await;
            stage.assert_running();
            done += evaluated(&stage).await;
            kills.push(format!("{delay:?} after start"));
            stage.kill();
            stage = bed.start("only", &pack_dir(), "10s");
        }
        let deadline = Instant::now() + SETTLE_DEADLINE;
        let now = loop {
            stage.assert_running();
            // Only once this instance is at work, so that every kill lands mid-work.
            let now = evaluated(&stage).await;
            if now > 0.0 && done + now >= point * total {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "kill point {point} not reached (seed {seed}, kills {kills:?}):\n{}",
                stage.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(10 + next(&mut rng) % 40)).await;
        };
        // At once: the instance works on while anything else is asked (a debug build
        // routes thousands of incidents while the broker is asked what is left).
        stage.kill();
        done += now;
        // What the killed instance left to the next one (nothing moves meanwhile).
        let left = remaining(&bed).await;
        kills.push(format!("at {:.0}% ({left:?} left)", point * 100.0));
        assert!(
            !nothing_left(&bed, left),
            "the stream was done at kill {i} (seed {seed}, kills {kills:?})"
        );
        stage = bed.start("only", &pack_dir(), "10s");
    }
    // The last instance must join and read its state back (a failure to names itself).
    until_assigned(
        &mut stage,
        &format!("the last instance (seed {seed}, kills {kills:?})"),
    )
    .await;
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    assert!(
        metric(&text, "relec_rules_restores_total", &[]).unwrap_or(0.0) > 0.0,
        "the last instance read its state back"
    );
    assert_same(
        &bed.alerts().await,
        uninterrupted().await,
        &format!("killed {kills:?} (seed {seed}) vs uninterrupted"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_give_the_transitions_of_one() {
    let events = stream(140, 1.0, &SCENARIOS);
    let total = copies(&events) as f64;
    // The last reports wait until b has partitions, so that b gets work of its own however
    // fast a is. Nothing they bring is late: they were all reported after the others.
    let (early, late) = events.split_at(events.len() * 6 / 10);
    let bed = Bed::new().await;
    bed.publish(early).await;
    let mut a = bed.start("a", &pack_dir(), "10s");
    // b joins once a is well into the stream: a gives up what it had not committed on the
    // partitions b takes over, and b does it again from the committed state.
    let deadline = Instant::now() + SETTLE_DEADLINE;
    while evaluated(&a).await < 0.2 * total {
        a.assert_running();
        assert!(
            Instant::now() < deadline,
            "a did not get going:\n{}",
            a.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = bed.start("b", &pack_dir(), "10s");
    until_assigned(&mut b, "b").await;
    bed.publish(late).await;
    let texts = settle(&bed, &mut [&mut a, &mut b]).await;
    for (name, text) in ["a", "b"].iter().zip(&texts) {
        assert!(
            metric(text, "relec_rules_events_total", &[]).unwrap_or(0.0) > 0.0,
            "instance {name} evaluated nothing"
        );
    }
    assert_same(
        &bed.alerts().await,
        uninterrupted().await,
        "two instances vs one",
    );
}

/// An immediate rule: a crossing of more than 10,000 persons, which neither simulated
/// traffic nor the test's own big crossings (6,000) reach.
const OVER_10000: &str = r#"// Test rule: a very big crossing, as soon as it is reported.
fn condition(g) {
    #{ fire: g.event.persons > 10000, value: g.event.persons }
}

#{ id: "big_crossing", title: "Big crossing", severity: "low", group_by: ["route"],
   trigger: "immediate", labels: #{ route: "{{route}}" } }
"#;
/// The same rule with a lower threshold: the test's big crossings reach it.
const OVER_5000: &str = r#"// Test rule: a very big crossing, as soon as it is reported.
fn condition(g) {
    #{ fire: g.event.persons > 5000, value: g.event.persons }
}

#{ id: "big_crossing", title: "Big crossing", severity: "low", group_by: ["route"],
   trigger: "immediate", labels: #{ route: "{{route}}" } }
"#;
/// A typo: the file does not compile.
const BROKEN: &str = r#"// Test rule: a very big crossing, as soon as it is reported.
fn condition(g) {
    #{ fire: g.event.persons > , value: g.event.persons }
}

#{ id: "big_crossing", title: "Big crossing", severity: "low", group_by: ["route"],
   trigger: "immediate", labels: #{ route: "{{route}}" } }
"#;

fn versions(rules: &serde_json::Value) -> BTreeMap<String, String> {
    rules["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_owned(),
                r["version"].as_str().expect("version").to_owned(),
            )
        })
        .collect()
}

/// The reports of days `from..to` of `events`, with a crossing of 6,000 persons on the
/// Nimroz route added on day `from + 2`; returns them and the big crossing's id.
fn batch_with_big_crossing(
    events: &[IncidentEvent],
    from: i64,
    to: i64,
) -> (Vec<IncidentEvent>, String) {
    let range = START_MS + from * DAY_MS..START_MS + to * DAY_MS;
    let mut batch: Vec<IncidentEvent> = events
        .iter()
        .filter(|e| range.contains(&e.reported_at))
        .cloned()
        .collect();
    let at = batch
        .iter()
        .position(|e| {
            e.route == "AFG-IRN-NIMROZ" && e.reported_at >= START_MS + (from + 2) * DAY_MS
        })
        .expect("a Nimroz report on that day");
    let mut big = batch[at].clone();
    big.event_id = uuid::Uuid::new_v4().to_string();
    big.persons = 6_000;
    let id = big.event_id.clone();
    batch.insert(at + 1, big);
    (batch, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reload_while_the_stage_runs_and_a_broken_file_keeps_the_live_version() {
    let events = stream(30, 0.3, &[]);
    let (first, big_1) = batch_with_big_crossing(&events, 0, 10);
    let (second, big_2) = batch_with_big_crossing(&events, 10, 20);
    let (third, big_3) = batch_with_big_crossing(&events, 20, 30);
    let bed = Bed::new().await;
    let rules = bed.scratch.0.join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    for entry in std::fs::read_dir(pack_dir()).expect("pack") {
        let path = entry.expect("entry").path();
        // The rule files, not the fixtures directory.
        if path.is_file() {
            std::fs::copy(&path, rules.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let extra = rules.join("big_crossing.rhai");
    std::fs::write(&extra, OVER_10000).expect("rule file");
    // (evidence, status, version) of the rule's transitions, in that order.
    let big_crossings = |alerts: &[Alert]| -> Vec<(String, &'static str, String)> {
        let mut t: Vec<_> = alerts
            .iter()
            .filter(|a| a.rule_id == "big_crossing")
            .map(|a| {
                let status = match a.status {
                    AlertStatus::Firing => "firing",
                    AlertStatus::Resolved => "resolved",
                };
                (a.evidence.join(","), status, a.rule_version.clone())
            })
            .collect();
        t.sort();
        t
    };

    // The directory is polled rarely: the admin endpoint is what reloads, so its answer is
    // the one that reports each change.
    bed.publish(&first).await;
    let mut stage = bed.start("only", &rules, "1h");
    settle(&bed, &mut [&mut stage]).await;
    let alerts = bed.alerts().await;
    assert_eq!(
        big_crossings(&alerts),
        [],
        "6,000 is not over 10,000 ({big_1})"
    );
    let (status, live) = stage.admin(reqwest::Method::GET, "/admin/rules").await;
    assert_eq!(status, 200);
    assert_eq!(versions(&live).len(), pack_rules() + 1, "{live}");
    let v1 = versions(&live)["big_crossing"].clone();

    // (a) A changed file replaces the rule; the reports after the reload meet the new one.
    std::fs::write(&extra, OVER_5000).expect("rule file");
    let (status, outcome) = stage
        .admin(reqwest::Method::POST, "/admin/rules/reload")
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["status"], "ok", "{outcome}");
    let replaced = outcome["replaced"].as_array().expect("replaced");
    assert_eq!(replaced.len(), 1, "{outcome}");
    assert_eq!(replaced[0]["id"], "big_crossing", "{outcome}");
    assert_eq!(replaced[0]["previous"], v1.as_str(), "{outcome}");
    assert_eq!(
        replaced[0]["path"],
        extra.display().to_string(),
        "{outcome}"
    );
    let v2 = replaced[0]["version"].as_str().expect("version").to_owned();
    assert_ne!(v2, v1);
    for list in ["added", "removed", "refused"] {
        assert_eq!(outcome[list], serde_json::json!([]), "{outcome}");
    }
    let (_, live) = stage.admin(reqwest::Method::GET, "/admin/rules").await;
    assert_eq!(versions(&live)["big_crossing"], v2, "{live}");

    bed.publish(&second).await;
    settle(&bed, &mut [&mut stage]).await;
    let alerts = bed.alerts().await;
    // Fired on arrival, resolved once a later day closed without another.
    assert_eq!(
        big_crossings(&alerts),
        [
            (big_2.clone(), "firing", v2.clone()),
            (big_2.clone(), "resolved", v2.clone())
        ],
        "{}",
        summary(&alerts)
    );

    // (b) A file that does not compile is refused by name; the live version keeps running.
    std::fs::write(&extra, BROKEN).expect("rule file");
    let (status, outcome) = stage
        .admin(reqwest::Method::POST, "/admin/rules/reload")
        .await;
    assert_eq!(status, 422, "{outcome}");
    assert_eq!(outcome["status"], "refused", "{outcome}");
    let refused = outcome["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 1, "{outcome}");
    assert_eq!(refused[0]["path"], extra.display().to_string(), "{outcome}");
    assert!(
        refused[0]["error"]
            .as_str()
            .expect("error")
            .contains("big_crossing.rhai"),
        "{outcome}"
    );
    assert_eq!(refused[0]["kept"], v2.as_str(), "{outcome}");
    let text = stage.metrics().await.expect("metrics");
    assert_eq!(
        metric(&text, "relec_rules_reloads_total", &[("result", "refused")]),
        Some(1.0)
    );
    let (_, live) = stage.admin(reqwest::Method::GET, "/admin/rules").await;
    assert_eq!(versions(&live).len(), pack_rules() + 1, "{live}");
    assert_eq!(versions(&live)["big_crossing"], v2, "{live}");

    bed.publish(&third).await;
    settle(&bed, &mut [&mut stage]).await;
    let alerts = bed.alerts().await;
    let transitions = big_crossings(&alerts);
    assert!(
        transitions.contains(&(big_3.clone(), "firing", v2.clone())),
        "the kept version did not fire on {big_3}:\n{}",
        summary(&alerts)
    );
    assert!(
        transitions.iter().all(|(_, _, v)| *v == v2),
        "{}",
        summary(&alerts)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_that_do_not_decode_or_validate_are_kept_in_the_rejected_topic_once() {
    let events = stream(10, 0.2, &[]);
    let bed = Bed::new().await;
    bed.publish(&events[..events.len() / 2]).await;
    let mut invalid = events[0].clone();
    invalid.event_id = uuid::Uuid::new_v4().to_string();
    invalid.persons = -5;
    let invalid = relec_schemas::Encoder::<IncidentEvent>::single_object()
        .encode(&invalid)
        .expect("encode");
    let producer = bed.kafka.producer("native-writer").expect("producer");
    for (key, payload) in [("garbage", &b"not avro"[..]), ("invalid", &invalid)] {
        let record = rdkafka::producer::FutureRecord::to(&bed.config.topics.incidents.name)
            .key(key)
            .payload(payload);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .expect("sent");
    }
    bed.publish(&events[events.len() / 2..]).await;

    let mut stage = bed.start("only", &pack_dir(), "10s");
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    // Killed and started again: a replay of the same input writes no second copy.
    stage.kill();
    let mut stage = bed.start("only", &pack_dir(), "10s");
    settle(&bed, &mut [&mut stage]).await;
    let skipped = metric(&text, "relec_rules_events_total", &[("outcome", "skipped")]);
    assert_eq!(skipped, Some(2.0));

    let mut kept = read_committed_raw(&bed.kafka, &bed.config.topics.incidents_rejected.name).await;
    kept.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(kept.len(), 2, "{kept:?}");
    let (garbage, invalid_copy) = (&kept[0], &kept[1]);
    assert_eq!(garbage.key.as_deref(), Some(&b"garbage"[..]));
    assert_eq!(garbage.payload, b"not avro", "kept as it arrived");
    assert_eq!(garbage.headers["relec.reject.reason"], "decode");
    assert_eq!(invalid_copy.payload, invalid);
    assert_eq!(invalid_copy.headers["relec.reject.reason"], "invalid");
    assert!(
        invalid_copy.headers["relec.reject.detail"].contains("/persons: -5 is negative"),
        "{invalid_copy:?}"
    );
    assert!(
        (garbage.headers["relec.source"])
            .starts_with(&format!("{}/", bed.config.topics.incidents.name)),
        "{garbage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_published_after_their_day_was_evaluated_are_counted_late() {
    let events = stream(40, 0.3, &[]);
    // Every 20th report of days 5 to 14 is held back until the rest has been processed,
    // with its original report time: its day was evaluated long before it arrives.
    let in_days = (START_MS + 5 * DAY_MS)..(START_MS + 15 * DAY_MS);
    let (mut held, mut on_time) = (Vec::new(), Vec::new());
    for (i, e) in events.into_iter().enumerate() {
        if i % 20 == 0 && in_days.contains(&e.reported_at) {
            held.push(e);
        } else {
            on_time.push(e);
        }
    }
    assert!(held.len() > 20, "{} held", held.len());

    let bed = Bed::new().await;
    bed.publish(&on_time).await;
    let mut stage = bed.start("only", &pack_dir(), "10s");
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    let late = |text: &str| metric(text, "relec_rules_events_total", &[("outcome", "late")]);
    assert_eq!(late(&text), Some(0.0));

    bed.publish(&held).await;
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    // One count per routed copy: each held report reaches every group key the rules need.
    assert_eq!(
        late(&text),
        Some(copies(&held) as f64),
        "{} reports held",
        held.len()
    );
    assert_eq!(
        metric(
            &text,
            "relec_rules_events_total",
            &[("outcome", "processed")]
        ),
        Some(copies(&on_time) as f64)
    );
}

/// Input partitions read to their end hold event time back no longer; when a burst then
/// lands on all of them (some milliseconds apart, as a producer's batches to different
/// partitions do), the one read first must not carry event time past the others. It once
/// did, and a whole partition's reports, in order as published, counted late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_after_the_input_went_idle_counts_nothing_late() {
    let events = stream(40, 0.3, &[]);
    let (before, burst): (Vec<_>, Vec<_>) =
        (events.iter().cloned()).partition(|e| e.reported_at < START_MS + 20 * DAY_MS);
    let bed = Bed::new().await;
    bed.publish(&before).await;
    let mut stage = bed.start("only", &pack_dir(), "10s");
    settle(&bed, &mut [&mut stage]).await;
    // Every input partition is found idle a second after its last record.
    tokio::time::sleep(Duration::from_secs(2)).await;
    bed.publish(&burst).await;
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    let count = |outcome| metric(&text, "relec_rules_events_total", &[("outcome", outcome)]);
    assert_eq!(count("late"), Some(0.0));
    assert_eq!(count("processed"), Some(copies(&events) as f64));
}

/// After a restart the consumer has read nothing from an input partition with nothing new,
/// so librdkafka knows no position there: it is read to its end all the same (at its
/// committed offset), and must not hold event time back until a record comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_partition_with_nothing_new_does_not_hold_event_time_back() {
    let events = stream(40, 0.3, &[]);
    let (before, later): (Vec<_>, Vec<_>) =
        (events.into_iter()).partition(|e| e.reported_at < START_MS + 20 * DAY_MS);
    let later: Vec<_> = (later.into_iter())
        .filter(|e| e.route == "AFG-IRN-NIMROZ")
        .collect();
    let bed = Bed::new().await;
    bed.publish(&before).await;
    let mut stage = bed.start("only", &pack_dir(), "10s");
    settle(&bed, &mut [&mut stage]).await;
    stage.kill();
    bed.publish(&later).await;
    let mut stage = bed.start("only", &pack_dir(), "10s");
    let text = settle(&bed, &mut [&mut stage]).await.remove(0);
    let event_time = metric(&text, "relec_rules_watermark_seconds", &[]).expect("event time");
    assert_eq!(
        event_time as i64,
        last_report(&later) / 1000,
        "event time stopped at {} days",
        (event_time as i64 * 1000 - START_MS) as f64 / DAY_MS as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_order_within_the_lateness_changes_no_transition() {
    let events = stream(140, 1.0, &SCENARIOS);
    // Reverse every run of up to 200 reports within one hour, as if several publishers had
    // been interleaved the other way round: never more than the lateness (1 h) out of order.
    let mut shuffled = Vec::with_capacity(events.len());
    for hour in events.chunk_by(|a, b| a.reported_at / 3_600_000 == b.reported_at / 3_600_000) {
        for part in hour.chunks(200) {
            shuffled.extend(part.iter().rev().cloned());
        }
    }
    assert_ne!(shuffled, events);
    let (_, text, alerts) = run_once(&shuffled).await;
    assert_eq!(
        metric(&text, "relec_rules_events_total", &[("outcome", "late")]),
        Some(0.0)
    );
    assert_same(&alerts, uninterrupted().await, "reordered vs in order");
}

/// An input partition that holds no record is idle from the start: it must not hold event
/// time back (the stage once took idleness from librdkafka's `consumer_lag` statistic,
/// which counts from a committed offset a transactional consumer never learns, so such a
/// partition held every day open for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_input_partition_does_not_hold_event_time_back() {
    // One route only: every event lands on the same one of the three input partitions.
    let events: Vec<IncidentEvent> = stream(140, 1.0, &SCENARIOS[..1])
        .into_iter()
        .filter(|e| e.route == "AFG-IRN-NIMROZ")
        .collect();
    let expected = reference(&events);
    assert!(!expected.is_empty());
    let (_, _, alerts) = run_once(&events).await;
    let cutoff = last_report(&events) - 2 * DAY_MS;
    assert_same(
        &until(&alerts, cutoff),
        &until(&expected, cutoff),
        "one busy input partition, two empty ones",
    );
}
