//! Hot reload of the rules directory: the rules stage reads the live rule set from a
//! watch channel, which this component republishes when rule files change (polled,
//! SIGHUP, or asked for by the admin endpoint). A file that fails to load is refused and
//! the version of it already running stays live, so a typo never silences a rule.

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    fs,
    hash::{Hash, Hasher},
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use rhai::Engine;
use serde::Serialize;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::{mpsc, oneshot, watch},
    time::MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;

use crate::{error::RuleError, rule::Rule};

/// Editors and ConfigMap updates are rare; reading a few small files every 10 s costs
/// nothing and keeps the wait after an edit short.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Reload requests waiting for the reloader; more would only repeat the same reload.
const REQUEST_QUEUE: usize = 8;

/// How the reloader notices changes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often the directory is read and compared with the last load (non-zero).
    pub poll_interval: Duration,
    /// Reload on SIGHUP. Off in tests: the signal reaches the whole process.
    pub sighup: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            sighup: true,
        }
    }
}

/// The rules live now. `generation` counts the sets published; 0 is the empty set
/// before anything loaded.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub generation: u64,
    /// In file-name order; a rule that did not change keeps its `Arc` across reloads.
    pub rules: Arc<[Arc<Rule>]>,
}

/// What one reload did, for the log, the metrics and the admin endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// The generation live after this reload.
    pub generation: u64,
    pub added: Vec<RuleVersion>,
    pub replaced: Vec<Replaced>,
    pub removed: Vec<RuleVersion>,
    pub refused: Vec<Refused>,
}

/// A reload's result, as the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The live rules changed and every file loaded.
    Ok,
    /// At least one file was refused (whatever else changed).
    Refused,
    /// Every file loaded and the live ids and versions are the same as before.
    Unchanged,
}

impl Status {
    pub const ALL: [Status; 3] = [Self::Ok, Self::Refused, Self::Unchanged];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVersion {
    pub id: String,
    pub version: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    pub id: String,
    pub previous: String,
    pub version: String,
    pub path: String,
}

/// A file that was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub path: String,
    /// What to fix, naming the file (and line:column when there is one).
    pub error: String,
    /// The version from this file that stays live, if one was.
    pub kept: Option<String>,
}

/// The reloader's metrics.
#[derive(Debug, Clone)]
pub struct ReloadMetrics {
    pub reloads: IntCounterVec,
    pub loaded: IntGauge,
    pub rule_info: IntGaugeVec,
}

impl ReloadMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            reloads: IntCounterVec::new(
                Opts::new(
                    "relec_rules_reloads_total",
                    "Loads of the rules directory, by result (ok, refused, unchanged).",
                ),
                &["result"],
            )?,
            loaded: IntGauge::new("relec_rules_loaded", "Rules live.")?,
            // Rule ids are bounded by the files in the directory, so they may label.
            rule_info: IntGaugeVec::new(
                Opts::new("relec_rules_rule_info", "1 for each live rule and version."),
                &["rule", "version"],
            )?,
        };
        for status in Status::ALL {
            m.reloads.with_label_values(&[status.as_str()]);
        }
        registry.register(Box::new(m.reloads.clone()))?;
        registry.register(Box::new(m.loaded.clone()))?;
        registry.register(Box::new(m.rule_info.clone()))?;
        Ok(m)
    }

    /// Metrics on a private registry, for tests and tools that do not serve them.
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry takes every metric")
    }
}

/// Asks a running reloader to reload now; cheap to clone (the admin endpoint keeps one).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<oneshot::Sender<Outcome>>,
}

impl ReloadHandle {
    /// Reloads the directory and says what changed; `None` once the reloader has stopped.
    pub async fn reload(&self) -> Option<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        outcome.await.ok()
    }
}

/// Owns the live rule set and republishes it when the directory changes.
#[derive(Debug)]
pub struct Reloader {
    engine: Arc<Engine>,
    dir: PathBuf,
    settings: Settings,
    metrics: ReloadMetrics,
    /// Kept apart from the channel: a renamed but unchanged rule updates its path here
    /// without waking the stage.
    live: Vec<Arc<Rule>>,
    generation: u64,
    /// Of the directory as last loaded; polling reloads only when it differs.
    fingerprint: u64,
    sender: watch::Sender<RuleSet>,
    requests: mpsc::Receiver<oneshot::Sender<Outcome>>,
    handle: ReloadHandle,
}

