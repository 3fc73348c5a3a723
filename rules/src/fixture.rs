//! `relec rules test`: fixture files in which an analyst states the events that go in and
//! the alert transitions a rule must answer with, run through the pure processor on a
//! deterministic clock (no Kafka, no wall time). The file format is documented in the
//! README ("Testing rules"); this module reads it and builds the events, [`run`] runs the
//! cases and says how the transitions differ from the expected ones.
//!
//! ```toml
//! # rules/pack/tests/route_spike.toml
//! [[case]]
//! name = "a fourfold week fires"
//! daily = { from = 2026-01-05, to = 2026-03-01, route = "AFG-IRN-NIMROZ", persons = 10 }
//! events = [{ day = 2026-03-02, route = "AFG-IRN-NIMROZ", persons = 45, count = 2 }]
//! expect = [{ status = "firing", day = 2026-03-02, labels = { route = "AFG-IRN-NIMROZ" } }]
//! ```

mod run;

use std::{
    collections::BTreeMap,
    fmt, fs,
    path::{Path, PathBuf},
    time::Duration,
};

use relec_schemas::{
    Direction, IncidentCategory, IncidentEvent, NationalityCount, SourceReliability, Tlp,
};
use serde::Deserialize;

pub use self::run::{CaseOutcome, run_file};
use crate::time::{DAY_MS, Day, day_of};

/// Event fields a fixture does not set. Fixtures name what the rule under test looks at;
/// the rest only has to be valid.
pub const DEFAULT_AGENCY: &str = "TEST-AGENCY";
pub const DEFAULT_COUNTRY: &str = "TUR";
pub const DEFAULT_ROUTE: &str = "TEST-ROUTE";
/// Noon, so that a report delay of hours stays within the day.
pub const DEFAULT_HOUR: u32 = 12;
/// Reports arrive an hour after the incident unless `reported` says otherwise.
pub const DEFAULT_REPORT_DELAY: Duration = Duration::from_secs(3600);
/// The stage's defaults (`rules.lateness`, `rules.horizon`): a fixture passes or fails the
/// same whatever the local config says.
pub const DEFAULT_LATENESS: Duration = Duration::from_secs(3600);
pub const DEFAULT_HORIZON_DAYS: i64 = 400;

/// A fixture file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct FixtureError {
    pub path: PathBuf,
    pub message: String,
}

/// One fixture file: the rules it tests and its cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// Ids of the rules run in every case; only their transitions are compared. Default:
    /// the file's name without `.toml`.
    #[serde(default)]
    pub rules: Vec<String>,
    /// `rules.lateness` for these cases (default 1h).
    #[serde(default, with = "humantime_serde")]
    pub lateness: Option<Duration>,
    /// `rules.horizon` for these cases (default 400 days).
    #[serde(default, with = "humantime_serde")]
    pub horizon: Option<Duration>,
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// One case: events in, the transitions expected out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Events on one day (`day`) or on every day of a range (`from`, `to`).
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// A baseline: events on every day from `from` to `to`. One table or a list of them.
    #[serde(default)]
    pub daily: Daily,
    /// Days are evaluated through the end of this day (default: the day of the last
    /// report), so that a resolution or a silence after the last event can be expected.
    #[serde(default)]
    pub until: Option<Date>,
    /// Every transition the case's rules must produce, in order; `[]` for a quiet case.
    pub expect: Vec<Expect>,
}

/// `daily = { ... }` or `daily = [{ ... }, { ... }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct Daily(pub Vec<EventSpec>);

impl TryFrom<toml::Value> for Daily {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let specs = match value {
            toml::Value::Array(items) => items,
            table @ toml::Value::Table(_) => vec![table],
            other => {
                return Err(format!(
                    "daily must be a table or an array of tables, not {}",
                    other.type_str()
                ));
            }
        };
        specs
            .into_iter()
            .map(|v| EventSpec::deserialize(v).map_err(|e| format!("daily: {}", e.message())))
            .collect::<Result<_, _>>()
            .map(Daily)
    }
}

