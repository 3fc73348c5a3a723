//! A processor's state as changelog entries: the unit one change rewrites (a group key's
//! state, an alert, what one open report day adds to a key, the event ids seen on one day
//! between two checkpoints, the clock), so a checkpoint writes only what changed, and
//! replaying the compacted changelog rebuilds the processor exactly. Keys are JSON,
//! readable with any Kafka console consumer; values are postcard, compact; a deleted entry
//! is a tombstone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    error::Error,
    processor::{GroupingId, Key, Processor, SeenDay, Staged},
    state::KeyState,
    time::Day,
};

/// One changelog entry's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    Clock,
    State(GroupingId, Key),
    Alert(String, Key),
    Staged(Day, GroupingId, Key),
    /// The event ids seen on a day, whole: what builds before parts wrote (SHA-256
    /// digests). Deleted when the day expires.
    Seen(Day),
    /// The SHA-256 digests of (key, event id) first seen on a day between two checkpoints,
    /// as builds before XXH3 wrote them, and still write for a day restored from them.
    SeenPart(Day, u32),
    /// The XXH3 digests of (key, event id) first seen on a day between two checkpoints
    /// (part 0: the whole day, when its parts are written again as one). A tombstone of
    /// part 0 deletes the day.
    Digests(Day, u32),
}

impl Entry {
    /// Part `part` of the ids seen on `day`, as the day's digests are made.
    pub(crate) fn part(day: Day, part: u32, sha256: bool) -> Self {
        if sha256 {
            Entry::SeenPart(day, part)
        } else {
            Entry::Digests(day, part)
        }
    }
}

/// A changelog record: key, and value or `None` for a tombstone.
pub type Record = (Vec<u8>, Option<Vec<u8>>);

/// The records for a day with new ids seen: all of them as part 0 if the day has no part
/// yet, else the next part, or, once the day has [`SeenDay::MAX_PARTS`], all of its ids as
/// part 0 and tombstones for the others.
fn seen_parts(day: Day, seen: &mut SeenDay, records: &mut Vec<Record>) -> Result<(), Error> {
    let key = |part| serde_json::to_vec(&Entry::part(day, part, seen.sha256));
    if seen.parts == 0 {
        records.push((key(0)?, Some(postcard::to_allocvec(&seen.digests)?)));
        seen.parts = 1;
    } else if seen.parts < SeenDay::MAX_PARTS {
        records.push((key(seen.parts)?, Some(postcard::to_allocvec(&seen.fresh)?)));
        seen.parts += 1;
    } else {
        records.push((key(0)?, Some(postcard::to_allocvec(&seen.digests)?)));
        for part in 1..seen.parts {
            records.push((key(part)?, None));
        }
        seen.parts = 1;
    }
    seen.fresh.clear();
    seen.changed = false;
    Ok(())
}

