//! One stage of the pipeline in a child process: started from the relec binary with the
//! run's config, watched through its telemetry listener, measured through `/proc`, and
//! stopped by SIGTERM (draining) or SIGKILL (nothing saved).

use std::{
    fmt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::Context;

/// How often readiness is asked for while a stage starts.
const READY_POLL: Duration = Duration::from_millis(100);
/// How long a stage may take to drain after SIGTERM before it is killed.
const TERM_DEADLINE: Duration = Duration::from_secs(30);

/// Which stage a process runs: the relec subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Ingest,
    Rules,
    Notify,
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [StageKind::Ingest, StageKind::Rules, StageKind::Notify];

    pub fn command(self) -> &'static str {
        match self {
            StageKind::Ingest => "ingest",
            StageKind::Rules => "rules",
            StageKind::Notify => "notify",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.command())
    }
}

/// CPU time and memory of a running process, from `/proc/<pid>/stat` and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds of every thread since the process started.
    pub cpu_secs: f64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss: u64,
    /// Resident set size now (VmRSS), bytes.
    pub rss: u64,
}

/// A running stage, SIGKILLed when dropped so that no failure leaves one behind.
#[derive(Debug)]
pub struct StageProcess {
    pub kind: StageKind,
    pub instance: String,
    /// Where its `/metrics`, `/healthz` and `/readyz` are served.
    pub base: String,
    child: Child,
    log: PathBuf,
    http: reqwest::Client,
}

impl StageProcess {
    pub(super) fn spawn(
        binary: &Path,
        config: &Path,
        kind: StageKind,
        instance: &str,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let port = super::free_port()?;
        let log = dir.join(format!(
            "{kind}-{instance}-{}.log",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg(kind.command())
            .env("RELEC_TELEMETRY__LISTEN", format!("127.0.0.1:{port}"))
            .env("RELEC_RULES__INSTANCE", instance)
            .env(
                "RUST_LOG",
                std::env::var("RELEC_E2E_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).with_context(|| log.display().to_string())?)
            .spawn()
            .with_context(|| format!("start {} {kind}", binary.display()))?;
        Ok(Self {
            kind,
            instance: instance.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/readyz` answers 200, at most `deadline`; an error (with the end of
    /// the log) if the process exits first or never gets ready.
    pub async fn ready(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        loop {
            self.check_running()?;
            let ready = (self.http.get(format!("{}/readyz", self.base)).send())
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < until,
                "{} not ready in {deadline:?}:\n{}",
                self.kind,
                self.log_tail(30)
            );
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// An error with the end of the log if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "relec {} ({}) exited ({status}); log {}:\n{}",
                self.kind,
                self.instance,
                self.log.display(),
                self.log_tail(30)
            );
        }
        Ok(())
    }

    /// `kill -9`: no drain, no last checkpoint or commit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then the drain, at most [`TERM_DEADLINE`] (then SIGKILL); whether it
    /// exited successfully by itself.
    pub async fn terminate(mut self) -> anyhow::Result<bool> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {} failed", self.child.id());
        let until = Instant::now() + TERM_DEADLINE;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(false)
    }

    /// CPU time and memory so far; `None` once the process is gone.
    pub fn usage(&self) -> Option<Usage> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces, so split after its ')'):
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after it.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        Some(Usage {
            cpu_secs: ticks / clock_ticks(),
            peak_rss: kib("VmHWM:")? * 1024,
            rss: kib("VmRSS:")? * 1024,
        })
    }

    /// The `/metrics` text, or `None` while the listener does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    }

    /// The last `n` lines of the stage's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for StageProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ), asked of `getconf` once.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The sum of the samples of `name` whose labels include every one of `labels`, in a
/// Prometheus text exposition; 0 when there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}
