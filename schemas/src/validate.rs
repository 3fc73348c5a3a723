//! What makes an incident event acceptable beyond its schema: codes that exist, counts that
//! add up, times that make sense. Every problem is reported with the JSON Pointer of its
//! field, so a publisher fixes them all at once.

use std::time::Duration;

use crate::IncidentEvent;
use serde::Serialize;

/// One offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) into the event, e.g. `/nationalities/0/count`.
    pub pointer: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }

    /// A short, bounded label for metrics: the field's name without indices.
    pub fn metric_reason(&self) -> String {
        let field: Vec<&str> = self
            .pointer
            .split('/')
            .filter(|s| !s.is_empty() && !s.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        if field.is_empty() {
            "body".to_owned()
        } else {
            field.join(".")
        }
    }
}

/// The longest free-text field accepted; notes are a summary, not a case file.
const MAX_TEXT: usize = 4096;
/// Ids, routes, sections and crossing points are short identifiers.
const MAX_ID: usize = 128;
const MAX_ATTRIBUTES: usize = 64;

/// Checks `event` as received at `now_ms`, allowing clocks `skew` ahead of ours.
pub fn validate(event: &IncidentEvent, now_ms: i64, skew: Duration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |pointer: &str, reason: String| errors.push(FieldError::new(pointer, reason));

    if uuid::Uuid::parse_str(&event.event_id).is_err() {
        fail("/event_id", format!("{:?} is not a UUID", event.event_id));
    }
    for (pointer, value) in [
        ("/reporting_agency", &event.reporting_agency),
        ("/route", &event.route),
    ] {
        if value.trim().is_empty() {
            fail(pointer, "must not be empty".into());
        } else if value.len() > MAX_ID {
            fail(pointer, format!("longer than {MAX_ID} bytes"));
        }
    }
    for (pointer, value) in [
        ("/border_section", &event.border_section),
        ("/crossing_point", &event.crossing_point),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.trim().is_empty() || v.len() > MAX_ID)
        {
            fail(pointer, format!("must be 1 to {MAX_ID} bytes when given"));
        }
    }
    if !is_iso3(&event.reporting_country) {
        fail("/reporting_country", not_iso3(&event.reporting_country));
    }

    let future_limit = now_ms.saturating_add(skew.as_millis() as i64);
    if event.occurred_at > event.reported_at {
        fail("/occurred_at", "is after reported_at".into());
    }
    if event.occurred_at > future_limit {
        fail("/occurred_at", "is in the future".into());
    }
    if event.reported_at > future_limit {
        fail("/reported_at", "is in the future".into());
    }
    if event.occurred_at < 0 {
        fail("/occurred_at", "is before 1970".into());
    }

    for (pointer, value) in [
        ("/persons", event.persons),
        ("/facilitators", event.facilitators),
        ("/victims", event.victims),
        ("/dead", event.dead),
        ("/missing", event.missing),
    ] {
        if value < 0 {
            fail(pointer, format!("{value} is negative"));
        }
    }
    let mut total: i64 = 0;
    for (i, n) in event.nationalities.iter().enumerate() {
        if !is_iso3(&n.nationality) {
            fail(
                &format!("/nationalities/{i}/nationality"),
                not_iso3(&n.nationality),
            );
        }
        if n.count < 0 {
            fail(
                &format!("/nationalities/{i}/count"),
                format!("{} is negative", n.count),
            );
        }
        if n.minors < 0 {
            fail(
                &format!("/nationalities/{i}/minors"),
                format!("{} is negative", n.minors),
            );
        } else if n.minors > n.count {
            fail(
                &format!("/nationalities/{i}/minors"),
                format!("{} is more than count {}", n.minors, n.count),
            );
        }
        total += i64::from(n.count.max(0));
    }
    if total > i64::from(event.persons) {
        fail(
            "/nationalities",
            format!(
                "counts add up to {total}, more than persons {}",
                event.persons
            ),
        );
    }

    if let Some(location) = &event.location {
        if !(-90.0..=90.0).contains(&location.lat) {
            fail(
                "/location/lat",
                format!("{} is outside -90..90", location.lat),
            );
        }
        if !(-180.0..=180.0).contains(&location.lon) {
            fail(
                "/location/lon",
                format!("{} is outside -180..180", location.lon),
            );
        }
    }
    if !(1..=6).contains(&event.information_credibility) {
        fail(
            "/information_credibility",
            format!(
                "{} is not a grade from 1 to 6",
                event.information_credibility
            ),
        );
    }
    for (pointer, text) in [
        ("/notes", &event.notes),
        ("/modus_operandi", &event.modus_operandi),
    ] {
        if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
            fail(pointer, format!("longer than {MAX_TEXT} bytes"));
        }
    }
    if event.attributes.len() > MAX_ATTRIBUTES {
        fail("/attributes", format!("more than {MAX_ATTRIBUTES} entries"));
    }
    errors
}

fn is_iso3(code: &str) -> bool {
    code.len() == 3 && isocountry::CountryCode::for_alpha3(code).is_ok()
}

fn not_iso3(code: &str) -> String {
    format!("{code:?} is not an ISO 3166-1 alpha-3 code")
}

#[cfg(test)]
mod tests {
    use crate::{GeoPoint, NationalityCount, sample};

    use super::*;

    const SKEW: Duration = Duration::from_secs(300);

    fn valid() -> IncidentEvent {
        let mut e = sample::incident(1, 1);
        e.nationalities = vec![NationalityCount {
            nationality: "AFG".into(),
            count: 3,
            minors: 1,
        }];
        e.persons = 4;
        e
    }

    fn pointers(e: &IncidentEvent, now: i64) -> Vec<String> {
        validate(e, now, SKEW)
            .into_iter()
            .map(|f| f.pointer)
            .collect()
    }

    #[test]
    fn a_sound_event_passes() {
        let e = valid();
        assert_eq!(pointers(&e, e.reported_at), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named() {
        let mut e = valid();
        e.reporting_country = "XXX".into();
        e.persons = 2;
        e.nationalities[0].minors = 5;
        e.facilitators = -1;
        e.location = Some(GeoPoint {
            lat: 95.0,
            lon: 10.0,
        });
        e.information_credibility = 7;
        e.occurred_at = e.reported_at + 1;
        let now = e.reported_at;
        assert_eq!(
            pointers(&e, now),
            [
                "/reporting_country",
                "/occurred_at",
                "/facilitators",
                "/nationalities/0/minors",
                "/nationalities",
                "/location/lat",
                "/information_credibility",
            ]
        );
    }

    #[test]
    fn the_future_is_allowed_only_within_the_skew() {
        let e = valid();
        let now = e.reported_at - SKEW.as_millis() as i64;
        assert!(pointers(&e, now).is_empty());
        assert_eq!(pointers(&e, now - 1), ["/reported_at"]);
    }

    #[test]
    fn metric_reasons_drop_indices() {
        let f = FieldError::new("/nationalities/3/count", "x");
        assert_eq!(f.metric_reason(), "nationalities.count");
    }
}
