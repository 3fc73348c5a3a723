//! Helpers shared by the rules crate's script tests: events on chosen days, and groups.

#![allow(dead_code)]

use std::{path::PathBuf, sync::Arc};

use relec_rules::{
    group::Group,
    state::KeyState,
    time::{DAY_MS, Day},
};
use relec_schemas::{IncidentCategory, IncidentEvent, NationalityCount, sample};

/// 2026-04-11: a day far from the epoch, so windows never reach before it.
pub const TODAY: Day = 20_454 + 100;

pub fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pack")
}

/// An irregular crossing of `persons` on `route` on `day`, with no casualties, reported
/// an hour after it happened.
pub fn event(day: Day, persons: i32) -> IncidentEvent {
    let mut e = sample::incident(7, day as u64 * 1000 + persons as u64);
    e.occurred_at = day * DAY_MS + 3_600_000;
    e.reported_at = e.occurred_at + 3_600_000;
    e.category = IncidentCategory::IrregularCrossing;
    e.route = "BALKAN".to_owned();
    e.persons = persons;
    e.nationalities = Vec::new();
    e.facilitators = 0;
    e.victims = 0;
    e.dead = 0;
    e.missing = 0;
    e
}

pub fn nationality(code: &str, count: i32) -> NationalityCount {
    NationalityCount {
        nationality: code.to_owned(),
        count,
        minors: 0,
    }
}

pub fn state(events: &[IncidentEvent], breakdowns: &[&str]) -> KeyState {
    let breakdowns: Vec<String> = breakdowns.iter().map(|s| (*s).to_owned()).collect();
    let mut state = KeyState::default();
    for e in events {
        state.add(e, &breakdowns);
    }
    state
}

pub fn group(
    state: KeyState,
    day: Day,
    labels: &[(&str, &str)],
    event: Option<IncidentEvent>,
) -> Group {
    Group {
        state: Arc::new(state),
        day,
        labels: relec_rules::dims::owned(labels),
        event: event.map(Arc::new),
        horizon_days: 400,
        history_days: 400,
    }
}
