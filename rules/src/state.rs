//! Windowed state of one group key (a route, an agency, a country...): daily buckets of
//! counts by event day, optional breakdowns by a sub-dimension (nationality on a route,
//! say), and first/last-seen times, kept for a horizon. Buckets only ever add, so the
//! order events arrive in does not change what they hold.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use relec_schemas::{Alert, IncidentEvent, Tlp};
use serde::{Deserialize, Serialize};

use crate::time::{Day, day_of};

/// The numeric fields a rule can count or sum.
pub const FIELDS: [&str; 7] = [
    "events",
    "persons",
    "facilitators",
    "victims",
    "dead",
    "missing",
    "minors",
];

/// Sums of one day (or of one sub-key on one day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub events: i64,
    pub persons: i64,
    pub facilitators: i64,
    pub victims: i64,
    pub dead: i64,
    pub missing: i64,
    pub minors: i64,
}

impl Counters {
    pub fn of(event: &IncidentEvent) -> Self {
        Self {
            events: 1,
            persons: event.persons.into(),
            facilitators: event.facilitators.into(),
            victims: event.victims.into(),
            dead: event.dead.into(),
            missing: event.missing.into(),
            minors: event
                .nationalities
                .iter()
                .map(|n| i64::from(n.minors))
                .sum(),
        }
    }

    pub fn add(&mut self, other: &Counters) {
        self.events += other.events;
        self.persons += other.persons;
        self.facilitators += other.facilitators;
        self.victims += other.victims;
        self.dead += other.dead;
        self.missing += other.missing;
        self.minors += other.minors;
    }

    /// One field by name (see [`FIELDS`]).
    pub fn field(&self, name: &str) -> Option<i64> {
        Some(Self::getter(name)?(self))
    }

    /// What reads one field, looked up once for many counters.
    pub fn getter(name: &str) -> Option<fn(&Counters) -> i64> {
        Some(match name {
            "events" => |c| c.events,
            "persons" => |c| c.persons,
            "facilitators" => |c| c.facilitators,
            "victims" => |c| c.victims,
            "dead" => |c| c.dead,
            "missing" => |c| c.missing,
            "minors" => |c| c.minors,
            _ => return None,
        })
    }
}

/// Days a key was seen, by event time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Earliest and latest `occurred_at`, milliseconds.
    pub first: i64,
    pub last: i64,
}

impl Seen {
    fn at(ms: i64) -> Self {
        Self {
            first: ms,
            last: ms,
        }
    }

    fn include(&mut self, ms: i64) {
        self.first = self.first.min(ms);
        self.last = self.last.max(ms);
    }
}

