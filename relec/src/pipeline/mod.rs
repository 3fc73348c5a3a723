//! The whole pipeline as operators run it, for the end-to-end benchmark and the chaos
//! suite: `relec ingest`, `relec rules` and `relec notify` each in a child process of one
//! relec binary, on run-unique topics, consumer groups and loopback ports, with a webhook
//! receiver in the calling process. Each stage's CPU time and peak memory are read from
//! `/proc`, and any stage can be killed (`kill -9`) and started again.

mod process;
mod receiver;

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use relec_plumbing::Config;

pub use self::{
    process::{StageKind, StageProcess, Usage, metric},
    receiver::{Hit, Receiver},
};

/// The countries of the simulator's routes; the pipeline's one agency reports for all.
pub const COUNTRIES: [&str; 6] = ["AFG", "BGD", "IRN", "IRQ", "PAK", "TUR"];
/// Quiet this long (nothing left, nothing moving) counts as settled.
const QUIET: Duration = Duration::from_secs(3);
/// How often the stages' metrics are read while settling.
const POLL: Duration = Duration::from_millis(100);
/// How many times a stage that exits while it starts is started.
const START_ATTEMPTS: u32 = 3;
/// The secret every webhook of the harness signs with (16 bytes or more, as required).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a pipeline run is made of. Everything not said here is the config's default.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The relec binary the stages run from (`std::env::current_exe()` in relec itself).
    pub binary: PathBuf,
    pub brokers: String,
    /// Where the config, subscriptions and the stages' logs go.
    pub dir: PathBuf,
    pub rules_dir: PathBuf,
    /// Partitions of the incidents, repartition and changelog topics.
    pub partitions: i32,
    /// `rules.lateness`, e.g. "1h".
    pub lateness: String,
    /// `rules.commit_interval`, e.g. "100ms".
    pub commit_interval: String,
    /// `kafka.consumer.session_timeout`: how long a killed member holds its partitions.
    pub session_timeout: String,
    /// The notifier's subscriptions file, as text.
    pub subscriptions: String,
    /// Extra lines of the `[notifier]` section (retry, breaker settings).
    pub notifier: String,
    /// The SMTP relay's port on 127.0.0.1 (the notifier needs one even without email).
    pub smtp_port: u16,
}

/// A prepared run: its config file on disk, the config as the stages load it, and the
/// agency key to publish with. Stages are started with [`Pipeline::spawn`].
#[derive(Debug)]
pub struct Pipeline {
    pub spec: Spec,
    pub config: Config,
    pub config_file: PathBuf,
    /// The API key of the run's agency, bound to every simulated country.
    pub key: String,
    /// `POST` incidents here; the same address across ingest restarts.
    pub ingest_url: String,
}

