//! Event time at the router: how far each input partition's reports have been routed,
//! which partitions are idle, and the watermark markers that tell every shard.
//!
//! A partition read to its end holds event time back no longer, or one quiet route would
//! keep every day open. But "read to its end" is only true when the broker said so: a
//! burst published to all partitions lands on them some milliseconds apart, and the one
//! read first must not carry event time past the others. So a report moves event time past
//! an idle partition only once the broker has found that partition empty [`QUIET`] after
//! the report arrived.

use std::{
    collections::{BTreeMap, VecDeque},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// How long a partition must send nothing before it is asked whether it is read to its
/// end, and how long a report waits for the idle partitions to be asked again.
pub(crate) const QUIET: Duration = Duration::from_secs(1);
/// The broker is asked about one partition at most this often.
const RECHECK: Duration = Duration::from_millis(250);
/// Arrivals closer together than this are held as one.
const COALESCE: Duration = Duration::from_millis(10);

/// What the router tells every repartition partition about one input partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The input partition, and how many there are.
    pub source: i32,
    pub of: i32,
    /// The latest report time it vouches for.
    pub watermark: i64,
    /// Read to its end: it holds event time back no longer.
    pub idle: bool,
}

/// Every assigned input partition of one router.
pub(crate) struct Sources {
    of: i32,
    parts: BTreeMap<i32, Source>,
}

struct Source {
    last_record: Instant,
    last_check: Option<Instant>,
    /// When the broker last found it read to its end; `None` while it is being read.
    idle: Option<Instant>,
    /// Running maximum of the report times routed from it, by arrival, not yet vouched for.
    held: VecDeque<(Instant, i64)>,
    /// The latest report time it vouches for.
    released: i64,
    sent: Option<Marker>,
}

impl Source {
    fn new(now: Instant) -> Self {
        Source {
            last_record: now,
            last_check: None,
            idle: None,
            held: VecDeque::new(),
            released: i64::MIN,
            sent: None,
        }
    }

    fn latest(&self) -> i64 {
        self.held.back().map_or(self.released, |h| h.1)
    }
}

impl Sources {
    /// The router of a topic of `of` input partitions.
    pub fn new(of: i32) -> Self {
        Sources {
            of,
            parts: BTreeMap::new(),
        }
    }

    /// The partitions assigned now: others are forgotten, new ones start being read.
    pub fn assign(&mut self, partitions: &[i32], now: Instant) {
        self.parts.retain(|p, _| partitions.contains(p));
        for &p in partitions {
            self.parts.entry(p).or_insert_with(|| Source::new(now));
        }
    }

    /// After an abort: what was routed and marked is routed again, and a marker must not
    /// run ahead of the copies it vouches for.
    pub fn restart(&mut self, now: Instant) {
        for source in self.parts.values_mut() {
            *source = Source::new(now);
        }
    }

    /// A report of time `reported` routed from `partition`.
    pub fn record(&mut self, partition: i32, reported: i64, now: Instant) {
        let source = (self.parts.entry(partition)).or_insert_with(|| Source::new(now));
        source.last_record = now;
        source.idle = None;
        let latest = source.latest().max(reported);
        match source.held.back_mut() {
            Some(last) if now.duration_since(last.0) < COALESCE => *last = (now, latest),
            _ => source.held.push_back((now, latest)),
        }
    }

    /// Event time follows the wall clock (`now_ms`), whatever the partitions hold.
    pub fn follow_clock(&mut self, now_ms: i64) {
        for source in self.parts.values_mut() {
            source.released = source.released.max(now_ms);
        }
    }

    /// The partitions to ask the broker about now: ones that went quiet, and idle ones
    /// that a held report waits for.
    pub fn to_check(&self, now: Instant) -> Vec<i32> {
        let oldest = (self.parts.values())
            .filter_map(|s| s.held.front())
            .map(|h| h.0)
            .min();
        let waited_for = |found: Instant| {
            oldest.is_some_and(|arrived| found < arrived + QUIET && now >= arrived + QUIET)
        };
        (self.parts.iter())
            .filter(|(_, s)| s.last_check.is_none_or(|t| now >= t + RECHECK))
            .filter(|(_, s)| match s.idle {
                None => now >= s.last_record + QUIET,
                Some(found) => waited_for(found),
            })
            .map(|(p, _)| *p)
            .collect()
    }

    /// The broker's answer about `partition`, asked at `asked`: whether the consumer has
    /// read it to its end.
    pub fn checked(&mut self, partition: i32, at_end: bool, asked: Instant) {
        if let Some(source) = self.parts.get_mut(&partition) {
            source.last_check = Some(asked);
            source.idle = at_end.then_some(asked);
        }
    }