impl Reloader {
    /// Loads `dir` once; the outcome says which files were refused, so startup can
    /// decide whether that is fatal.
    pub fn new(
        engine: Arc<Engine>,
        dir: PathBuf,
        settings: Settings,
        metrics: ReloadMetrics,
    ) -> (Self, Outcome) {
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let mut reloader = Self {
            engine,
            dir,
            settings,
            metrics,
            live: Vec::new(),
            generation: 0,
            fingerprint: 0,
            sender: watch::Sender::new(RuleSet::default()),
            requests,
            handle: ReloadHandle {
                requests: requests_tx,
            },
        };
        let outcome = reloader.reload();
        (reloader, outcome)
    }

    /// The live rule set; `changed()` wakes on each new generation.
    pub fn subscribe(&self) -> watch::Receiver<RuleSet> {
        self.sender.subscribe()
    }

    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// Polls, listens for SIGHUP and answers reload requests until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut hangups = None;
        if self.settings.sighup {
            match signal(SignalKind::hangup()) {
                Ok(s) => hangups = Some(s),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGHUP; rules reload by polling")
                }
            }
        }
        // The first look is one period after the load in `new`, not at once: a reload
        // asked for meanwhile must report what changed, not find it already applied.
        let period = self.settings.poll_interval.max(Duration::from_millis(1));
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => {
                    let scan = scan(&self.dir);
                    if scan.fingerprint != self.fingerprint {
                        self.apply(scan);
                    }
                }
                () = hangup(&mut hangups) => {
                    tracing::info!("SIGHUP: reloading rules");
                    self.reload();
                }
                Some(reply) = self.requests.recv() => {
                    let _ = reply.send(self.reload());
                }
            }
        }
    }

    /// Loads the directory whether or not it looks changed.
    fn reload(&mut self) -> Outcome {
        let scan = scan(&self.dir);
        self.apply(scan)
    }

    fn apply(&mut self, scan: Scan) -> Outcome {
        self.fingerprint = scan.fingerprint;
        let mut refused = Vec::new();
        let next = match scan.files {
            Ok(files) => self.resolve(files, &mut refused),
            Err(source) => {
                // An unreadable directory is not an empty one: keep every rule.
                let e = RuleError::Read {
                    path: self.dir.clone(),
                    source,
                };
                refused.push(refusal(&e, None));
                self.live.clone()
            }
        };
        let by_id = |rules: &[Arc<Rule>]| -> HashMap<String, Arc<Rule>> {
            rules.iter().map(|r| (r.id.clone(), r.clone())).collect()
        };
        let (before, after) = (by_id(&self.live), by_id(&next));
        let added: Vec<_> = next
            .iter()
            .filter(|r| !before.contains_key(&r.id))
            .map(|r| rule_version(r))
            .collect();
        let removed: Vec<_> = self
            .live
            .iter()
            .filter(|r| !after.contains_key(&r.id))
            .map(|r| rule_version(r))
            .collect();
        let replaced: Vec<_> = next
            .iter()
            .filter_map(|r| {
                let old = before.get(&r.id).filter(|old| old.version != r.version)?;
                Some(Replaced {
                    id: r.id.clone(),
                    previous: old.version.clone(),
                    version: r.version.clone(),
                    path: r.path.display().to_string(),
                })
            })
            .collect();
        let changed = !(added.is_empty() && removed.is_empty() && replaced.is_empty());
        self.live = next;
        if changed {
            self.generation += 1;
            self.publish();
        }
        let status = match (refused.is_empty(), changed) {
            (false, _) => Status::Refused,
            (true, true) => Status::Ok,
            (true, false) => Status::Unchanged,
        };
        let outcome = Outcome {
            status,
            generation: self.generation,
            added,
            replaced,
            removed,
            refused,
        };
        outcome.emit(&self.metrics);
        outcome
    }

    /// The rules the directory's files give, each file's own fallback applied: a file
    /// that fails keeps its live version; an id claimed twice stays with the file that
    /// holds it, and goes to the first file by name if none does.
    fn resolve(
        &self,
        files: Vec<(PathBuf, io::Result<String>)>,
        refused: &mut Vec<Refused>,
    ) -> Vec<Arc<Rule>> {
        // (the rule to take, the live version to fall back on if its id is taken)
        let mut candidates = Vec::new();
        for (path, source) in files {
            let old = self.live.iter().find(|r| r.path == path).cloned();
            let loaded = source
                .map_err(|source| RuleError::Read {
                    path: path.clone(),
                    source,
                })
                .and_then(|source| Rule::from_source(&self.engine, &path, &source));
            match (loaded, old) {
                (Ok(rule), Some(old)) if rule.id == old.id && rule.version == old.version => {
                    candidates.push((old, None))
                }
                (Ok(rule), old) => candidates.push((Arc::new(rule), old)),
                (Err(e), old) => {
                    refused.push(refusal(&e, old.as_deref()));
                    candidates.extend(old.map(|old| (old, None)));
                }
            }
        }
        let holds = |r: &Rule| self.live.iter().any(|l| l.id == r.id && l.path == r.path);
        // Stable: holders first, then file-name order.
        candidates.sort_by_key(|(rule, _)| !holds(rule));
        let mut taken: HashMap<String, PathBuf> = HashMap::new();
        let mut next = Vec::new();
        for (rule, fallback) in candidates {
            let rule = match taken.get(&rule.id) {
                None => rule,
                Some(first) => {
                    let e = RuleError::DuplicateId {
                        path: rule.path.clone(),
                        id: rule.id.clone(),
                        first: first.clone(),
                    };
                    let fallback = fallback.filter(|old| !taken.contains_key(&old.id));
                    refused.push(refusal(&e, fallback.as_deref()));
                    match fallback {
                        Some(old) => old,
                        None => continue,
                    }
                }
            };
            taken.insert(rule.id.clone(), rule.path.clone());
            next.push(rule);
        }
        next.sort_by(|a, b| a.path.cmp(&b.path));
        next
    }

    fn publish(&self) {
        let m = &self.metrics;
        m.loaded.set(self.live.len() as i64);
        m.rule_info.reset();
        for rule in &self.live {
            m.rule_info
                .with_label_values(&[rule.id.as_str(), rule.version.as_str()])
                .set(1);
        }
        self.sender.send_replace(RuleSet {
            generation: self.generation,
            rules: self.live.iter().cloned().collect(),
        });
    }
}

