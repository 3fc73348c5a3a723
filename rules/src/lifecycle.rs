//! The life of one alert (one rule, one group key): pending while its condition has held
//! for less than `for`, firing once it has, resolved when it has been false for longer than
//! `keep_firing_for`. Steps are taken per evaluated day in event time, so the same days
//! give the same transitions however the events arrived.

use serde::{Deserialize, Serialize};

use crate::time::Day;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending { since: Day },
    Firing { since: Day, last_true: Day },
}

/// What a step did, when it is worth writing down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Fired { since: Day },
    Resolved { since: Day, on: Day },
}

/// Advances `phase` (None = inactive) by one evaluation of day `day` whose condition was
/// `holds`, with the rule's `for` and `keep_firing_for` in days.
pub fn step(
    phase: &mut Option<Phase>,
    day: Day,
    holds: bool,
    for_days: i64,
    keep_days: i64,
) -> Option<Change> {
    match (*phase, holds) {
        (None, false) => None,
        (None, true) if for_days == 0 => {
            *phase = Some(Phase::Firing {
                since: day,
                last_true: day,
            });
            Some(Change::Fired { since: day })
        }
        (None, true) => {
            *phase = Some(Phase::Pending { since: day });
            None
        }
        (Some(Phase::Pending { .. }), false) => {
            *phase = None;
            None
        }
        (Some(Phase::Pending { since }), true) if day - since >= for_days => {
            *phase = Some(Phase::Firing {
                since: day,
                last_true: day,
            });
            Some(Change::Fired { since: day })
        }
        (Some(Phase::Pending { .. }), true) => None,
        (Some(Phase::Firing { since, .. }), true) => {
            *phase = Some(Phase::Firing {
                since,
                last_true: day,
            });
            None
        }
        (Some(Phase::Firing { since, last_true }), false) if day - last_true > keep_days => {
            *phase = None;
            Some(Change::Resolved { since, on: day })
        }
        (Some(Phase::Firing { .. }), false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(days: &[bool], for_days: i64, keep: i64) -> Vec<(Day, Change)> {
        let mut phase = None;
        days.iter()
            .enumerate()
            .filter_map(|(d, &holds)| {
                step(&mut phase, d as Day, holds, for_days, keep).map(|c| (d as Day, c))
            })
            .collect()
    }

    #[test]
    fn fires_at_once_without_for_and_resolves_when_false() {
        let t = run(&[false, true, true, true, false, false], 0, 0);
        assert_eq!(
            t,
            [
                (1, Change::Fired { since: 1 }),
                (4, Change::Resolved { since: 1, on: 4 })
            ]
        );
    }

    #[test]
    fn pending_until_for_has_passed() {
        assert_eq!(run(&[true, false, true, true, false], 2, 0), []);
        let t = run(&[true, true, true, false], 2, 0);
        assert_eq!(
            t,
            [
                (2, Change::Fired { since: 2 }),
                (3, Change::Resolved { since: 2, on: 3 })
            ]
        );
    }

    #[test]
    fn keep_firing_bridges_short_gaps() {
        let t = run(&[true, false, true, false, false, false], 0, 2);
        assert_eq!(
            t,
            [
                (0, Change::Fired { since: 0 }),
                (5, Change::Resolved { since: 0, on: 5 })
            ]
        );
    }

    #[test]
    fn a_thousand_true_days_fire_once() {
        let t = run(&[true; 1000], 0, 0);
        assert_eq!(t.len(), 1);
    }
}
