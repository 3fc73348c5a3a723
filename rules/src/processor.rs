//! The rules of one input partition, as pure logic: deduplicate by `event_id`, hold each
//! event until the day it was reported closes (plus the allowed lateness), fold it into the
//! state of every group key it belongs to, evaluate the rules for that day, and turn their
//! verdicts into alert transitions. No I/O: the stage feeds it events and writes what it
//! returns, so tests run it directly.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use relec_schemas::{Alert, AlertStatus, IncidentEvent, Tlp};
use rhai::Engine;

use crate::{
    dims,
    group::{Group, Verdict},
    lifecycle::{self, Change, Phase},
    rule::{EvalError, Rule, Trigger},
    state::KeyState,
    time::{DAY_MS, Day, day_of, end_of},
};

/// Labels naming a group key, in `group_by` order.
pub type Key = Vec<(String, String)>;

/// Rules with the same `group_by` and the same filter share one state per key; a rule
/// with another filter counts other events, so it gets its own.
type GroupingId = (Vec<String>, BTreeMap<String, Vec<String>>);

fn grouping_id(rule: &Rule) -> GroupingId {
    (rule.group_by.clone(), rule.filter.clone())
}

/// The state `rule` sees for `key` (empty if the key has none yet), found without
/// building a grouping id: this runs on every evaluation.
fn state_of(groupings: &BTreeMap<GroupingId, Grouping>, rule: &Rule, key: &Key) -> Arc<KeyState> {
    groupings
        .iter()
        .find(|(id, _)| id.0 == rule.group_by && id.1 == rule.filter)
        .and_then(|(_, g)| g.keys.get(key))
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
    /// Evaluations run, by rule id.
    pub evaluations: Vec<String>,
}

/// All keys of one `group_by`.
#[derive(Debug, Default)]
struct Grouping {
    breakdowns: Vec<String>,
    keys: BTreeMap<Key, Arc<KeyState>>,
    /// A rule of this grouping: all share its filter, so it decides what an event adds.
    filter: Option<Arc<Rule>>,
}

#[derive(Debug, Clone)]
struct Tracked {
    phase: Option<Phase>,
    /// The firing alert, so its resolution carries the same labels, handling and evidence.
    firing: Option<Alert>,
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
    settings: Settings,
    groupings: BTreeMap<GroupingId, Grouping>,
    /// Events waiting for their report day to close, by report day.
    staging: BTreeMap<Day, Vec<Arc<IncidentEvent>>>,
    evaluated_through: Option<Day>,
    /// Latest `reported_at` seen.
    watermark: i64,
    /// The first day this processor evaluated.
    first_day: Option<Day>,
    seen: HashMap<String, Day>,
    alerts: BTreeMap<(String, Key), Tracked>,
    backoff: HashMap<String, Backoff>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field(
                "rules",
                &self.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            )
            .field("evaluated_through", &self.evaluated_through)
            .field("keys", &self.keys())
            .finish()
    }
}

