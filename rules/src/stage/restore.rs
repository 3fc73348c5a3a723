//! Reading state back: each assigned partition's processor is rebuilt by applying its
//! changelog partition from the beginning to the end, read_committed, so only state that
//! was committed together with its offsets and alerts comes back.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::KafkaError,
    types::RDKafkaErrorCode,
};
use relec_plumbing::kafka::{Kafka, learn_brokers};

use crate::{error::Error, processor::Processor};

use super::worker::TXN_TIMEOUT;

/// A restored processor and the size of each of its changelog entries.
pub(crate) type Restored = (Processor, Sizes);

/// The checkpointed size of each changelog entry of one shard, and their sum: the
/// state-size gauge, kept up to date entry by entry rather than summed at each commit.
#[derive(Debug, Default)]
pub(crate) struct Sizes {
    by_key: HashMap<Vec<u8>, usize, foldhash::fast::FixedState>,
    total: usize,
}

impl Sizes {
    /// Entry `key` is now `value` (`None`: deleted).
    pub(crate) fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        let size = value.map(|v| key.len() + v.len());
        let old = match (size, self.by_key.get_mut(key)) {
            (Some(size), Some(old)) => Some(std::mem::replace(old, size)),
            (Some(size), None) => self.by_key.insert(key.to_vec(), size),
            (None, _) => self.by_key.remove(key),
        };
        self.total = self.total + size.unwrap_or(0) - old.unwrap_or(0);
    }

    /// Bytes of all entries.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

/// Rebuilds the processors of `partitions` from `topic`. An open transaction of a former
/// owner holds the end back until it is committed or aborted, so this waits up to the
/// transaction timeout plus a margin.
///
/// Partitions `probe` finds empty start afresh without a reader: a first start, or a new
/// shard, costs a round trip per partition on a client kept for the next time, instead
/// of a new client that fetches to each end and closes (about 170 ms for six partitions).
/// `probe` must read uncommitted (see `Worker::probe_changelog`).
pub(crate) fn restore<C: ConsumerContext>(
    kafka: &Kafka,
    probe: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    new: impl Fn() -> Processor,
) -> Result<BTreeMap<i32, Restored>, Error> {
    let mut restored: BTreeMap<i32, Restored> = partitions
        .iter()
        .map(|&p| (p, (new(), Sizes::default())))
        .collect();
    let mut open = Vec::new();
    for &p in partitions {
        let (low, high) = probe.fetch_watermarks(topic, p, TXN_TIMEOUT)?;
        if high > low {
            open.push(p);
        }
    }
    if !open.is_empty() {
        read(kafka, topic, open, &mut restored)?;
    }
    Ok(restored)
}

/// Applies each of the `open` partitions of `topic` from its beginning to its end.
fn read(
    kafka: &Kafka,
    topic: &str,
    mut open: Vec<i32>,
    restored: &mut BTreeMap<i32, Restored>,
) -> Result<(), Error> {
    let consumer: BaseConsumer<EndsQuietly> = kafka
        .reader_config("rules-restore")
        .set("group.id", "relec-rules-restore")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(EndsQuietly)?;
    // A new client assigned partitions whose leaders it does not know yet asks again only
    // after librdkafka's fixed 500 ms: learn them first.
    learn_brokers(consumer.client(), topic, TXN_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    for &p in &open {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + TXN_TIMEOUT * 2;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::Restore {
                topic: topic.to_owned(),
                partitions: open,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => open.retain(|o| *o != p),
            Some(Err(e)) => tracing::warn!(error = %e, "changelog read error; retrying"),
            Some(Ok(m)) => {
                let Some((processor, sizes)) = restored.get_mut(&m.partition()) else {
                    continue;
                };
                let key = m.key().unwrap_or_default();
                processor
                    .restore(key, m.payload())
                    .map_err(|e| Error::Changelog {
                        topic: topic.to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: String::from_utf8_lossy(key).into_owned(),
                        reason: e.to_string(),
                    })?;
                sizes.set(key, m.payload());
            }
        }
    }
    Ok(())
}

/// Reaching a partition's end is how the reader knows it is done, not an error to log.
struct EndsQuietly;

impl ClientContext for EndsQuietly {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::debug!(reason, "changelog partition read to its end");
        } else {
            tracing::warn!(%error, reason, "changelog reader");
        }
    }
}

impl ConsumerContext for EndsQuietly {}

#[cfg(test)]
mod tests {
    use super::Sizes;

    #[test]
    fn sizes_keep_the_total_of_the_latest_entries() {
        let mut sizes = Sizes::default();
        sizes.set(b"a", Some(b"12345"));
        sizes.set(b"b", Some(b"1"));
        assert_eq!(sizes.total(), 6 + 2);
        sizes.set(b"a", Some(b"12"));
        assert_eq!(sizes.total(), 3 + 2);
        sizes.set(b"b", None);
        sizes.set(b"c", None);
        assert_eq!(sizes.total(), 3);
    }
}