impl Outcome {
    fn emit(&self, m: &ReloadMetrics) {
        for r in &self.refused {
            tracing::warn!(
                path = r.path,
                error = r.error,
                kept = r.kept,
                "rule file refused"
            );
        }
        for r in &self.added {
            tracing::info!(
                rule = r.id,
                version = r.version,
                path = r.path,
                "rule added"
            );
        }
        for r in &self.replaced {
            tracing::info!(
                rule = r.id,
                previous = r.previous,
                version = r.version,
                "rule replaced"
            );
        }
        for r in &self.removed {
            tracing::info!(rule = r.id, version = r.version, "rule removed");
        }
        tracing::debug!(
            status = self.status.as_str(),
            generation = self.generation,
            "rules reloaded"
        );
        m.reloads.with_label_values(&[self.status.as_str()]).inc();
    }
}

/// The `*.rhai` files of a directory with their text, and a fingerprint of names and
/// contents. Contents, not modification times: an editor's rename-over and a
/// ConfigMap's symlink swap can leave times that look unchanged.
struct Scan {
    fingerprint: u64,
    files: io::Result<Vec<(PathBuf, io::Result<String>)>>,
}

fn scan(dir: &Path) -> Scan {
    let mut hasher = DefaultHasher::new();
    let files = rule_files(dir).map(|paths| {
        paths
            .into_iter()
            .map(|path| {
                let source = fs::read_to_string(&path);
                path.hash(&mut hasher);
                match &source {
                    Ok(text) => text.hash(&mut hasher),
                    Err(e) => e.kind().hash(&mut hasher),
                }
                (path, source)
            })
            .collect()
    });
    if let Err(e) = &files {
        // The same failure again is no news.
        e.kind().hash(&mut hasher);
    }
    Scan {
        fingerprint: hasher.finish(),
        files,
    }
}

/// The `*.rhai` files of `dir` (symlinks followed), in file-name order, as `load_dir`.
fn rule_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rhai") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
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

fn refusal(error: &RuleError, kept: Option<&Rule>) -> Refused {
    Refused {
        path: error.path().display().to_string(),
        error: error.to_string(),
        kept: kept.map(|r| r.version.clone()),
    }
}

fn rule_version(rule: &Rule) -> RuleVersion {
    RuleVersion {
        id: rule.id.clone(),
        version: rule.version.clone(),
        path: rule.path.display().to_string(),
    }
}
