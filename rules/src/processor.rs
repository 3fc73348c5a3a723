//! The rules of one partition, as pure logic. Events arrive routed to a group key (see
//! [`route_keys`]); the processor deduplicates them per key, folds each into what its key
//! got on the day it was reported, merges that into the key's state when the day closes
//! (plus the allowed lateness), evaluates the rules for that day, and turns their verdicts
//! into alert transitions. No I/O: the
//! stage feeds it events and writes what it returns, so tests run it directly. What changed
//! since the last checkpoint is kept for the changelog (see `checkpoint.rs`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

use relec_schemas::{Alert, AlertStatus, IncidentEvent, Tlp};
use rhai::Engine;
use serde::{Deserialize, Serialize};

use crate::{
    checkpoint::Entry,
    dims,
    group::{Group, Verdict},
    lifecycle::{self, Change, Phase},
    rule::{EvalError, Rule, Trigger},
    state::{KeyState, slot},
    time::{DAY_MS, Day, day_of, end_of},
};

pub use crate::dims::Key;

/// Rules with the same `group_by` and the same filter share one state per key; a rule
/// with another filter counts other events, so it gets its own.
///
/// Shared and cheap to compare: every routed copy looks its grouping up in its report
/// day, and every changed key names it in an entry. The same grouping compares by
/// pointer; two others nearly always by a precomputed hash (its order is the hash's,
/// then the pair's, which is stable across builds and runs); copies do not allocate.
/// Serialised as the pair.
#[derive(Debug, Clone)]
pub struct GroupingId(Arc<Grouped>);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Grouped {
    /// XXH3 of the pair's JSON form: first in the order, so most comparisons stop there.
    hash: u64,
    group_by: Vec<String>,
    filter: Filter,
}

/// A rule's filter: dimension, and the values it allows; and under [`WHEN_ANY`], which
/// no dimension is named, its `when_any` counts (so the changelog's form is the same
/// with and without them).
type Filter = BTreeMap<String, Vec<String>>;

const WHEN_ANY: &str = "when_any";

impl GroupingId {
    pub fn new(group_by: Vec<String>, filter: Filter) -> Self {
        let json = serde_json::to_vec(&(&group_by, &filter)).unwrap_or_default();
        Self(Arc::new(Grouped {
            hash: xxhash_rust::xxh3::xxh3_64(&json),
            group_by,
            filter,
        }))
    }

    /// The grouping of `rule`.
    pub fn of(rule: &Rule) -> Self {
        let mut filter = rule.filter.clone();
        if !rule.when_any.is_empty() {
            filter.insert(WHEN_ANY.to_owned(), rule.when_any.clone());
        }
        Self::new(rule.group_by.clone(), filter)
    }

    pub fn group_by(&self) -> &[String] {
        &self.0.group_by
    }
}

impl PartialEq for GroupingId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for GroupingId {}

impl Ord for GroupingId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl PartialOrd for GroupingId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for GroupingId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.0.group_by, &self.0.filter).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for GroupingId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (group_by, filter) = <(Vec<String>, Filter)>::deserialize(deserializer)?;
        Ok(Self::new(group_by, filter))
    }
}

/// Whether `key` is a key of `group_by` (its dimensions, in order).
fn is_key_of(key: &Key, group_by: &[String]) -> bool {
    key.len() == group_by.len() && key.iter().zip(group_by).all(|((d, _), g)| d == g)
}

/// Every group key `event` must reach: for each distinct `group_by` among the rules whose
/// filter takes the event, its keys under that `group_by`. The stage routes a copy of the
/// event to the partition of each key, so every key's state lives in one place.
pub fn route_keys(rules: &[Arc<Rule>], event: &IncidentEvent) -> Vec<Key> {
    let mut keys = Vec::new();
    each_route(rules, event, &mut |labels| keys.push(dims::owned(labels)));
    keys
}

