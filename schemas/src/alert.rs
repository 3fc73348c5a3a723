//! `Alert`: one transition of an early warning, as the rules stage writes it to
//! `relec.alerts` and the notifier reads it. Field for field the record of `avro/alert/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Tlp;

/// One alert transition (firing or resolved). Timestamps are milliseconds since the Unix
/// epoch, UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Stable id: a hash of the rule id and the group labels.
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_version: String,
    pub status: AlertStatus,
    pub severity: Severity,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    #[serde(default)]
    pub ends_at: Option<i64>,
    pub window_start: i64,
    pub window_end: i64,
    pub value: f64,
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The most restrictive handling code of the evidence.
    pub handling: Tlp,
    /// ISO 3166-1 alpha-3 codes of the source countries.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Event ids of the evidence, at most [`Alert::MAX_EVIDENCE`].
    #[serde(default)]
    pub evidence: Vec<String>,
    pub generated_at: i64,
}

impl Alert {
    /// Evidence is a sample that lets a recipient find the events, not the full set, so an
    /// alert over a million events stays one small record.
    pub const MAX_EVIDENCE: usize = 50;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}
