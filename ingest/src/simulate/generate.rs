//! The event stream: generates day after day in event time and publishes in report time.
//! Reports arrive up to three weeks late, so drafts wait in a min-heap on `reported_at`
//! until no later day can produce an earlier report; memory stays bounded by that window.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use relec_schemas::{IncidentCategory, IncidentEvent};

use super::Simulation;
use super::incident::{self, Draft};
use super::plan::{self, DAY_MS, HOUR_MS};
use super::rng::Rng;

/// Stream keys beyond the per-route ones, so scenario incidents draw from streams of their
/// own and leave the ordinary incidents of the run untouched.
const SURGE_KEY: u64 = 1 << 32;
const CASUALTY_KEY: u64 = 2 << 32;
const SMUGGLING_KEY: u64 = 3 << 32;
/// Backlog jitter draws from a stream per event, on a day no run reaches.
const SILENCE_DAY: u32 = u32::MAX;

/// A draft waiting for its report time; ordered so `BinaryHeap` pops the earliest report
/// first, ties broken by generation order so the stream is the same on every run.
#[derive(Debug)]
struct Pending {
    seq: u64,
    draft: Draft,
}

impl Pending {
    fn key(&self) -> (i64, u64) {
        (self.draft.reported_at, self.seq)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

#[derive(Debug)]
pub(crate) struct Events<'a> {
    sim: &'a Simulation,
    /// The next day to generate.
    day: u32,
    /// Drafts reported before this instant can be published: every day not generated yet
    /// starts at or after it, and nothing is reported before it occurs.
    ready_before: i64,
    end_ms: i64,
    seq: u64,
    pending: BinaryHeap<Pending>,
}

impl<'a> Events<'a> {
    pub(crate) fn new(sim: &'a Simulation) -> Self {
        let start = sim.config.start_ms;
        Events {
            sim,
            day: 0,
            ready_before: start,
            end_ms: start + i64::from(sim.config.days) * DAY_MS,
            seq: 0,
            pending: BinaryHeap::new(),
        }
    }

    fn push(&mut self, mut draft: Draft) {
        draft.reported_at = self.after_silences(draft.point().agency, draft.reported_at);
        self.pending.push(Pending {
            seq: self.seq,
            draft,
        });
        self.seq += 1;
    }

    /// A report due while its agency is silent goes out with the backlog when the agency
    /// is back, within three hours.
    fn after_silences(&self, agency: &str, mut reported_at: i64) -> i64 {
        // Repeat: a backlog can land inside a second, overlapping silence.
        let mut moved = true;
        while moved {
            moved = false;
            for &(silent, from, until) in &self.sim.effects.silences {
                if silent == agency && (from..until).contains(&reported_at) {
                    let mut rng = Rng::stream(self.sim.config.seed, SILENCE_DAY, self.seq);
                    let jitter = rng.below(3 * HOUR_MS as u64);
                    reported_at = until + jitter as i64;
                    moved = true;
                }
            }
        }
        reported_at
    }

    fn generate_day(&mut self) {
        let config = &self.sim.config;
        let day = self.day;
        let day_ms = config.start_ms + i64::from(day) * DAY_MS;
        let plans = plan::plan_day(&self.sim.effects, self.sim.scale, config.start_ms, day);
        for (route, plan) in plans.iter().enumerate() {
            let mut rng = Rng::stream(config.seed, day, route as u64);
            // Each route draws from its own stream: a scenario on one route never changes
            // another route's incidents, so runs with and without it compare exactly.
            let n = rng.poisson(plan.lambda);
            for _ in 0..n {
                let draft = incident::draft(&mut rng, route, plan, day_ms, None);
                // Dropped, not redrawn: every other incident stays exactly as it was.
                if !config.background_casualties
                    && draft.category == IncidentCategory::DeathOrMissing
                {
                    continue;
                }
                self.push(draft);
            }
            if plan.extra_trafficking > 0.0 {
                let mut rng = Rng::stream(config.seed, day, SURGE_KEY | route as u64);
                for _ in 0..rng.poisson(plan.extra_trafficking) {
                    let category = Some(IncidentCategory::Trafficking);
                    self.push(incident::draft(&mut rng, route, plan, day_ms, category));
                }
            }
            if plan.extra_smuggling > 0.0 {
                let mut rng = Rng::stream(config.seed, day, SMUGGLING_KEY | route as u64);
                for _ in 0..rng.poisson(plan.extra_smuggling) {
                    let category = Some(IncidentCategory::Smuggling);
                    self.push(incident::draft(&mut rng, route, plan, day_ms, category));
                }
            }
        }
        for (i, &(route, at_day, hour, dead, missing)) in
            self.sim.effects.casualties.iter().enumerate()
        {
            if at_day == day {
                let mut rng = Rng::stream(config.seed, day, CASUALTY_KEY | i as u64);
                let at_ms = day_ms + i64::from(hour) * HOUR_MS;
                self.push(incident::casualty(
                    &mut rng,
                    route,
                    &plans[route],
                    at_ms,
                    dead,
                    missing,
                ));
            }
        }
    }

    fn publish(&self, pending: Pending) -> IncidentEvent {
        let id = uuid::Builder::from_custom_bytes(id_bytes(self.sim.id_namespace, pending.seq))
            .into_uuid();
        pending.draft.into_event(id.to_string())
    }
}

/// A version 8 (custom) UUID: the run's namespace, then the generation counter. Unique
/// within a run, the same for the same configuration, different for any other.
fn id_bytes(namespace: u64, seq: u64) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&namespace.to_be_bytes());
    bytes[8..].copy_from_slice(&seq.to_be_bytes());
    bytes
}

impl Iterator for Events<'_> {
    type Item = IncidentEvent;

    fn next(&mut self) -> Option<IncidentEvent> {
        loop {
            if self
                .pending
                .peek()
                .is_some_and(|p| p.draft.reported_at < self.ready_before)
            {
                let pending = self.pending.pop()?;
                return Some(self.publish(pending));
            }
            if self.day >= self.sim.config.days {
                // What would be reported after the end of the run has not arrived yet, as
                // in a real feed: the last days are incomplete.
                return None;
            }
            self.generate_day();
            self.day += 1;
            self.ready_before =
                (self.sim.config.start_ms + i64::from(self.day) * DAY_MS).min(self.end_ms);
        }
    }
}