/// [`route_keys`], as borrowed labels: for [`dims::Interner`], which builds each key once.
pub fn each_route(rules: &[Arc<Rule>], event: &IncidentEvent, f: &mut impl FnMut(&[(&str, &str)])) {
    let mut families: Vec<&[String]> = Vec::with_capacity(rules.len());
    for rule in rules {
        if !families.contains(&rule.group_by.as_slice()) && rule.matches(event) {
            families.push(&rule.group_by);
            dims::each_key(event, &rule.group_by, f);
        }
    }
}

/// The state the rules of grouping `id` see for `key` (empty if the key has none yet).
fn state_of(
    groupings: &BTreeMap<GroupingId, Grouping>,
    id: &GroupingId,
    key: &Key,
) -> Arc<KeyState> {
    groupings
        .get(id)
        .and_then(|g| g.keys.get(key))
        .cloned()
        .unwrap_or_default()
}

/// How far evaluation trails the reports, and how long state is kept.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A day is evaluated once reports have been seen this long past its end; a report for
    /// an already evaluated day is late (counted, folded into state for later days).
    pub lateness_ms: i64,
    /// Days of buckets kept per key (and of event ids remembered for deduplication).
    pub horizon_days: i64,
}

/// What processing one event produced.
#[derive(Debug, Default)]
pub struct Output {
    pub transitions: Vec<Alert>,
    pub duplicate: bool,
    pub late: bool,
    /// Rules that failed, with why; the rule backs off, the others carry on.
    pub errors: Vec<(String, EvalError)>,
    /// Evaluations run: rule id and how long the evaluation took.
    pub evaluations: Vec<(String, std::time::Duration)>,
}

impl Output {
    fn absorb(&mut self, other: Output) {
        self.transitions.extend(other.transitions);
        self.late |= other.late;
        self.errors.extend(other.errors);
        self.evaluations.extend(other.evaluations);
    }
}

/// All keys of one grouping.
#[derive(Debug, Default)]
pub(crate) struct Grouping {
    breakdowns: Vec<String>,
    pub(crate) keys: BTreeMap<Key, Arc<KeyState>>,
    /// A rule of this grouping: all share its filter, so it decides what an event adds.
    filter: Option<Arc<Rule>>,
}

/// The alert of one rule and key, while it is pending or firing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tracked {
    phase: Option<Phase>,
    /// The firing alert, so its resolution carries the same labels, handling and evidence.
    firing: Option<Alert>,
}

/// Where the processor is in event time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Clock {
    pub(crate) evaluated_through: Option<Day>,
    /// How far event time has got: days whose end plus the lateness lie before it close.
    pub(crate) watermark: i64,
    /// The first day this processor evaluated.
    pub(crate) first_day: Option<Day>,
    /// The input partitions' own watermarks, when events arrive routed from several (see
    /// [`Processor::advance_source`]), and how many input partitions there are.
    pub(crate) sources: BTreeMap<i32, Source>,
    pub(crate) source_count: i32,
}

/// What the router reported about one input partition.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Source {
    /// The latest report time routed from it.
    pub(crate) watermark: i64,
    /// Read to its end when reported: it holds nothing back.
    pub(crate) idle: bool,
}

/// Skips a failing rule for a growing number of evaluations, so a broken rule costs little
/// while it stays broken, and recovers by itself once fixed.
#[derive(Debug, Default, Clone, Copy)]
struct Backoff {
    skip: u32,
    next: u32,
}

const MAX_BACKOFF: u32 = 1024;

pub struct Processor {
    engine: Arc<Engine>,
    rules: Vec<Arc<Rule>>,
    /// The grouping of each rule, as the key in `groupings` (so lookups compare pointers).
    ids: Vec<GroupingId>,
    settings: Settings,
    pub(crate) groupings: BTreeMap<GroupingId, Grouping>,
    /// What the reports of each still open day add to each key, folded apart: merged
    /// into the keys' state when the day closes, so that a day is evaluated on the reports
    /// made by its end, whatever arrived in between.
    pub(crate) staging: BTreeMap<Day, BTreeMap<GroupingId, StagedKeys>>,
    pub(crate) clock: Clock,
    /// Digests of (key, event id) seen, by the event's day, for deduplication.
    pub(crate) seen: BTreeMap<Day, SeenDay>,
    pub(crate) alerts: BTreeMap<(String, Key), Tracked>,
    backoff: BTreeMap<String, Backoff>,
    /// Entries changed since the last checkpoint.
    pub(crate) dirty: BTreeSet<Entry>,
    /// Keys of whole events ([`Processor::process`]), each built once.
    interner: dims::Interner<()>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field(
                "rules",
                &self.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            )
            .field("evaluated_through", &self.clock.evaluated_through)
            .field("keys", &self.keys())
            .finish()
    }
}

