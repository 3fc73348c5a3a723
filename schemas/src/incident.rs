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

    /// The Avro symbol, which is also the JSON form; cheaper than going through serde
    /// on every event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IrregularCrossing => "IRREGULAR_CROSSING",
            Self::Smuggling => "SMUGGLING",
            Self::Trafficking => "TRAFFICKING",
            Self::DocumentFraud => "DOCUMENT_FRAUD",
            Self::DeathOrMissing => "DEATH_OR_MISSING",
            Self::RefusalOfEntry => "REFUSAL_OF_ENTRY",
            Self::Other => "OTHER",
        }
    }
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

impl Direction {
    /// Every direction, in the order of the Avro enum's symbols.
    pub const ALL: [Direction; 4] = [
        Direction::Entry,
        Direction::Exit,
        Direction::Transit,
        Direction::Unknown,
    ];

    /// The Avro symbol, which is also the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entry => "ENTRY",
            Self::Exit => "EXIT",
            Self::Transit => "TRANSIT",
            Self::Unknown => "UNKNOWN",
        }
    }
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

impl SourceReliability {
    /// Every grade, in the order of the Avro enum's symbols.
    pub const ALL: [SourceReliability; 6] = [
        SourceReliability::A,
        SourceReliability::B,
        SourceReliability::C,
        SourceReliability::D,
        SourceReliability::E,
        SourceReliability::F,
    ];

    /// The Avro symbol, which is also the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
            Self::E => "E",
            Self::F => "F",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::Value;

    use super::{Direction, IncidentCategory, SourceReliability};
    use crate::Tlp;

    fn serde_name(value: impl Serialize) -> String {
        match serde_json::to_value(value).expect("serialises") {
            Value::String(s) => s,
            other => panic!("not a string: {other}"),
        }
    }

    /// The symbols of the enum type `name`, wherever it is declared in `schema`.
    fn avro_symbols(schema: &Value, name: &str) -> Option<Vec<String>> {
        match schema {
            Value::Object(o)
                if o.get("type") == Some(&Value::from("enum"))
                    && o.get("name") == Some(&Value::from(name)) =>
            {
                let symbols = o.get("symbols")?.as_array()?;
                symbols
                    .iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect()
            }
            Value::Object(o) => o.values().find_map(|v| avro_symbols(v, name)),
            Value::Array(a) => a.iter().find_map(|v| avro_symbols(v, name)),
            _ => None,
        }
    }

    #[test]
    fn names_agree_with_serde() {
        for c in IncidentCategory::ALL {
            assert_eq!(c.as_str(), serde_name(c));
        }
        for d in Direction::ALL {
            assert_eq!(d.as_str(), serde_name(d));
        }
        for r in SourceReliability::ALL {
            assert_eq!(r.as_str(), serde_name(r));
        }
    }

    /// `ALL` lists every symbol of the schema, in its order, so nothing iterating it
    /// (samples, validation messages) misses a variant added later.
    #[test]
    fn all_is_every_avro_symbol_in_order() {
        let schema: Value =
            serde_json::from_str(include_str!("../avro/incident_event/v1.avsc")).expect("avsc");
        let symbols =
            |name| avro_symbols(&schema, name).unwrap_or_else(|| panic!("no enum {name}"));
        assert_eq!(
            symbols("IncidentCategory"),
            IncidentCategory::ALL.map(IncidentCategory::as_str)
        );
        assert_eq!(symbols("Direction"), Direction::ALL.map(Direction::as_str));
        assert_eq!(
            symbols("SourceReliability"),
            SourceReliability::ALL.map(SourceReliability::as_str)
        );
        assert_eq!(symbols("Tlp"), Tlp::ALL.map(Tlp::as_str));
    }
}