impl Processor {
    /// Everything changed since the last checkpoint, as changelog records, in a stable
    /// order; afterwards nothing is dirty.
    pub fn checkpoint(&mut self) -> Result<Vec<Record>, Error> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut records = Vec::with_capacity(dirty.len());
        for (day, groupings) in &mut self.staging {
            for (id, keys) in groupings {
                // Hashed: sorted here, so that equal states write equal checkpoints.
                let mut changed: Vec<_> = keys.iter_mut().filter(|(_, d)| d.dirty).collect();
                changed.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (key, delta) in changed {
                    let entry = Entry::Staged(*day, id.clone(), key.clone());
                    let value = postcard::to_allocvec(&delta.state)?;
                    records.push((serde_json::to_vec(&entry)?, Some(value)));
                    delta.dirty = false;
                    delta.written = true;
                }
            }
        }
        for (day, seen) in self.seen.iter_mut().filter(|(_, s)| s.changed) {
            seen_parts(*day, seen, &mut records)?;
        }
        for entry in dirty {
            let value = match &entry {
                Entry::Clock => Some(postcard::to_allocvec(&self.clock)?),
                Entry::State(id, key) => self
                    .groupings
                    .get(id)
                    .and_then(|g| g.keys.get(key))
                    .map(|s| postcard::to_allocvec(&**s))
                    .transpose()?,
                Entry::Alert(rule, key) => self
                    .alerts
                    .get(&(rule.clone(), key.clone()))
                    .map(postcard::to_allocvec)
                    .transpose()?,
                // Only closed days' entries are left here: to delete.
                Entry::Staged(..) => None,
                // Written above if the day is still kept (it came back after expiring).
                Entry::Seen(day) if self.seen.contains_key(day) => continue,
                Entry::Seen(_) => None,
                // An expired day's part, unless the day came back and wrote it anew.
                Entry::SeenPart(day, part) | Entry::Digests(day, part) => {
                    if self.seen.get(day).is_some_and(|s| *part < s.parts) {
                        continue;
                    }
                    None
                }
            };
            records.push((serde_json::to_vec(&entry)?, value));
        }
        Ok(records)
    }

    /// Applies one changelog record, as read back in log order.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        let entry: Entry = serde_json::from_slice(key)?;
        let sha256 = matches!(entry, Entry::SeenPart(..));
        match (entry, value) {
            (Entry::Clock, Some(v)) => self.clock = postcard::from_bytes(v)?,
            (Entry::Clock, None) => {}
            (Entry::State(id, key), Some(v)) => {
                let state: KeyState = postcard::from_bytes(v)?;
                self.groupings
                    .entry(id)
                    .or_default()
                    .keys
                    .insert(key, Arc::new(state));
            }
            (Entry::State(id, key), None) => {
                if let Some(g) = self.groupings.get_mut(&id) {
                    g.keys.remove(&key);
                }
            }
            (Entry::Alert(rule, key), Some(v)) => {
                self.alerts.insert((rule, key), postcard::from_bytes(v)?);
            }
            (Entry::Alert(rule, key), None) => {
                self.alerts.remove(&(rule, key));
            }
            (Entry::Staged(day, id, key), Some(v)) => {
                let delta = Staged {
                    state: postcard::from_bytes(v)?,
                    dirty: false,
                    written: true,
                };
                self.staging
                    .entry(day)
                    .or_default()
                    .entry(id)
                    .or_default()
                    .insert(key, delta);
            }
            (Entry::Staged(day, id, key), None) => {
                if let Some(keys) = self.staging.get_mut(&day).and_then(|g| g.get_mut(&id)) {
                    keys.remove(&key);
                }
            }
            (Entry::Seen(day), Some(v)) => {
                let digests: Vec<u64> = postcard::from_bytes(v)?;
                let seen = self.seen.entry(day).or_default();
                seen.digests.extend(digests);
                seen.sha256 = true;
            }
            (Entry::SeenPart(day, part), Some(v)) | (Entry::Digests(day, part), Some(v)) => {
                let digests: Vec<u64> = postcard::from_bytes(v)?;
                let seen = self.seen.entry(day).or_default();
                seen.digests.extend(digests);
                seen.parts = seen.parts.max(part + 1);
                seen.sha256 = sha256;
            }
            (Entry::Seen(day) | Entry::SeenPart(day, 0) | Entry::Digests(day, 0), None) => {
                self.seen.remove(&day);
            }
            // A part folded into part 0: its ids are there.
            (Entry::SeenPart(..) | Entry::Digests(..), None) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        processor::Settings,
        sandbox::{Limits, engine},
        time::DAY_MS,
    };
    use relec_schemas::IncidentEvent;

    /// 2026-01-01.
    const DAY0_MS: i64 = 1_767_225_600_000;

    fn processor() -> Processor {
        let settings = Settings {
            lateness_ms: 0,
            horizon_days: 400,
        };
        Processor::new(Arc::new(engine(&Limits::default())), Vec::new(), settings)
    }

    fn key() -> Key {
        vec![("route".into(), "AFG-IRN-NIMROZ".into())].into()
    }

    /// The `i`-th incident, all on the same day.
    fn event(i: u64) -> Arc<IncidentEvent> {
        let mut e = relec_schemas::sample::incident(7, i);
        e.occurred_at = DAY0_MS + 1000;
        e.reported_at = DAY0_MS + 2000;
        Arc::new(e)
    }

    fn feed(p: &mut Processor, ids: std::ops::Range<u64>) {
        for i in ids {
            assert!(!p.process_keyed(&key(), &event(i)).duplicate);
        }
    }

    /// The deduplication records of a checkpoint: entry, and how many ids it holds.
    fn seen_records(records: &[Record]) -> Vec<(Entry, Option<usize>)> {
        (records.iter())
            .filter_map(|(k, v)| {
                let entry: Entry = serde_json::from_slice(k).expect("entry");
                let ids = |v: &Vec<u8>| postcard::from_bytes::<Vec<u64>>(v).expect("ids").len();
                matches!(
                    entry,
                    Entry::Seen(_) | Entry::SeenPart(..) | Entry::Digests(..)
                )
                .then(|| (entry, v.as_ref().map(ids)))
            })
            .collect()
    }

    fn restored(log: &[Record]) -> Processor {
        let mut p = processor();
        for (k, v) in log {
            p.restore(k, v.as_deref()).expect("restore");
        }
        p
    }

    #[test]
    fn entry_names_keep_their_json_form() {
        // As builds before the shared grouping id wrote them: changelogs stay readable.
        let filter = [("category".to_owned(), vec!["SMUGGLING".to_owned()])].into();
        let id = GroupingId::new(vec!["route".to_owned()], filter);
        let entry = serde_json::to_value(Entry::Staged(20_454, id.clone(), key())).unwrap();
        let want = serde_json::json!({"staged": [20_454, [["route"], {"category": ["SMUGGLING"]}],
            [["route", "AFG-IRN-NIMROZ"]]]});
        assert_eq!(entry, want);
        let back: Entry = serde_json::from_value(want).unwrap();
        assert_eq!(back, Entry::Staged(20_454, id, key()));
    }

    #[test]
    fn a_checkpoint_writes_only_the_ids_seen_since_the_last() {
        let day = crate::time::day_of(DAY0_MS);
        let mut p = processor();
        feed(&mut p, 0..100);
        let mut log = p.checkpoint().unwrap();
        assert_eq!(seen_records(&log), [(Entry::Digests(day, 0), Some(100))]);
        feed(&mut p, 100..110);
        let second = p.checkpoint().unwrap();
        assert_eq!(seen_records(&second), [(Entry::Digests(day, 1), Some(10))]);
        log.extend(second);
        let mut q = restored(&log);
        for i in [0, 99, 100, 109] {
            assert!(q.process_keyed(&key(), &event(i)).duplicate, "{i}");
        }
        assert!(!q.process_keyed(&key(), &event(110)).duplicate);
    }

    #[test]
    fn parts_are_written_again_as_one_and_deleted_with_their_day() {
        let day = crate::time::day_of(DAY0_MS);
        let mut p = processor();
        // The compacted changelog: the latest value per key.
        let mut compacted = std::collections::BTreeMap::new();
        let mut log = Vec::new();
        for i in 0..u64::from(SeenDay::MAX_PARTS) + 1 {
            feed(&mut p, i..i + 1);
            log.extend(p.checkpoint().unwrap());
        }
        let last = seen_records(&log[log.len() - SeenDay::MAX_PARTS as usize..]);
        assert_eq!(last[0], (Entry::Digests(day, 0), Some(65)));
        assert!(last[1..].iter().all(|(_, v)| v.is_none()));
        for (k, v) in &log {
            match v {
                Some(v) => compacted.insert(k.clone(), v.clone()),
                None => compacted.remove(k),
            };
        }
        assert_eq!(compacted.len(), 1, "only part 0 is left");
        let compacted: Vec<Record> = (compacted.into_iter()).map(|(k, v)| (k, Some(v))).collect();
        for mut q in [restored(&log), restored(&compacted)] {
            assert!(q.process_keyed(&key(), &event(64)).duplicate);
            assert!(q.process_keyed(&key(), &event(0)).duplicate);
        }

        // The day expires: every part and the whole-day entry of older builds are deleted.
        feed(&mut p, 100..101);
        log.extend(p.checkpoint().unwrap());
        p.advance_to(DAY0_MS + 402 * DAY_MS);
        let expiry = p.checkpoint().unwrap();
        let mut deleted: Vec<Entry> = (seen_records(&expiry).into_iter())
            .map(|(e, v)| v.map_or(e, |_| panic!("not a tombstone")))
            .collect();
        deleted.sort();
        assert_eq!(
            deleted,
            [
                Entry::Seen(day),
                Entry::Digests(day, 0),
                Entry::Digests(day, 1)
            ]
        );
        log.extend(expiry);
        assert!(restored(&log).seen.is_empty());
    }

    #[test]
    fn a_day_restored_from_sha256_digests_still_knows_its_events() {
        // What a build before XXH3 wrote: ids 0..10 seen on the day, as SHA-256 digests.
        let day = crate::time::day_of(DAY0_MS);
        let digests: Vec<u64> = (0..10)
            .map(|i| crate::processor::sha256_digest(&key(), &event(i).event_id))
            .collect();
        let old = (
            serde_json::to_vec(&Entry::SeenPart(day, 0)).unwrap(),
            Some(postcard::to_allocvec(&digests).unwrap()),
        );
        let mut p = restored(std::slice::from_ref(&old));
        assert!(p.process_keyed(&key(), &event(3)).duplicate);
        assert!(!p.process_keyed(&key(), &event(10)).duplicate);
        // The day goes on the same way; a new day takes the new digests.
        let mut next = (*event(11)).clone();
        next.occurred_at += DAY_MS;
        next.reported_at += DAY_MS;
        assert!(!p.process_keyed(&key(), &Arc::new(next)).duplicate);
        let records = p.checkpoint().unwrap();
        assert_eq!(
            seen_records(&records),
            [
                (Entry::SeenPart(day, 1), Some(1)),
                (Entry::Digests(day + 1, 0), Some(1))
            ]
        );
        let mut q = restored(&[vec![old], records].concat());
        assert!(q.process_keyed(&key(), &event(3)).duplicate);
        assert!(q.process_keyed(&key(), &event(10)).duplicate);
    }
}