impl Processor {
    pub fn new(engine: Arc<Engine>, rules: Vec<Arc<Rule>>, settings: Settings) -> Self {
        let mut p = Self {
            engine,
            rules: Vec::new(),
            ids: Vec::new(),
            settings,
            groupings: BTreeMap::new(),
            staging: BTreeMap::new(),
            clock: Clock {
                watermark: i64::MIN,
                ..Clock::default()
            },
            seen: BTreeMap::new(),
            alerts: BTreeMap::new(),
            backoff: BTreeMap::new(),
            dirty: BTreeSet::new(),
            interner: dims::Interner::default(),
        };
        p.set_rules(rules);
        p
    }

    /// Swaps the rule set (hot reload). State of groupings no rule uses any more is kept
    /// until the horizon drops it, so a rule restored soon after finds its history.
    pub fn set_rules(&mut self, rules: Vec<Arc<Rule>>) {
        // A grouping no rule uses any more stops taking events.
        for g in self.groupings.values_mut() {
            g.filter = None;
        }
        self.ids.clear();
        for rule in &rules {
            let id = GroupingId::of(rule);
            let id = match self.groupings.get_key_value(&id) {
                Some((known, _)) => known.clone(),
                None => id,
            };
            self.ids.push(id.clone());
            let g = self.groupings.entry(id).or_default();
            g.filter = Some(rule.clone());
            for b in &rule.breakdown {
                if !g.breakdowns.contains(b) {
                    g.breakdowns.push(b.clone());
                }
            }
        }
        self.rules = rules;
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Group keys held, over all groupings.
    pub fn keys(&self) -> usize {
        self.groupings.values().map(|g| g.keys.len()).sum()
    }

    /// Buckets held, over all keys: the state-size metric.
    pub fn buckets(&self) -> usize {
        self.groupings
            .values()
            .flat_map(|g| g.keys.values())
            .map(|s| s.buckets())
            .sum()
    }

    /// Alerts held, pending and firing.
    pub fn alert_counts(&self) -> (usize, usize) {
        self.alerts
            .values()
            .fold((0, 0), |(p, f), t| match t.phase {
                Some(Phase::Pending { .. }) => (p + 1, f),
                Some(Phase::Firing { .. }) => (p, f + 1),
                None => (p, f),
            })
    }

    /// The latest report time seen: the processor's event-time clock.
    pub fn watermark(&self) -> i64 {
        self.clock.watermark
    }

    /// The last day evaluated, if any.
    pub fn evaluated_through(&self) -> Option<Day> {
        self.clock.evaluated_through
    }

    /// Processes a whole event: a copy for each of its [`route_keys`], as if all keys lived
    /// in this processor (one partition, tests, benchmarks).
    pub fn process(&mut self, event: IncidentEvent) -> Output {
        let mut keys = Vec::new();
        let interner = &mut self.interner;
        each_route(&self.rules, &event, &mut |labels| {
            let Ok((key, ())) = interner.get(labels, |_| Ok::<_, std::convert::Infallible>(()));
            keys.push(key);
        });
        let copies = keys.len();
        let event = Arc::new(event);
        let mut out = Output::default();
        let mut duplicates = 0;
        for key in &keys {
            let o = self.process_keyed(key, &event);
            duplicates += usize::from(o.duplicate);
            out.absorb(o);
        }
        out.duplicate = copies > 0 && duplicates == copies;
        self.advance(event.reported_at, &mut out);
        out
    }

    /// Processes the copy of `event` routed to `key`. Event time does not move: with
    /// events routed from several input partitions, it moves with the slowest of them
    /// ([`Processor::advance_source`]).
    pub fn process_keyed(&mut self, key: &Key, event: &Arc<IncidentEvent>) -> Output {
        let mut out = Output::default();
        let occurred = day_of(event.occurred_at);
        if !(self.seen.entry(occurred).or_default()).insert(key, &event.event_id) {
            out.duplicate = true;
            return out;
        }
        self.immediate(key, event, &mut out);

        let reported = day_of(event.reported_at);
        let through = *self.clock.evaluated_through.get_or_insert(reported - 1);
        self.clock.first_day.get_or_insert(reported);
        if reported <= through {
            // Its day was already evaluated: it counts from the next evaluation on.
            out.late = true;
            self.fold(key, event);
        } else {
            self.stage(reported, key, event);
        }
        out
    }

    /// Input partition `source` (of `count`) has been routed up to report time
    /// `watermark`; `idle` if it was read to its end. Event time moves to the slowest
    /// partition still being read (to the fastest when all are idle), once every
    /// partition has reported: an event from a partition that lags behind is never late
    /// because another one ran ahead.
    pub fn advance_source(
        &mut self,
        source: i32,
        count: i32,
        watermark: i64,
        idle: bool,
    ) -> Output {
        let clock = &mut self.clock;
        clock.source_count = count;
        clock.sources.retain(|s, _| *s < count);
        let entry = clock
            .sources
            .entry(source)
            .or_insert(Source { watermark, idle });
        entry.watermark = entry.watermark.max(watermark);
        entry.idle = idle;
        let mut out = Output::default();
        self.dirty.insert(Entry::Clock);
        if clock.sources.len() < count as usize {
            return out;
        }
        let sources = clock.sources.values();
        let now = sources
            .clone()
            .filter(|s| !s.idle)
            .map(|s| s.watermark)
            .min()
            .or_else(|| sources.map(|s| s.watermark).max())
            .unwrap_or(i64::MIN);
        self.advance(now, &mut out);
        out
    }

    /// Evaluates every open day whose end has passed `now_ms` + lateness: for partitions
    /// that went quiet while others did not, and for days with no events at all (a
    /// reporting-silence rule needs them to close).
    pub fn advance_to(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        self.advance(now_ms, &mut out);
        out
    }

    fn advance(&mut self, now_ms: i64, out: &mut Output) {
        if now_ms > self.clock.watermark {
            self.clock.watermark = now_ms;
        }
        self.dirty.insert(Entry::Clock);
        while let Some(next) = self.clock.evaluated_through.map(|d| d + 1)
            && end_of(next) + self.settings.lateness_ms <= self.clock.watermark
        {
            self.close_day(next, out);
        }
    }

    /// Adds a late event to the state of its key in every grouping that counts it.
    fn fold(&mut self, key: &Key, event: &IncidentEvent) {
        for (id, grouping) in &mut self.groupings {
            if counts(id, grouping, key, event) {
                let state = grouping.keys.entry(key.clone()).or_default();
                Arc::make_mut(state).add(event, &grouping.breakdowns);
                self.dirty.insert(Entry::State(id.clone(), key.clone()));
            }
        }
    }

    /// Adds an event of open report day `day` to what that day brings its key, in every
    /// grouping that counts it.
    fn stage(&mut self, day: Day, key: &Key, event: &IncidentEvent) {
        let staged = self.staging.entry(day).or_default();
        for (id, grouping) in &self.groupings {
            if !counts(id, grouping, key, event) {
                continue;
            }
            let keys = match staged.get_mut(id) {
                Some(keys) => keys,
                None => staged.entry(id.clone()).or_default(),
            };
            let delta = match keys.get_mut(key) {
                Some(delta) => delta,
                None => keys.entry(key.clone()).or_default(),
            };
            delta.state.add(event, &grouping.breakdowns);
            delta.dirty = true;
        }
    }

    fn close_day(&mut self, day: Day, out: &mut Output) {
        let mut touched: BTreeSet<(GroupingId, Key)> = BTreeSet::new();
        let rest = self.staging.split_off(&(day + 1));
        for (at, groupings) in std::mem::replace(&mut self.staging, rest) {
            for (id, keys) in groupings {
                let grouping = self.groupings.entry(id.clone()).or_default();
                for (key, delta) in keys {
                    let state = grouping.keys.entry(key.clone()).or_default();
                    Arc::make_mut(state).merge(delta.state);
                    self.dirty.insert(Entry::State(id.clone(), key.clone()));
                    if delta.written {
                        self.dirty
                            .insert(Entry::Staged(at, id.clone(), key.clone()));
                    }
                    touched.insert((id.clone(), key));
                }
            }
        }
        let rules = self.rules.clone();
        for (at, rule) in rules.iter().enumerate() {
            let id = self.ids[at].clone();
            let Some(grouping) = self.groupings.get(&id) else {
                continue;
            };
            let keys: Vec<Key> = match rule.trigger {
                Trigger::Daily => grouping.keys.keys().cloned().collect(),
                Trigger::Event => touched
                    .iter()
                    .filter(|(g, _)| *g == id)
                    .map(|(_, k)| k.clone())
                    .collect(),
                Trigger::Immediate => Vec::new(),
            };
            // Keys whose alert is pending or firing are evaluated every day until it clears.
            let active: Vec<Key> = self
                .alerts
                .iter()
                .filter(|((id, _), t)| id == &rule.id && t.phase.is_some())
                .map(|((_, k), _)| k.clone())
                .collect();
            let keys: BTreeSet<Key> = keys.into_iter().chain(active).collect();
            for key in keys {
                let verdict = if rule.trigger == Trigger::Immediate {
                    Some(Verdict::default())
                } else {
                    self.evaluate(at, &key, day, None, out)
                };
                if let Some(verdict) = verdict {
                    self.step(at, &key, day, &verdict, None, out);
                }
            }
        }
        self.clock.evaluated_through = Some(day);
        self.prune(day);
    }

    fn immediate(&mut self, key: &Key, event: &Arc<IncidentEvent>, out: &mut Output) {
        // Immediate alerts live in report days, so that when one resolves depends on the
        // reports only, not on how far the stage had closed days when the next one came.
        let day = day_of(event.reported_at);
        // By index: this runs for every copy, and most rules are not immediate.
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            if !(rule.trigger == Trigger::Immediate
                && is_key_of(key, &rule.group_by)
                && rule.matches(event))
            {
                continue;
            }
            if let Some(verdict) = self.evaluate(i, key, day, Some(event.clone()), out)
                && verdict.fire
            {
                // Still firing from an earlier report that, by this report's day, would have
                // resolved at a day close: resolve it as that day close would have.
                let rule = &self.rules[i];
                let id = (rule.id.clone(), key.clone());
                if let Some(Phase::Firing { last_true, .. }) =
                    self.alerts.get(&id).and_then(|t| t.phase)
                {
                    let due = last_true + rule.keep_firing_days + 1;
                    if day >= due {
                        self.step(i, key, due, &Verdict::default(), None, out);
                    }
                }
                self.step(i, key, day, &verdict, Some(event), out);
            }
        }
    }

