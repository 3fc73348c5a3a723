//! `relec rules backtest`: past incidents replayed through the rules at full speed, as the
//! stage would have evaluated them, collecting the alert transitions that would have been
//! written and what each rule cost. Pure: the command reads the file or topic and feeds
//! this; event time comes only from the events.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use relec_schemas::{Alert, AlertStatus, IncidentEvent};
use rhai::Engine;

use crate::{
    processor::{Output, Processor, Settings, route_keys},
    rule::Rule,
    time::{Day, day_of, end_of},
};

/// The report days to replay: alerts are shown from `from` on; events reported before it
/// still build the state (baselines need their weeks of history); the replay stops after
/// `to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Option<Day>,
    pub to: Option<Day>,
}

/// What one rule did and cost over the replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStats {
    pub evaluations: u64,
    /// Time spent in its evaluations.
    pub time: Duration,
    pub firing: u64,
    pub resolved: u64,
    /// Evaluations that failed, and the first failure's message.
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Where an event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    Processed,
    /// Reported after the window: not replayed.
    AfterWindow,
}

/// The result of a replay.
#[derive(Debug, Default)]
pub struct Report {
    /// The transitions in the window, by day; those of one day in the order the stage
    /// would have written them.
    pub transitions: Vec<Alert>,
    /// Every rule of the replay, by id, evaluated or not.
    pub rules: BTreeMap<String, RuleStats>,
    /// Events replayed (warm-up included).
    pub events: u64,
    /// Events whose id had been seen already: counted once.
    pub duplicates: u64,
    /// Events reported after their report day had been evaluated (input out of report
    /// order): counted from the next day on.
    pub late: u64,
    /// Events reported after the window, left out.
    pub after_window: u64,
    /// Transitions before the window (warm-up), left out.
    pub before_window: u64,
}

/// A replay in progress.
pub struct Backtest {
    processor: Processor,
    window: Window,
    /// Input partitions (1 for a file): event time is the slowest one still being read,
    /// as in the stage.
    sources: i32,
    last_report: Option<i64>,
    report: Report,
}

impl std::fmt::Debug for Backtest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backtest")
            .field("window", &self.window)
            .field("sources", &self.sources)
            .field("events", &self.report.events)
            .finish_non_exhaustive()
    }
}

impl Backtest {
    pub fn new(
        engine: Arc<Engine>,
        rules: Vec<Arc<Rule>>,
        settings: Settings,
        window: Window,
        sources: i32,
    ) -> Self {
        let mut report = Report::default();
        for rule in &rules {
            report.rules.insert(rule.id.clone(), RuleStats::default());
        }
        Self {
            processor: Processor::new(engine, rules, settings),
            window,
            sources: sources.max(1),
            last_report: None,
            report,
        }
    }

    /// Replays one event read from input partition `source` (0 for a file).
    pub fn feed(&mut self, source: i32, event: IncidentEvent) -> Fed {
        if self
            .window
            .to
            .is_some_and(|to| day_of(event.reported_at) > to)
        {
            self.report.after_window += 1;
            return Fed::AfterWindow;
        }
        self.report.events += 1;
        let reported = event.reported_at;
        self.last_report = Some(self.last_report.map_or(reported, |r| r.max(reported)));
        let event = Arc::new(event);
        let keys = route_keys(self.processor.rules(), &event);
        let (copies, mut duplicates, mut late) = (keys.len(), 0, false);
        for key in &keys {
            let out = self.processor.process_keyed(key, &event);
            duplicates += usize::from(out.duplicate);
            late |= out.late;
            self.absorb(out);
        }
        self.report.duplicates += u64::from(copies > 0 && duplicates == copies);
        self.report.late += u64::from(late);
        let out = self
            .processor
            .advance_source(source, self.sources, reported, false);
        self.absorb(out);
        Fed::Processed
    }

    /// Input partition `source` has been read to its end: it no longer holds event time
    /// back.
    pub fn source_done(&mut self, source: i32) {
        let watermark = self.last_report.unwrap_or(i64::MIN);
        let out = self
            .processor
            .advance_source(source, self.sources, watermark, true);
        self.absorb(out);
    }

    /// Evaluates every day through the end of the window (or of the last report) and
    /// hands over the report.
    pub fn finish(mut self, lateness_ms: i64) -> Report {
        let last = self.window.to.or(self.last_report.map(day_of));
        if let Some(day) = last {
            let out = self.processor.advance_to(end_of(day) + lateness_ms);
            self.absorb(out);
        }
        // An immediate alert is written as its report arrives, before the previous day
        // closes: people read the history by day.
        self.report.transitions.sort_by_key(transition_day);
        self.report
    }

