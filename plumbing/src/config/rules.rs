//! The `[rules]` section: where the analysts' rule files are, how event time is kept, how
//! often the stage commits, and the caps every rule evaluation runs under.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, key};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// The directory of `.rhai` rule files, reloaded on change, SIGHUP and
    /// `POST /admin/rules/reload`.
    pub dir: PathBuf,
    /// How often the directory is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Consumer group of the rules stage; its instances share the partitions.
    pub group: String,
    /// This instance's name, unique in the group and the same across its restarts: its
    /// Kafka transactional id is `<group>.<instance>`, so a restarted instance fences off
    /// its former self. Unset: the host name.
    pub instance: Option<String>,
    /// A day is evaluated once reports have been seen this long past its end; reports
    /// arriving after that are late (counted, and kept for later days).
    #[serde(with = "humantime_serde")]
    pub lateness: Duration,
    /// How long daily buckets are kept per key (baselines, seasonality, first-seen).
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// Alerts, state changes and consumer offsets are committed in one transaction this
    /// often: a bound on how long an alert waits, and on the work a crash repeats. A
    /// transaction holding an alert, or an incident an immediate rule takes, commits
    /// sooner, as soon as the input is read to its end.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// While working through a backlog, commits take at most this share of the stage's
    /// time: after a commit that took `d`, the next one by the interval waits at least
    /// `d * (1 - share) / share`, never more than ten intervals. A live stream's commits
    /// are small and keep the interval; a replay's rewrite much of the state each time.
    /// 1 turns this off.
    pub max_commit_share: f64,
    /// With no incident for this long, event time follows the wall clock, so days still
    /// close (reporting-silence rules) when the whole network is quiet. Unset: event time
    /// moves only with reports, which suits replays of past data.
    #[serde(default, with = "humantime_serde")]
    pub advance_idle_after: Option<Duration>,
    /// Caps on one evaluation of one rule.
    pub limits: RuleLimits,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("rules/pack"),
            reload_interval: Duration::from_secs(10),
            group: "relec-rules".to_owned(),
            instance: None,
            lateness: Duration::from_secs(3600),
            horizon: Duration::from_secs(400 * 86_400),
            commit_interval: Duration::from_millis(100),
            max_commit_share: 0.1,
            advance_idle_after: None,
            limits: RuleLimits::default(),
        }
    }
}

impl RulesConfig {
    /// The configured instance name, or the host name.
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "relec".to_owned())
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleLimits {
    /// Script operations (roughly, expressions and statements evaluated).
    pub max_operations: u64,
    /// Nested script function calls.
    pub max_call_levels: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Elements in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Wall time of one evaluation.
    #[serde(with = "humantime_serde")]
    pub time_budget: Duration,
}

impl Default for RuleLimits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_string_size: 64 * 1024,
            max_array_size: 100_000,
            max_map_size: 10_000,
            time_budget: Duration::from_millis(50),
        }
    }
}

impl Validate for RulesConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.group.trim().is_empty() {
            problems.push(key(path, "group"), "must not be empty");
        }
        if self
            .instance
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            problems.push(key(path, "instance"), "must not be empty when given");
        }
        if self.horizon < Duration::from_secs(86_400) {
            problems.push(key(path, "horizon"), "must be at least 1 day");
        }
        if self.commit_interval < Duration::from_millis(10) {
            problems.push(key(path, "commit_interval"), "must be at least 10ms");
        }
        if !(self.max_commit_share > 0.0 && self.max_commit_share <= 1.0) {
            problems.push(
                key(path, "max_commit_share"),
                "must be above 0 and at most 1",
            );
        }
        if self.reload_interval < Duration::from_millis(100) {
            problems.push(key(path, "reload_interval"), "must be at least 100ms");
        }
        let l = &self.limits;
        let p = key(path, "limits");
        for (name, zero) in [
            ("max_operations", l.max_operations == 0),
            ("max_call_levels", l.max_call_levels == 0),
            ("max_string_size", l.max_string_size == 0),
            ("max_array_size", l.max_array_size == 0),
            ("max_map_size", l.max_map_size == 0),
            ("time_budget", l.time_budget.is_zero()),
        ] {
            if zero {
                problems.push(key(&p, name), "must be above 0");
            }
        }
    }
}