    /// Evaluates rule `at` (its index in the rule set) for `key` on `day`.
    fn evaluate(
        &mut self,
        at: usize,
        key: &Key,
        day: Day,
        event: Option<Arc<IncidentEvent>>,
        out: &mut Output,
    ) -> Option<Verdict> {
        let rule = &self.rules[at];
        let backoff = slot(&mut self.backoff, &rule.id);
        if backoff.skip > 0 {
            backoff.skip -= 1;
            return None;
        }
        let state = state_of(&self.groupings, &self.ids[at], key);
        let group = Group {
            state,
            day,
            labels: key.clone(),
            event,
            horizon_days: self.settings.horizon_days,
            history_days: self.clock.first_day.map_or(1, |first| day - first + 1),
        };
        let started = std::time::Instant::now();
        let result = rule.evaluate(&self.engine, group);
        out.evaluations.push((rule.id.clone(), started.elapsed()));
        match result {
            Ok(verdict) => {
                *backoff = Backoff::default();
                Some(verdict)
            }
            Err(e) => {
                backoff.next = (backoff.next * 2).clamp(1, MAX_BACKOFF);
                backoff.skip = backoff.next;
                out.errors.push((rule.id.clone(), e));
                None
            }
        }
    }

    /// Moves the alert of rule `at` (its index in the rule set) for `key` on `day`.
    fn step(
        &mut self,
        at: usize,
        key: &Key,
        day: Day,
        verdict: &Verdict,
        event: Option<&IncidentEvent>,
        out: &mut Output,
    ) {
        let rule = &self.rules[at];
        let tracked = self
            .alerts
            .entry((rule.id.clone(), key.clone()))
            .or_insert(Tracked {
                phase: None,
                firing: None,
            });
        let before = tracked.phase;
        let change = lifecycle::step(
            &mut tracked.phase,
            day,
            verdict.fire,
            rule.for_days,
            rule.keep_firing_days,
        );
        let labels: BTreeMap<String, String> = key.iter().cloned().collect();
        match change {
            None => {}
            Some(Change::Fired { since }) => {
                let state = state_of(&self.groupings, &self.ids[at], key);
                let alert = firing_alert(rule, &labels, &state, since, day, verdict, event);
                tracked.firing = Some(alert.clone());
                out.transitions.push(alert);
            }
            Some(Change::Resolved { on, .. }) => {
                if let Some(mut alert) = tracked.firing.take() {
                    alert.status = AlertStatus::Resolved;
                    alert.ends_at = Some(on * DAY_MS);
                    alert.generated_at = end_of(day);
                    alert.value = verdict.value;
                    out.transitions.push(alert);
                }
            }
        }
        let entry = (rule.id.clone(), key.clone());
        if change.is_some() || before != tracked.phase {
            self.dirty
                .insert(Entry::Alert(entry.0.clone(), entry.1.clone()));
        }
        if tracked.phase.is_none() && tracked.firing.is_none() {
            self.alerts.remove(&entry);
        }
    }