    fn absorb(&mut self, out: Output) {
        for (rule, took) in out.evaluations {
            let stats = self.report.rules.entry(rule).or_default();
            stats.evaluations += 1;
            stats.time += took;
        }
        for (rule, error) in out.errors {
            let stats = self.report.rules.entry(rule).or_default();
            stats.errors += 1;
            stats.first_error.get_or_insert_with(|| error.to_string());
        }
        for alert in out.transitions {
            if self
                .window
                .from
                .is_some_and(|from| transition_day(&alert) < from)
            {
                self.report.before_window += 1;
                continue;
            }
            let stats = self.report.rules.entry(alert.rule_id.clone()).or_default();
            match alert.status {
                AlertStatus::Firing => stats.firing += 1,
                AlertStatus::Resolved => stats.resolved += 1,
            }
            self.report.transitions.push(alert);
        }
    }
}

/// The day a transition belongs to: the evaluated day it fired or resolved on (for an
/// immediate alert, the day of the report that fired it).
pub fn transition_day(alert: &Alert) -> Day {
    let at = match alert.status {
        AlertStatus::Firing => alert.window_end,
        AlertStatus::Resolved => alert.generated_at,
    };
    day_of(at - 1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use relec_schemas::sample;

    use super::*;
    use crate::{
        fixture::parse_date,
        sandbox::{Limits, engine},
        time::DAY_MS,
    };

    const SETTINGS: Settings = Settings {
        lateness_ms: 3_600_000,
        horizon_days: 400,
    };

    /// Fires on a day with at least 10 persons on a route.
    const BUSY: &str = r#"
        fn condition(g) { let n = g.sum("persons", "1d"); #{ fire: n >= 10, value: n } }
        #{ id: "busy", title: "Busy", severity: "low", group_by: ["route"] }
    "#;

    fn event(day: Day, persons: i32, id: &str) -> IncidentEvent {
        let mut e = sample::incident(1, 0);
        e.event_id = id.to_owned();
        e.route = "R".to_owned();
        e.persons = persons;
        e.occurred_at = day * DAY_MS + 3_600_000;
        e.reported_at = e.occurred_at + 3_600_000;
        e
    }

    fn backtest(window: Window, sources: i32) -> Backtest {
        let engine = Arc::new(engine(&Limits::default()));
        let rule = Rule::from_source(&engine, Path::new("busy.rhai"), BUSY).unwrap();
        Backtest::new(engine, vec![Arc::new(rule)], SETTINGS, window, sources)
    }

    #[test]
    fn a_replay_collects_the_transitions_of_its_window_and_the_cost_per_rule() {
        let day = parse_date("2026-03-02").unwrap();
        let mut b = backtest(
            Window {
                from: Some(day + 2),
                to: Some(day + 4),
            },
            1,
        );
        // Busy on days 0, 3 and 6; quiet in between; day 6 is after the window.
        for (d, persons) in [(0, 12), (1, 1), (2, 1), (3, 15), (4, 1), (5, 1), (6, 20)] {
            b.feed(0, event(day + d, persons, &format!("e{d}")));
        }
        assert_eq!(b.feed(0, event(day + 1, 1, "e1")), Fed::Processed);
        let report = b.finish(SETTINGS.lateness_ms);
        let shown: Vec<(AlertStatus, Day)> = report
            .transitions
            .iter()
            .map(|a| (a.status, transition_day(a) - day))
            .collect();
        assert_eq!(
            shown,
            [(AlertStatus::Firing, 3), (AlertStatus::Resolved, 4)]
        );
        assert_eq!(report.before_window, 2, "day 0 fired and day 1 resolved");
        assert_eq!(report.after_window, 2, "days 5 and 6");
        assert_eq!(report.events, 6);
        assert_eq!(report.duplicates, 1);
        let busy = &report.rules["busy"];
        assert_eq!(busy.evaluations, 5, "days 0 to 4, one key each");
        assert_eq!((busy.firing, busy.resolved, busy.errors), (1, 1, 0));
    }

    #[test]
    fn event_time_is_the_slowest_partition_still_being_read() {
        let day = parse_date("2026-03-02").unwrap();
        let mut b = backtest(Window::default(), 2);
        // Partition 1 runs days ahead; partition 0's busy day 1 is not late for it.
        b.feed(0, event(day, 1, "a"));
        b.feed(1, event(day + 5, 1, "b"));
        b.feed(0, event(day + 1, 12, "c"));
        b.source_done(0);
        b.source_done(1);
        let report = b.finish(SETTINGS.lateness_ms);
        assert_eq!(report.late, 0);
        assert_eq!(report.transitions[0].status, AlertStatus::Firing);
        assert_eq!(transition_day(&report.transitions[0]), day + 1);
    }
}