impl Processor {
    pub fn new(engine: Arc<Engine>, rules: Vec<Arc<Rule>>, settings: Settings) -> Self {
        let mut p = Self {
            engine,
            rules: Vec::new(),
            settings,
            groupings: BTreeMap::new(),
            staging: BTreeMap::new(),
            evaluated_through: None,
            watermark: i64::MIN,
            first_day: None,
            seen: HashMap::new(),
            alerts: BTreeMap::new(),
            backoff: HashMap::new(),
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
        for rule in &rules {
            let g = self.groupings.entry(grouping_id(rule)).or_default();
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

    pub fn process(&mut self, event: IncidentEvent) -> Output {
        let mut out = Output::default();
        let occurred = day_of(event.occurred_at);
        if self.seen.insert(event.event_id.clone(), occurred).is_some() {
            out.duplicate = true;
            return out;
        }
        let event = Arc::new(event);
        self.immediate(&event, &mut out);

        let reported = day_of(event.reported_at);
        let through = *self.evaluated_through.get_or_insert(reported - 1);
        self.first_day.get_or_insert(reported);
        if reported <= through {
            // Its day was already evaluated: it counts from the next evaluation on.
            out.late = true;
            self.fold(&event);
        } else {
            self.staging
                .entry(reported)
                .or_default()
                .push(event.clone());
        }
        self.watermark = self.watermark.max(event.reported_at);
        while let Some(next) = self.evaluated_through.map(|d| d + 1)
            && end_of(next) + self.settings.lateness_ms <= self.watermark
        {
            self.close_day(next, &mut out);
        }
        out
    }

    /// Evaluates every open day whose end has passed `now_ms` + lateness, for streams that
    /// went quiet (a reporting-silence rule needs days to close with no events at all).
    pub fn advance_to(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        self.watermark = self.watermark.max(now_ms);
        while let Some(next) = self.evaluated_through.map(|d| d + 1)
            && end_of(next) + self.settings.lateness_ms <= self.watermark
        {
            self.close_day(next, &mut out);
        }
        out
    }

    fn fold(&mut self, event: &IncidentEvent) -> BTreeSet<(GroupingId, Key)> {
        let mut touched = BTreeSet::new();
        for (id, grouping) in &mut self.groupings {
            if !grouping
                .filter
                .as_ref()
                .is_some_and(|rule| rule.matches(event))
            {
                continue;
            }
            for key in dims::keys(event, &id.0) {
                let state = grouping.keys.entry(key.clone()).or_default();
                Arc::make_mut(state).add(event, &grouping.breakdowns);
                touched.insert((id.clone(), key));
            }
        }
        touched
    }

    fn close_day(&mut self, day: Day, out: &mut Output) {
        let mut touched = BTreeSet::new();
        let due: Vec<Day> = self.staging.range(..=day).map(|(d, _)| *d).collect();
        for d in due {
            for event in self.staging.remove(&d).unwrap_or_default() {
                touched.extend(self.fold(&event));
            }
        }
        let rules = self.rules.clone();
        for rule in &rules {
            let id = grouping_id(rule);
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
                    self.evaluate(rule, &key, day, None, out)
                };
                if let Some(verdict) = verdict {
                    self.step(rule, &key, day, &verdict, None, out);
                }
            }
        }
        self.evaluated_through = Some(day);
        self.prune(day);
    }

    fn immediate(&mut self, event: &Arc<IncidentEvent>, out: &mut Output) {
        let rules: Vec<Arc<Rule>> = self
            .rules
            .iter()
            .filter(|r| r.trigger == Trigger::Immediate && r.matches(event))
            .cloned()
            .collect();
        let day = day_of(event.occurred_at);
        for rule in rules {
            for key in dims::keys(event, &rule.group_by) {
                if let Some(verdict) = self.evaluate(&rule, &key, day, Some(event.clone()), out)
                    && verdict.fire
                {
                    self.step(&rule, &key, day, &verdict, Some(event), out);
                }
            }
        }
    }

    fn evaluate(
        &mut self,
        rule: &Rule,
        key: &Key,
        day: Day,
        event: Option<Arc<IncidentEvent>>,
        out: &mut Output,
    ) -> Option<Verdict> {
        let backoff = self.backoff.entry(rule.id.clone()).or_default();
        if backoff.skip > 0 {
            backoff.skip -= 1;
            return None;
        }
        let state = state_of(&self.groupings, rule, key);
        let group = Group {
            state,
            day,
            labels: Arc::new(key.iter().cloned().collect()),
            event,
            horizon_days: self.settings.horizon_days,
            history_days: self.first_day.map_or(1, |first| day - first + 1),
        };
        out.evaluations.push(rule.id.clone());
        match rule.evaluate(&self.engine, group) {
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

    fn step(
        &mut self,
        rule: &Rule,
        key: &Key,
        day: Day,
        verdict: &Verdict,
        event: Option<&IncidentEvent>,
        out: &mut Output,
    ) {
        let tracked = self
            .alerts
            .entry((rule.id.clone(), key.clone()))
            .or_insert(Tracked {
                phase: None,
                firing: None,
            });
        let Some(change) = lifecycle::step(
            &mut tracked.phase,
            day,
            verdict.fire,
            rule.for_days,
            rule.keep_firing_days,
        ) else {
            return;
        };
        let labels: BTreeMap<String, String> = key.iter().cloned().collect();
        match change {
            Change::Fired { since } => {
                let state = state_of(&self.groupings, rule, key);
                let alert = firing_alert(rule, &labels, &state, since, day, verdict, event);
                tracked.firing = Some(alert.clone());
                out.transitions.push(alert);
            }
            Change::Resolved { on, .. } => {
                if let Some(mut alert) = tracked.firing.take() {
                    alert.status = AlertStatus::Resolved;
                    alert.ends_at = Some(on * DAY_MS);
                    alert.generated_at = end_of(day);
                    alert.value = verdict.value;
                    out.transitions.push(alert);
                }
            }
        }
        if tracked.phase.is_none() && tracked.firing.is_none() {
            self.alerts.remove(&(rule.id.clone(), key.clone()));
        }
    }

    fn prune(&mut self, day: Day) {
        let oldest = day - self.settings.horizon_days + 1;
        for grouping in self.groupings.values_mut() {
            for state in grouping.keys.values_mut() {
                Arc::make_mut(state).prune(oldest);
            }
        }
        self.seen.retain(|_, d| *d >= oldest);
    }
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