    fn prune(&mut self, day: Day) {
        let oldest = day - self.settings.horizon_days + 1;
        for (id, grouping) in &mut self.groupings {
            for (key, state) in &mut grouping.keys {
                if Arc::make_mut(state).prune(oldest) {
                    self.dirty.insert(Entry::State(id.clone(), key.clone()));
                }
            }
        }
        while let Some((&d, _)) = self.seen.first_key_value()
            && d < oldest
        {
            let Some(seen) = self.seen.remove(&d) else {
                continue;
            };
            self.dirty.insert(Entry::Seen(d));
            self.dirty
                .extend((0..seen.parts).map(|p| Entry::part(d, p, seen.sha256)));
        }
    }
}

/// Whether the state of `grouping` (with id `id`) for `key` counts `event`.
fn counts(id: &GroupingId, grouping: &Grouping, key: &Key, event: &IncidentEvent) -> bool {
    is_key_of(key, id.group_by())
        && grouping
            .filter
            .as_ref()
            .is_some_and(|rule| rule.matches(event))
}

/// What the reports of one open day add to each key of a grouping: hashed, as every
/// routed copy looks its key up here (a fixed seed, so runs are alike).
pub(crate) type StagedKeys = HashMap<Key, Staged, foldhash::fast::FixedState>;