impl Pipeline {
    /// Writes the config and subscriptions for a run with names no other run uses, and
    /// loads the config back as the stages will.
    pub fn prepare(spec: Spec) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("create {}", spec.dir.display()))?;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let (key, hash) = relec_ingest::auth::generate_key();
        let api_port = free_port()?;
        let subscriptions = spec.dir.join("subscriptions.toml");
        std::fs::write(&subscriptions, &spec.subscriptions)?;
        let text = config_text(&spec, &run, &hash, api_port, &subscriptions);
        let config_file = spec.dir.join("relec.toml");
        std::fs::write(&config_file, text)?;
        let config = Config::load(&config_file)?;
        Ok(Self {
            spec,
            config,
            config_file,
            key,
            ingest_url: format!("http://127.0.0.1:{api_port}/v1/events"),
        })
    }

    /// Starts `kind` as a child process (rules with instance name `instance`), logging to
    /// a file of its own under the run's directory; it is ready when
    /// [`StageProcess::ready`] says so.
    pub fn spawn(&self, kind: StageKind, instance: &str) -> anyhow::Result<StageProcess> {
        StageProcess::spawn(
            &self.spec.binary,
            &self.config_file,
            kind,
            instance,
            &self.spec.dir,
        )
    }

    /// Starts `kind` and waits until it is ready, at most `deadline`: `/readyz` answers
    /// 200, and for ingest the API accepts connections too (its telemetry listener comes
    /// up first, while the API still restores its idempotency window).
    pub async fn start(
        &self,
        kind: StageKind,
        instance: &str,
        deadline: Duration,
    ) -> anyhow::Result<StageProcess> {
        let until = Instant::now() + deadline;
        let mut attempt = 1;
        loop {
            let mut stage = self.spawn(kind, instance)?;
            match self.wait_ready(&mut stage, until, deadline).await {
                Ok(()) => return Ok(stage),
                // A stage exits when the broker refuses it while it starts (a topic created
                // a moment ago without a leader yet, a broker coming back): said, and tried
                // again a few times.
                Err(e) if attempt < START_ATTEMPTS && Instant::now() < until => {
                    eprintln!(
                        "{kind} failed to start (attempt {attempt}), starting it again: {e:#}"
                    );
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_ready(
        &self,
        stage: &mut StageProcess,
        until: Instant,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        stage
            .ready(until.saturating_duration_since(Instant::now()))
            .await?;
        if stage.kind == StageKind::Ingest {
            while tokio::net::TcpStream::connect(self.config.ingest.listen)
                .await
                .is_err()
            {
                stage.check_running()?;
                anyhow::ensure!(
                    Instant::now() < until,
                    "the ingest API did not listen in {deadline:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }
}

/// The config file of a run: every topic, group and port its own.
fn config_text(spec: &Spec, run: &str, key_hash: &str, api_port: u16, subs: &Path) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "[kafka]\nbrokers = {:?}\n[kafka.consumer]\nsession_timeout = {:?}\n",
        spec.brokers, spec.session_timeout
    );
    let p = spec.partitions.max(1);
    for (section, suffix, partitions) in [
        ("incidents", "incidents", p),
        ("incidents_rejected", "rejected", 1),
        ("alerts", "alerts", 2),
        ("rules_repartition", "repartition", p),
        ("rules_changelog", "changelog", p),
        ("notifications_dlq", "dlq", 1),
        ("notifier_deliveries", "deliveries", 3),
        ("notifier_silences", "silences", 1),
    ] {
        let _ = write!(
            t,
            "[topics.{section}]\nname = \"relec.e2e.{run}.{suffix}\"\npartitions = {partitions}\n"
        );
    }
    let countries: Vec<String> = COUNTRIES.iter().map(|c| format!("{c:?}")).collect();
    let _ = write!(
        t,
        "[ingest]\nlisten = \"127.0.0.1:{api_port}\"\n\
         [[ingest.agencies]]\nid = \"E2E\"\ncountries = [{}]\nkey_sha256 = {key_hash:?}\n\
         [rules]\ndir = {:?}\ngroup = \"relec-e2e-{run}-rules\"\nlateness = {:?}\n\
         commit_interval = {:?}\n\
         [notifier]\nsubscriptions = {:?}\ngroup = \"relec-e2e-{run}-notifier\"\n\
         reload_interval = \"10s\"\n{}\n\
         [notifier.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n\
         from = \"RELEC EWS <relec@relec.example>\"\ntimeout = \"2s\"\n\
         [telemetry]\nlisten = \"127.0.0.1:0\"\n",
        countries.join(", "),
        spec.rules_dir.display().to_string(),
        spec.lateness,
        spec.commit_interval,
        subs.display().to_string(),
        spec.notifier,
        spec.smtp_port,
    );
    t
}

/// A loopback port free at the time of asking.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Subscriptions for the harness: one subscriber with a native-format webhook per
/// `(name, url)`, cleared for every handling code, every alert a group of its own and sent
/// at once, so that no wait of the notifier's hides how fast the pipeline is. That takes
/// a short `group_interval` too: an alert that fires again before its group has flushed
/// the previous resolution (a simulated day passes in a fraction of a second) waits for
/// the group's next flush, and at 1 s that wait was the whole tail of `bench e2e`.
pub fn subscriptions(hooks: &[(&str, String)], timeout: &str) -> String {
    let mut t = String::from(
        "[[subscribers]]\nid = \"ncp\"\ncountry = \"TUR\"\nclearance = \"AMBER_STRICT\"\n",
    );
    for (name, url) in hooks {
        let _ = write!(
            t,
            "[[subscribers.webhooks]]\nname = {name:?}\nurl = {url:?}\n\
             secret = {WEBHOOK_SECRET:?}\nformat = \"native\"\ntimeout = {timeout:?}\n"
        );
    }
    t.push_str(
        "[[receivers]]\nname = \"all\"\nsubscribers = [\"ncp\"]\nred_recipients = [\"ncp\"]\n\
         [route]\nreceiver = \"all\"\ngroup_by = [\"...\"]\ngroup_wait = \"0s\"\n\
         group_interval = \"10ms\"\nrepeat_interval = \"24h\"\n",
    );
    t
}

/// Waits until the rules stage has nothing left to read and the notifier nothing in
/// flight or waiting, with nothing moving (events, transitions, alerts taken in, webhooks
/// received) for [`QUIET`]; returns when things last moved. An error if a stage exits or
/// `max_wait` passes.
pub async fn settle(
    stages: &mut HashMap<StageKind, StageProcess>,
    receiver: &Receiver,
    max_wait: Duration,
) -> anyhow::Result<Instant> {
    let until = Instant::now() + max_wait;
    let mut last = None;
    let mut moved = Instant::now();
    loop {
        for stage in stages.values_mut() {
            stage.check_running()?;
        }
        let (rules, notify) = match (
            stages.get(&StageKind::Rules),
            stages.get(&StageKind::Notify),
        ) {
            (Some(r), Some(n)) => (
                r.metrics().await.unwrap_or_default(),
                n.metrics().await.unwrap_or_default(),
            ),
            _ => anyhow::bail!("settle needs the rules stage and the notifier"),
        };
        let now = (
            metric(&rules, "relec_rules_events_total", &[]) as u64,
            metric(&rules, "relec_rules_alert_transitions_total", &[]) as u64,
            metric(&notify, "relec_notifier_alerts_total", &[]) as u64,
            receiver.hits().len(),
        );
        let idle = !rules.is_empty()
            && !notify.is_empty()
            && metric(&rules, "relec_rules_consumer_lag", &[]) == 0.0
            && metric(&notify, "relec_notifier_deliveries_in_flight", &[]) == 0.0
            && metric(&notify, "relec_notifier_alerts_unfinished", &[]) == 0.0;
        if last != Some(now) {
            (last, moved) = (Some(now), Instant::now());
        } else if idle && moved.elapsed() >= QUIET {
            return Ok(moved);
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the pipeline did not settle in {max_wait:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
