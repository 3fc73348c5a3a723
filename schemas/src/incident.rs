//! `IncidentEvent`: what a border agency reports, as written to `relec.incidents`.
//! Field for field the record of `avro/incident_event/`; the JSON form is the same shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Tlp;

/// One incident reported by a border agency. Timestamps are milliseconds since the Unix
/// epoch, UTC, as Avro's `timestamp-millis` stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentEvent {
    /// Globally unique id (UUID) chosen by the publisher; the idempotency key.
    pub event_id: String,
    pub reporting_agency: String,
    /// ISO 3166-1 alpha-3.
    pub reporting_country: String,
    /// Event time.
    pub occurred_at: i64,
    /// Report time; reports arrive days late.
    pub reported_at: i64,
    pub category: IncidentCategory,
    pub route: String,
    #[serde(default)]
    pub border_section: Option<String>,
    #[serde(default)]
    pub crossing_point: Option<String>,
    #[serde(default)]
    pub location: Option<GeoPoint>,
    #[serde(default)]
    pub direction: Option<Direction>,
    pub persons: i32,
    #[serde(default)]
    pub nationalities: Vec<NationalityCount>,
    #[serde(default)]
    pub facilitators: i32,
    #[serde(default)]
    pub victims: i32,
    #[serde(default)]
    pub dead: i32,
    #[serde(default)]
    pub missing: i32,
    #[serde(default)]
    pub modus_operandi: Option<String>,
    pub source_reliability: SourceReliability,
    /// Admiralty grading 1 (confirmed) to 6 (cannot be judged).
    pub information_credibility: i32,
    pub handling: Tlp,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentCategory {
    IrregularCrossing,
    Smuggling,
    Trafficking,
    DocumentFraud,
    DeathOrMissing,
    RefusalOfEntry,
    Other,
}

impl IncidentCategory {
    /// Every category, in the order of the Avro enum's symbols.
    pub const ALL: [IncidentCategory; 7] = [
        IncidentCategory::IrregularCrossing,
        IncidentCategory::Smuggling,
        IncidentCategory::Trafficking,
        IncidentCategory::DocumentFraud,
        IncidentCategory::DeathOrMissing,
        IncidentCategory::RefusalOfEntry,
        IncidentCategory::Other,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// Movement relative to the reporting country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    Entry,
    Exit,
    Transit,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalityCount {
    /// ISO 3166-1 alpha-3.
    pub nationality: String,
    pub count: i32,
    #[serde(default)]
    pub minors: i32,
}

/// Admiralty grading of the source: A completely reliable to E unreliable; F cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SourceReliability {
    A,
    B,
    C,
    D,
    E,
    F,
}