/// What the reports of one open day add to one key.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub(crate) state: KeyState,
    /// Changed since the last checkpoint.
    pub(crate) dirty: bool,
    /// In the changelog: closing the day must delete it there.
    pub(crate) written: bool,
}

/// The copies of one day's events seen, for deduplication. The changelog holds them in
/// parts: the first checkpoint that sees the day writes all of them, each later one what
/// was added since, so a checkpoint writes only the new digests; every
/// [`SeenDay::MAX_PARTS`] parts they are written again as one.
#[derive(Debug, Default)]
pub(crate) struct SeenDay {
    pub(crate) digests: HashSet<u64, BuildHasherDefault<Uniform>>,
    /// Added since the last checkpoint, once the day is in the changelog: the next part.
    /// Kept only then, so a processor that never checkpoints (a backtest, the fixture
    /// cases, `bench rules`) does not hold every digest twice.
    pub(crate) fresh: Vec<u64>,
    /// Parts in the changelog: `0..parts`.
    pub(crate) parts: u32,
    /// Has ids the changelog lacks: the next checkpoint writes a part (a flag here, not
    /// an entry in the dirty set, which every routed copy would search).
    pub(crate) changed: bool,
    /// The day was restored from digests of builds before xxh3 (SHA-256, see
    /// [`sha256_digest`]): it keeps making them that way until it expires, so an event
    /// seen before an upgrade is still a duplicate after it.
    pub(crate) sha256: bool,
}

