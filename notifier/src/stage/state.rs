//! The stage's checkpoint in `relec.notifier.deliveries`: written in Kafka transactions
//! (routing groups, newly pending deliveries and read positions together, so what comes
//! back after a crash is one consistent moment), and read back at start.
//!
//! Why persist the router instead of rebuilding it by replaying `relec.alerts` from the
//! committed offsets: a replay re-creates groups from whatever alerts it re-reads, which
//! is not what recipients were told. An alert that fired, was delivered and committed is
//! gone from a rebuilt group, so its resolved notice would never be sent ("nobody was
//! told it fired"); a group rebuilt from part of its history gets a different content,
//! hence a different idempotency key, and recipients a second message; and every
//! group_wait and repeat_interval would start again. Alertmanager keeps its notification
//! log on disk for the same reason. Persisting costs one small transaction per flush
//! that sends something, before it is sent.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, Producer},
};
use relec_plumbing::kafka::{Kafka, polled};

use super::topic::read_to_end;
use crate::{
    Error, Outbound, Router,
    deliveries::{Entry, Key, Keys, Position},
};

/// How long a transaction call may take before the checkpoint counts as failed.
pub const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a start reads back.
#[derive(Debug, Default)]
pub struct Restored {
    pub router: Router,
    /// Deliveries pending at the checkpoint, to send again, by id.
    pub pending: Vec<(String, Outbound)>,
    /// Deliveries that ended, by id, with when.
    pub ended: HashMap<String, i64>,
    /// How far the checkpoint had read each partition of the alerts topic, and what its
    /// unfinished records were waiting for.
    pub positions: BTreeMap<i32, Position>,
    /// Delivery records older than the horizon, to delete (tombstone).
    pub expired: Vec<String>,
}

/// Reads the topic and rebuilds the checkpoint of `keys`' consumer group. Delivery
/// records that ended more than `horizon_ms` before `now` are listed to be deleted.
///
/// Read_committed: a checkpoint a crash interrupted is not seen (the last committed one
/// is), while the records of delivery ends, written outside transactions, always are.
/// The caller fences off the former instance first, so no transaction of it stays open
/// to hold the read up.
pub async fn restore(
    kafka: &Kafka,
    topic: &str,
    keys: &Keys,
    now: i64,
    horizon_ms: Option<i64>,
) -> Result<Restored, Error> {
    // Latest value per key: the topic is compacted, but not necessarily yet.
    let mut latest: BTreeMap<String, (i32, i64, Option<Vec<u8>>)> = BTreeMap::new();
    for r in read_to_end(kafka, topic, true).await? {
        latest.insert(r.key, (r.partition, r.offset, r.value));
    }
    let mut restored = Restored::default();
    for (key, (partition, offset, value)) in latest {
        let Some(value) = value else { continue };
        let bad = |reason: String| Error::Record {
            topic: topic.to_owned(),
            partition,
            offset,
            key: key.clone(),
            reason,
        };
        match keys.parse(&key) {
            Key::Delivery(id) => {
                let entry: Entry =
                    serde_json::from_slice(&value).map_err(|e| bad(e.to_string()))?;
                match entry.outbound() {
                    Some(outbound) => restored.pending.push((id, outbound)),
                    None if horizon_ms.is_some_and(|h| now - entry.at > h) => {
                        restored.expired.push(key)
                    }
                    None => {
                        restored.ended.insert(id, entry.at);
                    }
                }
            }
            Key::Group(group_key) => restored
                .router
                .restore_group(&group_key, &value)
                .map_err(|e| bad(e.to_string()))?,
            Key::Position(p) => {
                let position: Position =
                    serde_json::from_slice(&value).map_err(|e| bad(e.to_string()))?;
                restored.positions.insert(p, position);
            }
            Key::Other => {}
        }
    }
    // Restoring is not a change to write back.
    let _ = restored.router.take_changed();
    Ok(restored)
}

/// Transactional producers the checkpoints take turns on ([`Kafka::turn_id`]): a
/// checkpoint follows another every few milliseconds under load, so each producer gets the
/// time of three others' checkpoints for its markers to be written.
pub const WRITERS: usize = 4;

/// Writes checkpoints in transactions under the transactional ids `<group>.notifier`
/// and `<group>.notifier.1` to `.3`, in turn: starting them fences off (and aborts the
/// open transaction of) a former instance.
pub struct StateWriter {
    kafka: Kafka,
    topic: String,
    group: String,
    producers: [Option<Arc<BaseProducer>>; WRITERS],
    /// The producer the next checkpoint takes.
    turn: usize,
}

impl std::fmt::Debug for StateWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWriter")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl StateWriter {
    pub fn new(kafka: &Kafka, topic: &str, group: &str) -> Self {
        Self {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            producers: Default::default(),
            turn: 0,
        }
    }

    /// Creates the transactional producers and fences off a former instance; done before
    /// the checkpoint is read, so no transaction of it is left open to hold the read up.
    pub async fn start(&mut self) -> Result<(), Error> {
        for i in 0..WRITERS {
            self.producer(i).await?;
        }
        Ok(())
    }

    async fn producer(&mut self, i: usize) -> Result<Arc<BaseProducer>, Error> {
        if let Some(p) = &self.producers[i] {
            return Ok(p.clone());
        }
        let id = Kafka::turn_id(&format!("{}.notifier", self.group), i);
        let producer: BaseProducer = self.kafka.transactional_producer("notifier", &id)?;
        let producer = Arc::new(producer);
        let (p, topic) = (producer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || polled::init_transactions(&p, &topic, TXN_TIMEOUT))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(|e| self.classify(e))?;
        self.producers[i] = Some(producer.clone());
        Ok(producer)
    }

    /// Commits `records` (key, value or tombstone) as one transaction. On failure nothing
    /// of it is visible, and the next call starts over with a fresh producer.
    pub async fn commit(
        &mut self,
        records: Arc<Vec<(String, Option<Vec<u8>>)>>,
    ) -> Result<(), Error> {
        let i = self.turn;
        self.turn = (i + 1) % WRITERS;
        let producer = self.producer(i).await?;
        let topic = self.topic.clone();
        let result = tokio::task::spawn_blocking(move || transaction(&producer, &topic, &records))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        if let Err(e) = result {
            // A fresh producer (init_transactions) aborts whatever this one left open.
            self.producers[i] = None;
            return Err(self.classify(e));
        }
        Ok(())
    }

    fn classify(&self, e: KafkaError) -> Error {
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch,
            ) => Error::Fenced {
                group: self.group.clone(),
            },
            _ => Error::Kafka(e),
        }
    }
}

fn transaction(
    producer: &BaseProducer,
    topic: &str,
    records: &[(String, Option<Vec<u8>>)],
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    let deadline = Instant::now() + TXN_TIMEOUT;
    let sent = (|| {
        for (key, value) in records {
            let mut record = BaseRecord::<str, [u8]>::to(topic).key(key.as_str());
            if let Some(value) = value {
                record = record.payload(value.as_slice());
            }
            polled::send(producer, record, deadline)?;
        }
        // commit_transaction flushes, but rdkafka's flush polls in steps of up to 100 ms;
        // waiting for the acknowledgements first saves most of that.
        polled::await_acks(producer, deadline);
        producer.commit_transaction(TXN_TIMEOUT)
    })();
    if sent.is_err() {
        let _ = producer.abort_transaction(TXN_TIMEOUT);
    }
    sent
}