/// Events as a fixture states them: only the fields that matter, the rest defaulted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The day it happened.
    pub day: Option<Date>,
    /// Or every day from `from` to `to`, both included.
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// With `from` and `to`: events every this many days from `from` (default 1, daily).
    pub every: Option<u32>,
    /// Events per day, all alike (default 1).
    pub count: Option<u32>,
    /// Hour of the day it happened, UTC (default 12).
    pub hour: Option<u32>,
    /// How long after it happened it was reported (default "1h"); "3d" makes a late report.
    #[serde(default, with = "humantime_serde")]
    pub reported: Option<Duration>,
    /// The event id; copies with the same id are duplicates. Default: one of its own.
    pub id: Option<String>,
    pub category: Option<IncidentCategory>,
    pub route: Option<String>,
    pub border_section: Option<String>,
    pub crossing_point: Option<String>,
    pub direction: Option<Direction>,
    pub reporting_agency: Option<String>,
    pub reporting_country: Option<String>,
    /// Default: the sum of `nationalities`, else 1.
    pub persons: Option<i32>,
    /// Persons by nationality, e.g. `{ AFG = 40, PAK = 5 }`.
    #[serde(default)]
    pub nationalities: BTreeMap<String, i32>,
    #[serde(default)]
    pub facilitators: i32,
    #[serde(default)]
    pub victims: i32,
    #[serde(default)]
    pub dead: i32,
    #[serde(default)]
    pub missing: i32,
    pub modus_operandi: Option<String>,
    pub handling: Option<Tlp>,
    pub source_reliability: Option<SourceReliability>,
    pub information_credibility: Option<i32>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// One expected alert transition. Labels and annotations are compared for the names given
/// (the alert may have more); `value` and `threshold` only when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The rule; may be left out when the file tests one rule.
    pub rule: Option<String>,
    pub status: Status,
    /// The day of the transition: the evaluated day it fired or resolved on (for an
    /// immediate rule, the day of the report that fired it).
    pub day: Date,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// A UTC day, written `2026-03-02` (a TOML date) or `"2026-03-02"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct Date(pub Day);

impl TryFrom<toml::Value> for Date {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
            other => return Err(format!("expected a date like 2026-03-02, not {other}")),
        };
        parse_date(&text).map(Date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::template::date(self.0))
    }
}

/// `YYYY-MM-DD` as a day.
pub fn parse_date(text: &str) -> Result<Day, String> {
    let bad = || format!("{text:?} is not a date like 2026-03-02");
    if text.len() != 10 {
        return Err(bad());
    }
    let time = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| bad())?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?
        .as_millis();
    Ok(day_of(ms as i64))
}