/// Everything known about one group key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    days: BTreeMap<Day, Counters>,
    /// Sub-dimension -> sub-key -> day -> counters.
    subs: BTreeMap<String, BTreeMap<String, BTreeMap<Day, Counters>>>,
    seen: Option<Seen>,
    sub_seen: BTreeMap<String, BTreeMap<String, Seen>>,
    /// Latest `reported_at`: when the key last sent anything (reporting-silence rules).
    last_reported: Option<i64>,
    /// Per day: the most restrictive handling code and the reporting countries, so an
    /// alert over a window carries the handling and sources of all its evidence.
    meta: BTreeMap<Day, DayMeta>,
    /// The latest events by (occurred_at, event_id), at most [`Alert::MAX_EVIDENCE`]; kept
    /// by event time, not arrival, so the evidence does not depend on delivery order.
    /// Sorted, oldest first (a set before; both serialise as the same sequence).
    recent: VecDeque<(i64, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayMeta {
    pub handling: Option<Tlp>,
    pub countries: BTreeSet<String>,
}

impl KeyState {
    /// Adds `event`; `breakdowns` are the sub-dimensions rules of this grouping ask about.
    pub fn add(&mut self, event: &IncidentEvent, breakdowns: &[String]) {
        let day = day_of(event.occurred_at);
        let counters = Counters::of(event);
        self.days.entry(day).or_default().add(&counters);
        match &mut self.seen {
            Some(seen) => seen.include(event.occurred_at),
            None => self.seen = Some(Seen::at(event.occurred_at)),
        }
        self.last_reported = Some(
            self.last_reported
                .map_or(event.reported_at, |r| r.max(event.reported_at)),
        );
        let meta = self.meta.entry(day).or_default();
        meta.handling = meta.handling.max(Some(event.handling));
        if !meta.countries.contains(&event.reporting_country) {
            meta.countries.insert(event.reporting_country.clone());
        }
        remember(&mut self.recent, event.occurred_at, &event.event_id);
        for dim in breakdowns {
            let (subs, sub_seen) = (slot(&mut self.subs, dim), slot(&mut self.sub_seen, dim));
            for_each_sub(event, dim, &counters, |value, sub| {
                slot(subs, value).entry(day).or_default().add(&sub);
                match sub_seen.get_mut(value) {
                    Some(seen) => seen.include(event.occurred_at),
                    None => {
                        sub_seen.insert(value.to_owned(), Seen::at(event.occurred_at));
                    }
                }
            });
        }
    }

    /// Adds everything `other` holds, as if its events had been added here: a key's
    /// reports of a still open day are folded apart and merged when the day closes.
    pub fn merge(&mut self, other: KeyState) {
        merge_days(&mut self.days, &other.days);
        for (dim, values) in other.subs {
            let mine = slot(&mut self.subs, &dim);
            for (value, days) in values {
                match mine.get_mut(&value) {
                    Some(into) => merge_days(into, &days),
                    None => {
                        mine.insert(value, days);
                    }
                }
            }
        }
        merge_seen(&mut self.seen, other.seen);
        for (dim, values) in other.sub_seen {
            let mine = slot(&mut self.sub_seen, &dim);
            for (value, seen) in values {
                match mine.get_mut(&value) {
                    Some(into) => {
                        into.include(seen.first);
                        into.include(seen.last);
                    }
                    None => {
                        mine.insert(value, seen);
                    }
                }
            }
        }
        self.last_reported = self.last_reported.max(other.last_reported);
        for (day, meta) in other.meta {
            let mine = self.meta.entry(day).or_default();
            mine.handling = mine.handling.max(meta.handling);
            mine.countries.extend(meta.countries);
        }
        merge_recent(&mut self.recent, other.recent);
    }

    /// Sum of `field` over days `from..=to`.
    pub fn sum(&self, field: &str, from: Day, to: Day) -> Option<i64> {
        sum_range(&self.days, field, from, to)
    }

    /// Daily sums of `field` for days `from..=to`, oldest first, zeros included.
    pub fn daily(&self, field: &str, from: Day, to: Day) -> Option<Vec<i64>> {
        windows(&self.days, field, to, 1, to - from + 1)
    }

    /// Sums of `field` over `n` consecutive windows of `w` days, the last ending on day
    /// `to`, oldest first.
    pub fn windows(&self, field: &str, to: Day, w: i64, n: i64) -> Option<Vec<i64>> {
        windows(&self.days, field, to, w, n)
    }

    /// Sum of `field` for one sub-key over days `from..=to` (0 if never seen).
    pub fn sub_sum(&self, dim: &str, value: &str, field: &str, from: Day, to: Day) -> Option<i64> {
        match self.subs.get(dim).and_then(|m| m.get(value)) {
            Some(days) => sum_range(days, field, from, to),
            None => Counters::default().field(field),
        }
    }

    /// Sum of `field` over days `from..=to` across every sub-key of `dim` (0 if none).
    pub fn sub_total(&self, dim: &str, field: &str, from: Day, to: Day) -> Option<i64> {
        let get = Counters::getter(field)?;
        Some(self.subs.get(dim).map_or(0, |values| {
            (values.values())
                .map(|days| sum_days(days, get, from, to))
                .sum()
        }))
    }

    /// Sub-keys of `dim` with any activity in `from..=to`.
    pub fn sub_keys(&self, dim: &str, from: Day, to: Day) -> Vec<String> {
        self.subs
            .get(dim)
            .map(|m| {
                m.iter()
                    .filter(|(_, days)| days.range(from..=to).next().is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn seen(&self) -> Option<Seen> {
        self.seen
    }

    pub fn sub_seen(&self, dim: &str, value: &str) -> Option<Seen> {
        self.sub_seen.get(dim)?.get(value).copied()
    }

    pub fn last_reported(&self) -> Option<i64> {
        self.last_reported
    }

    /// The most restrictive handling and the countries of days `from..=to`.
    pub fn handling_and_countries(&self, from: Day, to: Day) -> (Option<Tlp>, BTreeSet<String>) {
        let mut handling = None;
        let mut countries = BTreeSet::new();
        for meta in self.meta.range(from..=to).map(|(_, m)| m) {
            handling = handling.max(meta.handling);
            countries.extend(meta.countries.iter().cloned());
        }
        (handling, countries)
    }

    /// Ids of the latest events that occurred in `from..=to`, newest first.
    pub fn evidence(&self, from: Day, to: Day) -> Vec<String> {
        self.recent
            .iter()
            .rev()
            .filter(|(at, _)| (from..=to).contains(&day_of(*at)))
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Drops buckets older than `oldest`; first/last seen are kept, they are small.
    /// Drops buckets of days before `oldest`; true if there were any.
    pub fn prune(&mut self, oldest: Day) -> bool {
        let stale = self
            .days
            .first_key_value()
            .is_some_and(|(d, _)| *d < oldest)
            || self
                .meta
                .first_key_value()
                .is_some_and(|(d, _)| *d < oldest)
            || self
                .subs
                .values()
                .flat_map(|s| s.values())
                .any(|days| days.first_key_value().is_some_and(|(d, _)| *d < oldest));
        if !stale {
            return false;
        }
        self.days = self.days.split_off(&oldest);
        self.meta = self.meta.split_off(&oldest);
        for subs in self.subs.values_mut() {
            for days in subs.values_mut() {
                *days = days.split_off(&oldest);
            }
            subs.retain(|_, days| !days.is_empty());
        }
        true
    }

    /// Buckets held, for the state-size metric.
    pub fn buckets(&self) -> usize {
        self.days.len()
            + self
                .subs
                .values()
                .flat_map(|m| m.values())
                .map(BTreeMap::len)
                .sum::<usize>()
    }
}

/// Keeps event `id` (occurred at `at`) among the latest [`Alert::MAX_EVIDENCE`] in
/// `recent`, if it is one of them. Events mostly come in time order, so it is mostly a
/// push at the back and a pop at the front.
fn remember(recent: &mut VecDeque<(i64, String)>, at: i64, id: &str) {
    let pos = recent.partition_point(|(a, i)| (*a, i.as_str()) < (at, id));
    let known = recent.get(pos).is_some_and(|(a, i)| *a == at && i == id);
    // Older than all of the latest: it would go again at once.
    if known || (pos == 0 && recent.len() >= Alert::MAX_EVIDENCE) {
        return;
    }
    recent.insert(pos, (at, id.to_owned()));
    if recent.len() > Alert::MAX_EVIDENCE {
        recent.pop_front();
    }
}

/// Merges the sorted `from` into the sorted `into`, keeping the latest
/// [`Alert::MAX_EVIDENCE`] (an event in both once): what [`remember`] of each would
/// keep, in one pass from the newest.
fn merge_recent(into: &mut VecDeque<(i64, String)>, from: VecDeque<(i64, String)>) {
    if from.is_empty() {
        return;
    }
    let mut mine = std::mem::take(into).into_iter().rev().peekable();
    let mut theirs = from.into_iter().rev().peekable();
    let mut newest_first = Vec::with_capacity(Alert::MAX_EVIDENCE);
    while newest_first.len() < Alert::MAX_EVIDENCE {
        let next = match (mine.peek(), theirs.peek()) {
            (Some(a), Some(b)) if a == b => {
                theirs.next();
                mine.next()
            }
            (Some(a), Some(b)) if a > b => mine.next(),
            (_, Some(_)) => theirs.next(),
            (Some(_), None) => mine.next(),
            (None, None) => break,
        };
        newest_first.extend(next);
    }
    into.extend(newest_first.into_iter().rev());
}

fn merge_days(into: &mut BTreeMap<Day, Counters>, from: &BTreeMap<Day, Counters>) {
    for (day, c) in from {
        into.entry(*day).or_default().add(c);
    }
}

fn merge_seen(into: &mut Option<Seen>, from: Option<Seen>) {
    match (into.as_mut(), from) {
        (Some(mine), Some(other)) => {
            mine.include(other.first);
            mine.include(other.last);
        }
        (None, Some(other)) => *into = Some(other),
        (_, None) => {}
    }
}

fn sum_range(days: &BTreeMap<Day, Counters>, field: &str, from: Day, to: Day) -> Option<i64> {
    Some(sum_days(days, Counters::getter(field)?, from, to))
}

/// What `get` reads, summed over days `from..=to` (0 for an empty range).
fn sum_days(days: &BTreeMap<Day, Counters>, get: fn(&Counters) -> i64, from: Day, to: Day) -> i64 {
    if from > to {
        return 0;
    }
    days.range(from..=to).map(|(_, c)| get(c)).sum()
}

/// One pass over the days of all `n` windows (a baseline of 52 weeks is one range, not 52).
fn windows(
    days: &BTreeMap<Day, Counters>,
    field: &str,
    to: Day,
    w: i64,
    n: i64,
) -> Option<Vec<i64>> {
    let get = Counters::getter(field)?;
    let mut sums = vec![0; n.max(0) as usize];
    if w > 0 && n > 0 {
        let from = to - w * n + 1;
        for (day, c) in days.range(from..=to) {
            sums[((day - from) / w) as usize] += get(c);
        }
    }
    Some(sums)
}

/// The entry of `key` in `map`, made if missing; the key is copied only then (this runs
/// for every event, breakdown and evaluation).
pub(crate) fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// Calls `f` with what `event` adds to each sub-key of `dim`. For nationality, persons
/// are split by the nationality counts; other dimensions take the whole event.
fn for_each_sub(
    event: &IncidentEvent,
    dim: &str,
    whole: &Counters,
    mut f: impl FnMut(&str, Counters),
) {
    match dim {
        "nationality" => {
            for n in &event.nationalities {
                let c = Counters {
                    persons: n.count.into(),
                    minors: n.minors.into(),
                    ..*whole
                };
                f(&n.nationality, c);
            }
        }
        _ => {
            if let Some(v) = crate::dims::value(event, dim) {
                f(v, *whole);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use relec_schemas::sample;

    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn the_latest_evidence_is_the_latest_events_in_any_order() {
        // 200 events, some at the same time, offered in a scrambled order and some twice.
        let events: Vec<(i64, String)> = (0..200u64)
            .map(|i| (((i * 37) % 120) as i64, format!("e{i:03}")))
            .collect();
        let mut want = events.clone();
        want.sort();
        let want: Vec<_> = want[want.len() - Alert::MAX_EVIDENCE..].to_vec();
        let mut recent = VecDeque::new();
        for i in (0..200).map(|i| (i * 71) % 200).chain(150..200) {
            let (at, id) = &events[i];
            remember(&mut recent, *at, id);
        }
        assert_eq!(Vec::from(recent), want);
    }

    #[test]
    fn merged_evidence_is_what_remembering_each_event_keeps() {
        let events: Vec<(i64, String)> = (0..200u64)
            .map(|i| (((i * 37) % 120) as i64, format!("e{i:03}")))
            .collect();
        // Two deques that overlap (the same events in both) and interleave in time, of
        // every size from empty to full.
        for (a, b) in [(0, 0), (0, 30), (30, 0), (10, 60), (60, 60), (150, 120)] {
            let (mut mine, mut theirs, mut want) =
                (VecDeque::new(), VecDeque::new(), VecDeque::new());
            for (at, id) in &events[..a] {
                remember(&mut mine, *at, id);
                remember(&mut want, *at, id);
            }
            for (at, id) in events[a / 2..a / 2 + b].iter().rev() {
                remember(&mut theirs, *at, id);
                remember(&mut want, *at, id);
            }
            merge_recent(&mut mine, theirs);
            assert_eq!(mine, want, "{a} and {b} events");
        }
    }

    #[test]
    fn consecutive_windows_are_the_sums_of_each_window() {
        let mut s = KeyState::default();
        for i in 0..200u64 {
            let mut e = sample::incident(2, i);
            e.occurred_at = (i as i64 * 7 % 61) * DAY_MS;
            s.add(&e, &[]);
        }
        for (to, w, n) in [(60, 7, 8), (59, 1, 61), (30, 5, 3), (100, 14, 4), (3, 7, 2)] {
            let each: Vec<i64> = (0..n)
                .rev()
                .map(|k| s.sum("persons", to - k * w - w + 1, to - k * w).unwrap())
                .collect();
            assert_eq!(s.windows("persons", to, w, n), Some(each), "{to} {w} {n}");
        }
        assert_eq!(s.windows("persons", 60, 7, 0), Some(vec![]));
        assert_eq!(s.windows("nonsense", 60, 7, 2), None);
    }

    #[test]
    fn buckets_sum_windows_and_breakdowns() {
        let mut s = KeyState::default();
        let breakdowns = vec!["nationality".to_owned(), "category".to_owned()];
        let mut events = Vec::new();
        for i in 0..50u64 {
            let mut e = sample::incident(1, i);
            e.occurred_at = (i as i64 % 10) * DAY_MS + 1000;
            e.reported_at = e.occurred_at + 5000;
            s.add(&e, &breakdowns);
            events.push(e);
        }
        let persons: i64 = events.iter().map(|e| i64::from(e.persons)).sum();
        assert_eq!(s.sum("persons", 0, 9), Some(persons));
        assert_eq!(s.sum("events", 0, 4), Some(25));
        assert_eq!(s.daily("events", 8, 11), Some(vec![5, 5, 0, 0]));
        assert_eq!(s.sum("nonsense", 0, 9), None);
        let afghans: i64 = events
            .iter()
            .flat_map(|e| &e.nationalities)
            .filter(|n| n.nationality == "AFG")
            .map(|n| i64::from(n.count))
            .sum();
        assert_eq!(
            s.sub_sum("nationality", "AFG", "persons", 0, 9),
            Some(afghans)
        );
        for (from, to) in [(0, 9), (3, 5), (9, 20)] {
            let each: i64 = (s.sub_keys("nationality", from, to).iter())
                .map(|n| s.sub_sum("nationality", n, "persons", from, to).unwrap())
                .sum();
            let total = s.sub_total("nationality", "persons", from, to);
            assert_eq!(total, Some(each), "{from}..={to}");
        }
        assert_eq!(s.sub_total("nationality", "persons", 5, 4), Some(0));
        assert_eq!(s.sub_total("crossing_point", "persons", 0, 9), Some(0));
        assert_eq!(s.sub_total("nationality", "nonsense", 0, 9), None);
        assert_eq!(s.seen().map(|x| x.first), Some(1000));

        // The same events in another order give the same state.
        let mut reversed = KeyState::default();
        for e in events.iter().rev() {
            reversed.add(e, &breakdowns);
        }
        assert_eq!(reversed, s);

        // Two halves added apart and merged give the same state too.
        let (mut early, mut late) = (KeyState::default(), KeyState::default());
        for (i, e) in events.iter().enumerate() {
            if i % 3 == 0 { &mut early } else { &mut late }.add(e, &breakdowns);
        }
        early.merge(late.clone());
        assert_eq!(early, s);

        s.prune(5);
        assert_eq!(s.sum("events", 0, 9), Some(25));
    }
}
