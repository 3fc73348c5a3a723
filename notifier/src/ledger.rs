//! At-least-once bookkeeping of the notifier stage: which consumed alert records still
//! have work outstanding, so the stage commits an offset of `relec.alerts` only once
//! every delivery the record caused has ended (delivered or dead-lettered).
//!
//! A record is unfinished while a group it went into has not flushed yet (it waits out
//! `group_wait` or `group_interval` there), and then while any delivery that flush
//! produced for that group is in flight. Per partition the committable offset is the
//! lowest unfinished record's, or one past the last record consumed. Pure: the stage
//! passes in what happened and when.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::dispatch::Joined;

/// What the unfinished records of one partition wait for, in a form a checkpoint keeps:
/// a restarted stage holds the partition's commit at `from` until all of it is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The lowest unfinished offset (`None`: commit nothing on the partition).
    pub from: Option<i64>,
    /// Groups not flushed yet: (group key, when it flushes).
    pub groups: Vec<(String, i64)>,
    /// Deliveries not ended yet.
    pub deliveries: Vec<String>,
}

/// A consumed record: partition and offset.
type Position = (i32, i64);

/// The outstanding work of every consumed record that is not finished yet.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Unfinished records by partition and offset, with how many waits each still has.
    unfinished: BTreeMap<i32, BTreeMap<i64, usize>>,
    /// One past the highest offset consumed, per partition.
    next: BTreeMap<i32, i64>,
    /// Records waiting for a group's flush, by group key: (flush time, record).
    flushes: HashMap<String, Vec<(i64, Position)>>,
    /// Records waiting for a delivery to end, by delivery id.
    deliveries: HashMap<String, Vec<Position>>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// A record was consumed and routed into the groups `joined` (none: it needs no
    /// notification and is finished at once).
    pub fn received(&mut self, partition: i32, offset: i64, joined: &[Joined]) {
        self.seen(partition, offset);
        if joined.is_empty() {
            return;
        }
        self.unfinished
            .entry(partition)
            .or_default()
            .insert(offset, joined.len());
        for j in joined {
            (self.flushes.entry(j.group_key.clone()).or_default())
                .push((j.flush_at, (partition, offset)));
        }
    }

    /// A record that needs nothing (undecodable, or already covered by a checkpoint).
    pub fn skipped(&mut self, partition: i32, offset: i64) {
        self.seen(partition, offset);
    }

    /// A hold on `partition` at `offset` (`None`: commit nothing on it) until every
    /// group in `groups` has flushed and every delivery in `deliveries` has ended: what
    /// the stage holds for the records a restored checkpoint covers, whose own offsets
    /// it no longer knows.
    pub fn hold(
        &mut self,
        partition: i32,
        offset: Option<i64>,
        groups: &[Joined],
        deliveries: &[String],
    ) {
        let at = offset.unwrap_or(i64::MIN);
        let waits = groups.len() + deliveries.len();
        if waits == 0 {
            return;
        }
        *self
            .unfinished
            .entry(partition)
            .or_default()
            .entry(at)
            .or_default() += waits;
        for j in groups {
            (self.flushes.entry(j.group_key.clone()).or_default())
                .push((j.flush_at, (partition, at)));
        }
        for id in deliveries {
            (self.deliveries.entry(id.clone()).or_default()).push((partition, at));
        }
    }

    /// The groups due at `now` have flushed; `produced` lists, by group key, the
    /// deliveries each flush produced that are in flight (ended or suppressed ones left
    /// out). Records waiting for those flushes now wait for those deliveries.
    pub fn flushed(&mut self, now: i64, produced: &HashMap<String, Vec<String>>) {
        let mut keys: Vec<String> = Vec::new();
        for (key, waiting) in &self.flushes {
            if waiting.iter().any(|(at, _)| *at <= now) {
                keys.push(key.clone());
            }
        }
        for key in keys {
            let waiting = self.flushes.remove(&key).unwrap_or_default();
            let (done, still): (Vec<_>, Vec<_>) =
                waiting.into_iter().partition(|(at, _)| *at <= now);
            if !still.is_empty() {
                self.flushes.insert(key.clone(), still);
            }
            let ids = produced.get(&key).map(Vec::as_slice).unwrap_or_default();
            for (_, record) in done {
                for id in ids {
                    self.deliveries.entry(id.clone()).or_default().push(record);
                    self.add_wait(record);
                }
                self.release(record);
            }
        }
    }

    /// A delivery ended (delivered or dead-lettered).
    pub fn ended(&mut self, id: &str) {
        for record in self.deliveries.remove(id).unwrap_or_default() {
            self.release(record);
        }
    }

    /// Per partition, the offset to commit: the lowest unfinished record's, or one past
    /// the last consumed. Partitions held with no offset to fall back on are left out.
    pub fn committable(&self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        let partitions: BTreeSet<i32> = (self.next.keys().chain(self.unfinished.keys()))
            .copied()
            .collect();
        for p in partitions {
            let lowest = self
                .unfinished
                .get(&p)
                .and_then(|u| u.keys().next().copied());
            match lowest {
                Some(i64::MIN) => {}
                Some(offset) => {
                    out.insert(p, offset);
                }
                None => {
                    if let Some(next) = self.next.get(&p) {
                        out.insert(p, *next);
                    }
                }
            }
        }
        out
    }

    /// What the unfinished records of `partition` wait for; `None` if nothing.
    pub fn held(&self, partition: i32) -> Option<Held> {
        let lowest = *self.unfinished.get(&partition)?.keys().next()?;
        let groups: BTreeSet<(String, i64)> = (self.flushes.iter())
            .flat_map(|(key, waiting)| {
                (waiting.iter())
                    .filter(|(_, (p, _))| *p == partition)
                    .map(move |(at, _)| (key.clone(), *at))
            })
            .collect();
        let deliveries: BTreeSet<String> = (self.deliveries.iter())
            .filter(|(_, waiting)| waiting.iter().any(|(p, _)| *p == partition))
            .map(|(id, _)| id.clone())
            .collect();
        Some(Held {
            from: (lowest != i64::MIN).then_some(lowest),
            groups: groups.into_iter().collect(),
            deliveries: deliveries.into_iter().collect(),
        })
    }

    /// Takes back what a checkpoint said `partition` was holding.
    pub fn restore(&mut self, partition: i32, held: &Held) {
        let groups: Vec<Joined> = (held.groups.iter())
            .map(|(group_key, flush_at)| Joined {
                group_key: group_key.clone(),
                flush_at: *flush_at,
            })
            .collect();
        self.hold(partition, held.from, &groups, &held.deliveries);
    }

    /// One past the highest offset consumed on `partition`, if any was.
    pub fn next(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }

    /// Records with work outstanding, over all partitions.
    pub fn unfinished(&self) -> usize {
        self.unfinished.values().map(BTreeMap::len).sum()
    }

    fn seen(&mut self, partition: i32, offset: i64) {
        let next = self.next.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
    }

    fn add_wait(&mut self, (partition, offset): Position) {
        if let Some(waits) = (self.unfinished.get_mut(&partition)).and_then(|u| u.get_mut(&offset))
        {
            *waits += 1;
        }
    }

    fn release(&mut self, (partition, offset): Position) {
        let Some(records) = self.unfinished.get_mut(&partition) else {
            return;
        };
        if let Some(waits) = records.get_mut(&offset) {
            *waits -= 1;
            if *waits == 0 {
                records.remove(&offset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(key: &str, flush_at: i64) -> Joined {
        Joined {
            group_key: key.to_owned(),
            flush_at,
        }
    }

    fn produced(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, ids)| (k.to_string(), ids.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn a_record_waits_for_its_group_then_for_its_deliveries() {
        let mut l = Ledger::new();
        l.received(0, 10, &[joined("g", 30)]);
        assert_eq!(l.committable(), BTreeMap::from([(0, 10)]));
        // Not due yet: the flush at 29 is of another group.
        l.flushed(29, &produced(&[("g", &["x"])]));
        assert_eq!(l.committable()[&0], 10);
        l.flushed(30, &produced(&[("g", &["d1", "d2"])]));
        assert_eq!(l.committable()[&0], 10, "deliveries in flight");
        l.ended("d1");
        assert_eq!(l.committable()[&0], 10);
        l.ended("d2");
        assert_eq!(l.committable()[&0], 11);
        assert_eq!(l.unfinished(), 0);
    }

    #[test]
    fn the_lowest_unfinished_offset_holds_the_partition() {
        let mut l = Ledger::new();
        l.received(0, 1, &[joined("slow", 100)]);
        l.received(0, 2, &[joined("fast", 10)]);
        l.received(1, 7, &[joined("fast", 10)]);
        l.flushed(10, &produced(&[("fast", &["f"])]));
        l.ended("f");
        // Partition 1 is done; partition 0 waits for offset 1 though 2 is done.
        assert_eq!(l.committable(), BTreeMap::from([(0, 1), (1, 8)]));
        l.flushed(100, &produced(&[]));
        assert_eq!(l.committable(), BTreeMap::from([(0, 3), (1, 8)]));
    }

    #[test]
    fn a_flush_that_sends_nothing_finishes_its_records() {
        // Silenced, cut by TLP, or nothing new: the flush produced no delivery.
        let mut l = Ledger::new();
        l.received(0, 0, &[joined("g", 5)]);
        l.flushed(5, &HashMap::new());
        assert_eq!(l.committable()[&0], 1);
        // A record that joined no group is finished at once.
        l.received(0, 1, &[]);
        assert_eq!(l.committable()[&0], 2);
    }

    #[test]
    fn every_group_of_a_record_must_flush() {
        let mut l = Ledger::new();
        l.received(2, 4, &[joined("a", 5), joined("b", 50)]);
        l.flushed(5, &produced(&[("a", &["da"])]));
        l.ended("da");
        assert_eq!(l.committable()[&2], 4);
        l.flushed(50, &produced(&[("b", &["db"])]));
        assert_eq!(l.committable()[&2], 4);
        l.ended("db");
        assert_eq!(l.committable()[&2], 5);
    }

    #[test]
    fn records_share_a_delivery() {
        // 50 alerts of one group: one notification; all wait for it.
        let mut l = Ledger::new();
        for offset in 0..50 {
            l.received(0, offset, &[joined("g", 30)]);
        }
        l.flushed(30, &produced(&[("g", &["one"])]));
        assert_eq!(l.committable()[&0], 0);
        l.ended("one");
        assert_eq!(l.committable()[&0], 50);
    }

    #[test]
    fn a_hold_keeps_the_committed_offset_until_restored_work_ends() {
        let mut l = Ledger::new();
        l.hold(0, Some(3), &[joined("g", 10)], &["restored".to_owned()]);
        l.hold(1, None, &[], &["restored".to_owned()]);
        l.skipped(0, 3);
        l.received(0, 4, &[]);
        l.received(1, 0, &[]);
        assert_eq!(
            l.committable(),
            BTreeMap::from([(0, 3)]),
            "partition 1 commits nothing"
        );
        l.ended("restored");
        assert_eq!(l.committable(), BTreeMap::from([(0, 3), (1, 1)]));
        l.flushed(10, &HashMap::new());
        assert_eq!(l.committable(), BTreeMap::from([(0, 5), (1, 1)]));
    }

    #[test]
    fn what_a_partition_holds_survives_a_checkpoint() {
        let mut l = Ledger::new();
        l.received(0, 5, &[joined("g", 30)]);
        l.received(0, 6, &[joined("h", 10)]);
        l.received(1, 2, &[joined("g", 30)]);
        l.flushed(10, &produced(&[("h", &["dh"])]));
        let held = l.held(0).expect("holding");
        assert_eq!(
            held,
            Held {
                from: Some(5),
                groups: vec![("g".into(), 30)],
                deliveries: vec!["dh".into()],
            }
        );
        assert_eq!(l.held(2), None);

        // A restarted stage holds at the same offset until the same work is over.
        let mut restarted = Ledger::new();
        restarted.restore(0, &held);
        restarted.skipped(0, 5);
        restarted.skipped(0, 6);
        assert_eq!(restarted.committable()[&0], 5);
        restarted.ended("dh");
        assert_eq!(restarted.committable()[&0], 5);
        restarted.flushed(30, &HashMap::new());
        assert_eq!(restarted.committable()[&0], 7);
    }
}