    /// Markers for the partitions whose watermark or idleness changed since they were last
    /// returned, in the order the shards must apply them.
    pub fn markers(&mut self) -> Vec<Marker> {
        // Reports that arrived before this were followed by a broker check of every idle
        // partition, QUIET or more later, that found nothing more there.
        let cutoff = (self.parts.values()).filter_map(|s| s.idle).min();
        let mut changed = Vec::new();
        for (&source, s) in &mut self.parts {
            while let Some(&(arrived, latest)) = s.held.front() {
                if cutoff.is_some_and(|c| arrived + QUIET > c) {
                    break;
                }
                s.released = s.released.max(latest);
                s.held.pop_front();
            }
            let marker = Marker {
                source,
                of: self.of,
                watermark: s.released,
                idle: s.idle.is_some(),
            };
            if s.sent != Some(marker) {
                s.sent = Some(marker);
                changed.push(marker);
            }
        }
        // Each shard applies them one at a time. Lowest watermark of a partition being read
        // first: one that holds event time back again (no longer idle) is in place before
        // another's moves event time on, so no shard passes what all of them allow.
        changed.sort_by_key(|m| (m.idle, m.watermark));
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A router of `of` partitions, all assigned at `t0`.
    fn assigned(of: i32, t0: Instant) -> Sources {
        let mut s = Sources::new(of);
        s.assign(&(0..of).collect::<Vec<_>>(), t0);
        s
    }

    /// (source, watermark, idle) of each marker.
    fn summary(markers: &[Marker]) -> Vec<(i32, i64, bool)> {
        markers
            .iter()
            .map(|m| (m.source, m.watermark, m.idle))
            .collect()
    }

    #[test]
    fn with_every_partition_being_read_reports_are_vouched_for_at_once() {
        let t0 = Instant::now();
        let mut s = assigned(2, t0);
        s.record(0, 5 * DAY, t0);
        s.record(1, 3 * DAY, t0);
        assert_eq!(
            summary(&s.markers()),
            [(1, 3 * DAY, false), (0, 5 * DAY, false)]
        );
        assert!(s.markers().is_empty(), "nothing changed");
        assert!(s.to_check(t0 + ms(500)).is_empty());
    }

    #[test]
    fn a_quiet_partition_is_asked_and_idle_once_read_to_its_end() {
        let t0 = Instant::now();
        let mut s = assigned(2, t0);
        s.record(0, DAY, t0);
        s.record(1, DAY, t0);
        s.markers();
        assert!(s.to_check(t0 + ms(999)).is_empty());
        assert_eq!(s.to_check(t0 + QUIET), [0, 1]);
        s.checked(0, false, t0 + QUIET);
        s.checked(1, true, t0 + QUIET);
        assert_eq!(summary(&s.markers()), [(1, DAY, true)]);
        // Not read to its end yet: asked again, but not at every commit.
        assert!(s.to_check(t0 + QUIET + ms(100)).is_empty());
        assert_eq!(s.to_check(t0 + QUIET + RECHECK), [0]);
    }

    /// The burst that once made a whole partition's reports late: partition 0's part of
    /// it lands and is read before partition 1's, which the broker found empty just then.
    #[test]
    fn a_report_moves_event_time_past_an_idle_partition_only_once_it_is_asked_again() {
        let t0 = Instant::now();
        let mut s = assigned(2, t0);
        s.record(0, DAY, t0);
        s.record(1, DAY, t0);
        s.markers();
        s.checked(0, true, t0 + QUIET);
        s.checked(1, true, t0 + QUIET);
        s.markers();

        let burst = t0 + Duration::from_secs(10);
        s.record(0, 20 * DAY, burst);
        s.checked(1, true, burst + ms(1));
        // Partition 0 is being read again; its reports wait for partition 1 to be asked.
        assert_eq!(summary(&s.markers()), [(0, DAY, false)]);
        assert!(s.to_check(burst + ms(999)).is_empty());
        assert!(s.to_check(burst + QUIET).contains(&1));

        // Asked again: its part of the burst has landed, so it holds event time back.
        s.checked(1, false, burst + QUIET);
        assert_eq!(
            summary(&s.markers()),
            [(1, DAY, false), (0, 20 * DAY, false)]
        );
    }

    #[test]
    fn a_partition_still_empty_after_quiet_lets_event_time_move_on() {
        let t0 = Instant::now();
        let mut s = assigned(2, t0);
        s.checked(1, true, t0);
        s.record(0, 20 * DAY, t0 + ms(1));
        assert_eq!(
            summary(&s.markers()),
            [(0, i64::MIN, false), (1, i64::MIN, true)]
        );
        let asked = t0 + ms(1) + QUIET;
        assert!(s.to_check(asked).contains(&1));
        s.checked(1, true, asked);
        assert_eq!(summary(&s.markers()), [(0, 20 * DAY, false)]);
    }

    #[test]
    fn reports_arriving_together_are_held_as_one_and_the_latest_wins() {
        let t0 = Instant::now();
        let mut s = assigned(2, t0);
        s.checked(1, true, t0);
        for i in 0..1_000 {
            s.record(0, (1_000 - i) * DAY, t0 + Duration::from_micros(i as u64));
        }
        assert_eq!(s.parts[&0].held.len(), 1);
        assert_eq!(s.parts[&0].latest(), 1_000 * DAY);
    }

    #[test]
    fn the_wall_clock_and_a_restart_override_what_is_held() {
        let t0 = Instant::now();
        let mut s = assigned(1, t0);
        s.record(0, DAY, t0);
        s.follow_clock(30 * DAY);
        assert_eq!(summary(&s.markers()), [(0, 30 * DAY, false)]);
        s.restart(t0);
        assert_eq!(summary(&s.markers()), [(0, i64::MIN, false)]);
        s.assign(&[], t0);
        assert!(s.markers().is_empty());
    }
}