impl SeenDay {
    pub(crate) const MAX_PARTS: u32 = 64;

    /// Remembers the copy of event `event_id` routed to `key`; false if it was seen
    /// already.
    fn insert(&mut self, key: &Key, event_id: &str) -> bool {
        let digest = if self.sha256 {
            sha256_digest(key, event_id)
        } else {
            digest(key, event_id)
        };
        let new = self.digests.insert(digest);
        if new {
            self.changed = true;
            if self.parts > 0 {
                self.fresh.push(digest);
            }
        }
        new
    }
}

/// Hashes a digest to itself: digests are uniform already, so the set need not hash
/// them again.
#[derive(Debug, Default)]
pub(crate) struct Uniform(u64);

impl Hasher for Uniform {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What deduplication remembers of one routed copy: a digest of its key and event id
/// (XXH3, 64 bits: a stable algorithm, so the changelog's digests mean the same to every
/// later build).
pub(crate) fn digest(key: &Key, event_id: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for (d, v) in key.iter() {
        h.update(d.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    h.update(event_id.as_bytes());
    h.digest()
}

/// The digest of builds before XXH3: the first 8 bytes of a SHA-256, eight times the
/// cost. Only days restored from such a changelog use it.
pub(crate) fn sha256_digest(key: &Key, event_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (d, v) in key.iter() {
        h.update(d.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.update(event_id.as_bytes());
    let bytes: [u8; 8] = h.finalize()[..8].try_into().expect("8 bytes");
    u64::from_le_bytes(bytes)
}

fn firing_alert(
    rule: &Rule,
    labels: &BTreeMap<String, String>,
    state: &KeyState,
    since: Day,
    day: Day,
    verdict: &Verdict,
    event: Option<&IncidentEvent>,
) -> Alert {
    let window_start = day - rule.window_days + 1;
    let (handling, countries, evidence, starts_at) = match event {
        Some(e) => (
            e.handling,
            BTreeSet::from([e.reporting_country.clone()]),
            vec![e.event_id.clone()],
            e.occurred_at,
        ),
        None => {
            let (h, c) = state.handling_and_countries(window_start, day);
            let mut evidence = state.evidence(window_start, day);
            evidence.truncate(Alert::MAX_EVIDENCE);
            // No evidence in the window means nothing to protect, but default to the
            // most restrictive code rather than guess.
            (h.unwrap_or(Tlp::Red), c, evidence, since * DAY_MS)
        }
    };
    let mut all_labels = rule.render_labels(labels, verdict, day);
    all_labels.insert("rule".into(), rule.id.clone());
    Alert {
        fingerprint: fingerprint(&rule.id, labels),
        rule_id: rule.id.clone(),
        rule_version: rule.version.clone(),
        status: AlertStatus::Firing,
        severity: rule.severity,
        labels: all_labels,
        annotations: rule.render_annotations(labels, verdict, day),
        starts_at,
        ends_at: None,
        window_start: window_start * DAY_MS,
        window_end: end_of(day),
        value: verdict.value,
        threshold: verdict.threshold,
        handling,
        countries: countries.into_iter().collect(),
        evidence,
        generated_at: event.map_or(end_of(day), |e| e.reported_at),
    }
}

/// Stable id of an alert: the rule id and the group labels, hashed.
pub fn fingerprint(rule_id: &str, labels: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    for (k, v) in labels {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
