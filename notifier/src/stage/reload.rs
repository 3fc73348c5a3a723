//! Hot reload of the subscriptions file: the stage reads the live subscriptions from a
//! watch channel, which this component republishes when the file changes (polled every
//! `reload_interval`, on SIGHUP, or when `POST /admin/subscriptions/reload` asks). A file
//! that does not parse or check is refused with every problem and the previous one stays
//! live, so a typo never stops notifications.
//!
//! The rules stage's reloader is written for a directory of rhai files; this is the same
//! shape for one TOML file (polling by content, SIGHUP, a request queue answered with
//! what happened), small enough not to share.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use prometheus::IntCounterVec;
use serde::Serialize;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::{mpsc, oneshot, watch},
    time::MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;

use crate::{Error, Subscriptions};

/// Reload requests waiting for the reloader; more would only repeat the same reload.
const REQUEST_QUEUE: usize = 8;

/// What one reload did, for the log, the metric and the admin endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// Subscription files published so far (1 is the one loaded at start).
    pub generation: u64,
    /// Why the file was refused: every problem, each with its key path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A changed file is live.
    Ok,
    /// The file was refused; the previous one stays live.
    Refused,
    /// The file reads the same as the live one.
    Unchanged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Unchanged => "unchanged",
        }
    }
}

/// Asks a running reloader to reload now; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<oneshot::Sender<Outcome>>,
}

impl ReloadHandle {
    /// Reloads the file and says what happened; `None` once the reloader has stopped.
    pub async fn reload(&self) -> Option<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        outcome.await.ok()
    }
}

/// Owns the live subscriptions and republishes them when the file changes.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    poll_interval: Duration,
    sighup: bool,
    reloads: IntCounterVec,
    /// Of the file's text as last read, so polling reloads only what changed.
    fingerprint: u64,
    generation: u64,
    sender: watch::Sender<Arc<Subscriptions>>,
    requests: mpsc::Receiver<oneshot::Sender<Outcome>>,
    handle: ReloadHandle,
}

impl Reloader {
    /// Loads the file once; at start there is nothing to fall back on, so a bad file is
    /// an error.
    pub fn new(
        path: PathBuf,
        poll_interval: Duration,
        sighup: bool,
        reloads: IntCounterVec,
    ) -> Result<Self, Error> {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::SubscriptionsRead {
            path: path.display().to_string(),
            source,
        })?;
        let subscriptions = Subscriptions::from_toml(&text)?;
        reloads.with_label_values(&[Status::Ok.as_str()]).inc();
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        Ok(Self {
            path,
            poll_interval,
            sighup,
            reloads,
            fingerprint: fingerprint(&Ok(text)),
            generation: 1,
            sender: watch::Sender::new(Arc::new(subscriptions)),
            requests,
            handle: ReloadHandle {
                requests: requests_tx,
            },
        })
    }

    /// The live subscriptions; `changed()` wakes on each new file.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Subscriptions>> {
        self.sender.subscribe()
    }

    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// Polls, listens for SIGHUP and answers reload requests until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut hangups = None;
        if self.sighup {
            match signal(SignalKind::hangup()) {
                Ok(s) => hangups = Some(s),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGHUP; subscriptions reload by polling")
                }
            }
        }
        let period = self.poll_interval.max(Duration::from_millis(1));
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => {
                    let text = self.read();
                    if fingerprint(&text) != self.fingerprint {
                        self.apply(text);
                    }
                }
                () = hangup(&mut hangups) => {
                    tracing::info!("SIGHUP: reloading subscriptions");
                    self.reload();
                }
                Some(reply) = self.requests.recv() => {
                    let _ = reply.send(self.reload());
                }
            }
        }
    }

    /// Reads and applies the file whether or not it looks changed.
    pub fn reload(&mut self) -> Outcome {
        let text = self.read();
        self.apply(text)
    }

    fn read(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.path)
    }

    fn apply(&mut self, text: std::io::Result<String>) -> Outcome {
        let new = fingerprint(&text);
        let changed = new != self.fingerprint;
        self.fingerprint = new;
        let parsed = text
            .map_err(|source| Error::SubscriptionsRead {
                path: self.path.display().to_string(),
                source,
            })
            .and_then(|text| Subscriptions::from_toml(&text));
        let outcome = match parsed {
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "subscriptions refused; the previous file stays live");
                Outcome {
                    status: Status::Refused,
                    generation: self.generation,
                    error: Some(e.to_string()),
                }
            }
            Ok(_) if !changed => Outcome {
                status: Status::Unchanged,
                generation: self.generation,
                error: None,
            },
            Ok(subscriptions) => {
                self.generation += 1;
                self.sender.send_replace(Arc::new(subscriptions));
                tracing::info!(path = %self.path.display(), generation = self.generation, "subscriptions reloaded");
                Outcome {
                    status: Status::Ok,
                    generation: self.generation,
                    error: None,
                }
            }
        };
        self.reloads
            .with_label_values(&[outcome.status.as_str()])
            .inc();
        outcome
    }
}

/// Of the file's text, or of the kind of error reading it: the same failure again is no
/// news for polling.
fn fingerprint(text: &std::io::Result<String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    match text {
        Ok(text) => text.hash(&mut hasher),
        Err(e) => e.kind().hash(&mut hasher),
    }
    hasher.finish()
}

/// The next SIGHUP, or never if we do not listen for it.
async fn hangup(hangups: &mut Option<Signal>) {
    if let Some(signal) = hangups
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NotifierMetrics;

    const GOOD: &str = r#"
[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@egm.gov.tr.example"]

[[receivers]]
name = "ncps"
subscribers = ["tur-ncp"]

[route]
receiver = "ncps"
"#;

    #[tokio::test]
    async fn a_bad_file_is_refused_and_the_good_one_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("subscriptions.toml");
        std::fs::write(&path, GOOD).expect("write");
        let metrics = NotifierMetrics::unregistered();
        let mut reloader = Reloader::new(
            path.clone(),
            Duration::from_secs(3600),
            false,
            metrics.reloads.clone(),
        )
        .expect("loads");
        let live = reloader.subscribe();
        assert_eq!(reloader.reload().status, Status::Unchanged);

        std::fs::write(
            &path,
            GOOD.replace("receiver = \"ncps\"", "receiver = \"nobody\""),
        )
        .expect("write");
        let refused = reloader.reload();
        assert_eq!(refused.status, Status::Refused);
        let error = refused.error.expect("a reason");
        assert!(error.contains("route.receiver"), "{error}");
        assert_eq!(
            live.borrow().subscribers().len(),
            1,
            "the old file stays live"
        );

        std::fs::write(
            &path,
            GOOD.replace("clearance = \"AMBER\"", "clearance = \"GREEN\""),
        )
        .expect("write");
        let ok = reloader.reload();
        assert_eq!((ok.status, ok.generation), (Status::Ok, 2));
        assert_eq!(
            live.borrow().subscribers()[0].clearance,
            crate::tlp::Clearance::GREEN
        );
        for (result, count) in [("ok", 2), ("refused", 1), ("unchanged", 1)] {
            assert_eq!(
                metrics.reloads.with_label_values(&[result]).get(),
                count,
                "{result}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_file_at_start_is_an_error() {
        let err = Reloader::new(
            "/nonexistent/subscriptions.toml".into(),
            Duration::from_secs(1),
            false,
            NotifierMetrics::unregistered().reloads,
        )
        .expect_err("no file");
        assert!(err.to_string().contains("/nonexistent/subscriptions.toml"));
    }
}
