//! The records of the repartition topic. The router does not write one record per routed
//! copy: it gathers, per repartition partition, the copies of many incidents into one
//! frame (decoded events with the keys each goes to, in postcard) and writes the frame as
//! one record. The broker and both clients then handle a few records per commit instead
//! of one per copy, and the receiving shard decodes a compact form instead of Avro again.
//! Watermark markers stay records of their own (see the worker). An instance that skips
//! the topic gathers its copies the same way and hands them over without encoding them.

use std::sync::Arc;

use crate::{error::Error, processor::Key};
use relec_schemas::IncidentEvent;

/// Header naming a frame record and its format version.
pub const FRAME_HEADER: &str = "relec.copies";
/// The frame format this build writes and reads.
pub const FRAME_VERSION: &[u8] = b"1";
/// A frame is written once its events' encoded size passes this; well under Kafka's
/// default 1 MB record limit.
pub const FRAME_BYTES: usize = 256 * 1024;

/// Incidents, each with the group keys of one repartition partition it is routed to, in
/// the order they came: kept flat (every key in one list, each incident holding where its
/// keys end), so gathering a copy allocates nothing and neither does handing it on.
#[derive(Debug, Default)]
pub struct Copies {
    events: Vec<(Arc<IncidentEvent>, usize)>,
    keys: Vec<Key>,
}

impl Copies {
    /// Adds `key` to `event`'s copy: the last one if it is of the same event, else a new
    /// one. True if it made a new copy.
    fn push(&mut self, key: Key, event: &Arc<IncidentEvent>) -> bool {
        self.keys.push(key);
        let end = self.keys.len();
        match self.events.last_mut() {
            Some((last, keys_end)) if Arc::ptr_eq(last, event) => {
                *keys_end = end;
                false
            }
            _ => {
                self.events.push((event.clone(), end));
                true
            }
        }
    }

    /// Each incident with its keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<IncidentEvent>, &[Key])> {
        let mut start = 0;
        self.events.iter().map(move |(event, end)| {
            let keys = &self.keys[start..*end];
            start = *end;
            (event, keys)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn clear(&mut self) {
        self.events.clear();
        self.keys.clear();
    }
}

/// The repartition partition of a key: CRC-32 of its JSON form, modulo the partition
/// count, which is how librdkafka's default (consistent) partitioner places a keyed
/// record. The changelog's shards follow it, so it must never change.
pub fn partition_of(key: &Key, partitions: i32) -> Result<i32, Error> {
    let bytes = serde_json::to_vec(key)?;
    Ok((crc32fast::hash(&bytes) % partitions.max(1) as u32) as i32)
}

/// The copies routed to one partition since its last frame was written.
#[derive(Debug, Default)]
pub struct Pending {
    copies: Copies,
    bytes: usize,
}

impl Pending {
    /// Adds `event` (of encoded size `size`) for `key`; the event's copy is shared by all
    /// its keys on this partition. Returns the bytes it added: `size`, or 0 if shared.
    pub fn push(&mut self, key: Key, event: &Arc<IncidentEvent>, size: usize) -> usize {
        if self.copies.push(key, event) {
            self.bytes += size;
            size
        } else {
            0
        }
    }

    /// The encoded size of its events.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The copies, in the order pushed.
    pub fn into_copies(self) -> Copies {
        self.copies
    }

    /// Full enough to be written now.
    pub fn full(&self) -> bool {
        self.bytes >= FRAME_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// The frame's payload; afterwards this is empty.
    pub fn take(&mut self) -> Result<Vec<u8>, Error> {
        let copies: Vec<(&[Key], &IncidentEvent)> = self
            .copies
            .iter()
            .map(|(event, keys)| (keys, &**event))
            .collect();
        let payload = postcard::to_allocvec(&copies)?;
        self.copies.clear();
        self.bytes = 0;
        Ok(payload)
    }
}

/// The copies in a frame's payload.
pub fn decode(payload: &[u8]) -> Result<Copies, Error> {
    let frame: Vec<(Vec<Key>, IncidentEvent)> = postcard::from_bytes(payload)?;
    let mut copies = Copies::default();
    for (keys, event) in frame {
        copies.keys.extend(keys);
        copies.events.push((Arc::new(event), copies.keys.len()));
    }
    Ok(copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(route: &str) -> Key {
        vec![("route".into(), route.into())].into()
    }

    #[test]
    fn partitions_follow_the_crc32_of_the_json_key() {
        // The IEEE CRC-32 librdkafka's rd_crc32 computes (its check value).
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        let bytes = br#"[["route","IRN-TUR"]]"#;
        assert_eq!(serde_json::to_vec(&key("IRN-TUR")).unwrap(), bytes);
        let expected = (crc32fast::hash(bytes) % 6) as i32;
        assert_eq!(partition_of(&key("IRN-TUR"), 6).unwrap(), expected);
        assert_eq!(partition_of(&key("IRN-TUR"), 1).unwrap(), 0);
    }

    #[test]
    fn a_frame_round_trips_and_shares_an_event_between_its_keys() {
        let event = Arc::new(relec_schemas::sample::incident(1, 0));
        let mut pending = Pending::default();
        pending.push(key("A"), &event, 100);
        pending.push(key("B"), &event, 100);
        let other = Arc::new(relec_schemas::sample::incident(1, 1));
        pending.push(key("A"), &other, 100);
        assert!(!pending.full());
        let copies = decode(&pending.take().unwrap()).unwrap();
        assert!(pending.is_empty());
        let copies: Vec<_> = copies.iter().collect();
        assert_eq!(copies.len(), 2);
        assert_eq!(copies[0].1, [key("A"), key("B")]);
        assert_eq!(**copies[0].0, *event);
        assert_eq!(copies[1].1, [key("A")]);
        assert_eq!(**copies[1].0, *other);
    }
}