impl FixtureFile {
    /// Reads and parses a fixture file.
    pub fn load(path: &Path) -> Result<Self, FixtureError> {
        let text = fs::read_to_string(path).map_err(|e| FixtureError {
            path: path.to_owned(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses a fixture's text; `path` names it in messages and gives the default rule.
    pub fn parse(path: &Path, text: &str) -> Result<Self, FixtureError> {
        let error = |message: String| FixtureError {
            path: path.to_owned(),
            message,
        };
        let mut file: FixtureFile = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        file.path = path.to_owned();
        if file.rules.is_empty() {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            file.rules.push(stem.to_owned());
        }
        if file.cases.is_empty() {
            return Err(error("no [[case]]".to_owned()));
        }
        Ok(file)
    }

    /// Every fixture file (`*.toml`) of `dir`, in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Vec<Result<Self, FixtureError>>, FixtureError> {
        let listing = fs::read_dir(dir).map_err(|e| FixtureError {
            path: dir.to_owned(),
            message: format!("cannot read the fixtures: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        paths.sort();
        Ok(paths.iter().map(|p| Self::load(p)).collect())
    }

    pub fn lateness(&self) -> Duration {
        self.lateness.unwrap_or(DEFAULT_LATENESS)
    }

    pub fn horizon_days(&self) -> i64 {
        self.horizon
            .map_or(DEFAULT_HORIZON_DAYS, |h| (h.as_secs() / 86_400) as i64)
    }
}

impl Case {
    /// The case's events in the order agencies would publish them (by report time; ties
    /// in the order written), or what is wrong with the case. Ids are derived from
    /// `prefix`, the case and the spec, so a run is the same every time.
    pub fn events(&self, prefix: &str) -> Result<Vec<IncidentEvent>, String> {
        let mut events = Vec::new();
        let specs = self
            .events
            .iter()
            .map(|s| ("events", s))
            .chain(self.daily.0.iter().map(|s| ("daily", s)));
        for (n, (what, spec)) in specs.enumerate() {
            let days = spec.days(what).map_err(|e| format!("{what}: {e}"))?;
            for day in days {
                for copy in 0..spec.count.unwrap_or(1) {
                    let id = spec
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("{prefix}/{n}/{day}/{copy}"));
                    events.push(spec.event(id, day)?);
                }
            }
        }
        events.sort_by_key(|e| e.reported_at);
        Ok(events)
    }
}

impl EventSpec {
    /// The days this spec puts events on.
    fn days(&self, what: &str) -> Result<impl Iterator<Item = Day>, String> {
        if self.count == Some(0) {
            return Err("count must be at least 1".to_owned());
        }
        if self.hour.is_some_and(|h| h > 23) {
            return Err("hour must be 0 to 23".to_owned());
        }
        let every = match (self.every, self.day) {
            (Some(0), _) => return Err("every must be at least 1".to_owned()),
            (Some(_), Some(_)) => return Err("`every` goes with `from` and `to`".to_owned()),
            (every, _) => every.unwrap_or(1) as usize,
        };
        let range = match (self.day, self.from, self.to) {
            (Some(day), None, None) if what == "events" => day.0..=day.0,
            (None, Some(from), Some(to)) if from <= to => from.0..=to.0,
            (None, Some(from), Some(to)) => return Err(format!("from {from} is after to {to}")),
            _ if what == "daily" => {
                return Err("give `from` and `to` (a range of days)".to_owned());
            }
            _ => return Err("give either `day`, or `from` and `to`".to_owned()),
        };
        Ok(range.step_by(every))
    }

    fn event(&self, event_id: String, day: Day) -> Result<IncidentEvent, String> {
        let hour = i64::from(self.hour.unwrap_or(DEFAULT_HOUR));
        let occurred_at = day * DAY_MS + hour * 3_600_000;
        let delay = self.reported.unwrap_or(DEFAULT_REPORT_DELAY);
        let nationalities: Vec<NationalityCount> = self
            .nationalities
            .iter()
            .map(|(code, count)| NationalityCount {
                nationality: code.clone(),
                count: *count,
                minors: 0,
            })
            .collect();
        let persons =
            self.persons
                .unwrap_or_else(|| match nationalities.iter().map(|n| n.count).sum() {
                    0 => 1,
                    n => n,
                });
        let text = |value: &Option<String>, default: &str| {
            value.clone().unwrap_or_else(|| default.to_owned())
        };
        Ok(IncidentEvent {
            event_id,
            reporting_agency: text(&self.reporting_agency, DEFAULT_AGENCY),
            reporting_country: text(&self.reporting_country, DEFAULT_COUNTRY),
            occurred_at,
            reported_at: occurred_at + delay.as_millis() as i64,
            category: self.category.unwrap_or(IncidentCategory::IrregularCrossing),
            route: text(&self.route, DEFAULT_ROUTE),
            border_section: self.border_section.clone(),
            crossing_point: self.crossing_point.clone(),
            location: None,
            direction: self.direction,
            persons,
            nationalities,
            facilitators: self.facilitators,
            victims: self.victims,
            dead: self.dead,
            missing: self.missing,
            modus_operandi: self.modus_operandi.clone(),
            source_reliability: self.source_reliability.unwrap_or(SourceReliability::B),
            information_credibility: self.information_credibility.unwrap_or(2),
            handling: self.handling.unwrap_or(Tlp::Green),
            notes: None,
            attributes: self.attributes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FixtureFile, FixtureError> {
        FixtureFile::parse(Path::new("tests/route_spike.toml"), text)
    }

    #[test]
    fn a_compact_case_becomes_events_in_report_order() {
        let file = parse(
            r#"
            [[case]]
            name = "n"
            daily = [
                { from = 2026-03-01, to = "2026-03-03", route = "R", persons = 10 },
                { from = 2026-03-01, to = 2026-03-07, every = 3, route = "S" },
            ]
            events = [
                { day = 2026-03-02, route = "R", count = 2, nationalities = { AFG = 4, PAK = 1 }, reported = "2d" },
                { day = 2026-03-01, id = "same", count = 2, category = "SMUGGLING", hour = 3 },
            ]
            expect = []
            "#,
        )
        .unwrap();
        assert_eq!(file.rules, ["route_spike"]);
        assert_eq!(file.horizon_days(), 400);
        let events = file.cases[0].events("t").unwrap();
        assert_eq!(events.len(), 10);
        let s_days: Vec<Day> = events
            .iter()
            .filter(|e| e.route == "S")
            .map(|e| day_of(e.occurred_at))
            .collect();
        let first = parse_date("2026-03-01").unwrap();
        assert_eq!(s_days, [first, first + 3, first + 6]);
        let events: Vec<IncidentEvent> = events.into_iter().filter(|e| e.route != "S").collect();
        let day = parse_date("2026-03-01").unwrap();
        // The two `same` copies at 03:00 first, then the baseline at noon, the late ones last.
        assert_eq!(events[0].event_id, "same");
        assert_eq!(events[1].event_id, "same");
        assert_eq!(events[0].category, IncidentCategory::Smuggling);
        assert_eq!(events[0].occurred_at, day * DAY_MS + 3 * 3_600_000);
        assert_eq!(events[2].persons, 10);
        assert_eq!(events[2].reported_at, day * DAY_MS + 13 * 3_600_000);
        let late = &events[5];
        assert_eq!(late.persons, 5);
        assert_eq!(late.nationalities.len(), 2);
        assert_eq!(late.reported_at - late.occurred_at, 2 * DAY_MS);
        assert_ne!(events[5].event_id, events[6].event_id);
        assert_eq!(events[5].route, "R");
        assert_eq!(events[0].route, DEFAULT_ROUTE);
    }

    #[test]
    fn mistakes_are_reported_with_where_they_are() {
        let error = parse("[[case]]\nname = \"n\"\nevents = [{ dya = 2026-03-01 }]\nexpect = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("unknown field `dya`"),
            "{error}"
        );

        let error = parse("[[case]]\nname = \"n\"\n").unwrap_err().to_string();
        assert!(error.contains("missing field `expect`"), "{error}");

        let error = parse(
            "[[case]]\nname = \"n\"\ndaily = { from = 2026-03-01, rout = \"R\" }\nexpect = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `rout`"), "{error}");

        let file = parse("[[case]]\nname = \"n\"\nevents = [{ from = 2026-03-05, to = 2026-03-01 }]\nexpect = []\n").unwrap();
        assert_eq!(
            file.cases[0].events("t").unwrap_err(),
            "events: from 2026-03-05 is after to 2026-03-01"
        );
        let file =
            parse("[[case]]\nname = \"n\"\nevents = [{ route = \"R\" }]\nexpect = []\n").unwrap();
        assert!(
            file.cases[0]
                .events("t")
                .unwrap_err()
                .contains("give either `day`")
        );

        let error =
            parse("[[case]]\nname = \"n\"\nexpect = [{ status = \"fired\", day = 2026-03-01 }]\n")
                .unwrap_err()
                .to_string();
        assert!(error.contains("fired"), "{error}");
        assert!(parse("rules = [\"a\"]\n").is_err());
        assert!(parse_date("2026-3-1").is_err());
        assert_eq!(parse_date("1970-01-02"), Ok(1));
    }
}
