//! A processor's state as changelog entries: the unit one change rewrites (a group key's
//! state, an alert, what one open report day adds to a key, the event ids seen on one
//! day, the clock), so a checkpoint writes only what changed, and replaying the compacted changelog
//! rebuilds the processor exactly. Keys are JSON, readable with any Kafka console
//! consumer; values are postcard, compact; a deleted entry is a tombstone.

use std::{collections::HashSet, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    error::Error,
    processor::{GroupingId, Key, Processor, Staged},
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
    Seen(Day),
}

/// A changelog record: key, and value or `None` for a tombstone.
pub type Record = (Vec<u8>, Option<Vec<u8>>);

impl Processor {
    /// Everything changed since the last checkpoint, as changelog records, in a stable
    /// order; afterwards nothing is dirty.
    pub fn checkpoint(&mut self) -> Result<Vec<Record>, Error> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut records = Vec::with_capacity(dirty.len());
        for (day, groupings) in &mut self.staging {
            for (id, keys) in groupings {
                for (key, delta) in keys.iter_mut().filter(|(_, d)| d.dirty) {
                    let entry = Entry::Staged(*day, id.clone(), key.clone());
                    let value = postcard::to_allocvec(&delta.state)?;
                    records.push((serde_json::to_vec(&entry)?, Some(value)));
                    delta.dirty = false;
                    delta.written = true;
                }
            }
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
                Entry::Seen(day) => self.seen.get(day).map(postcard::to_allocvec).transpose()?,
            };
            records.push((serde_json::to_vec(&entry)?, value));
        }
        Ok(records)
    }

    /// Applies one changelog record, as read back in log order.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        let entry: Entry = serde_json::from_slice(key)?;
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
                let seen: HashSet<u64> = postcard::from_bytes(v)?;
                self.seen.insert(day, seen);
            }
            (Entry::Seen(day), None) => {
                self.seen.remove(&day);
            }
        }
        Ok(())
    }
}
