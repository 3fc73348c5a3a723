//! Reading a whole topic once, from the beginning to the end each partition has now:
//! how the stage restores its checkpoint and delivery log, and how the CLI lists
//! silences and dead letters.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::KafkaError,
    message::Headers,
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
    util::Timeout,
};
use relec_plumbing::kafka::Kafka;

use crate::Error;

/// How long reading a topic to its end may take. An open transaction of a killed
/// instance holds a read_committed reader back until the broker aborts it.
pub const READ_DEADLINE: Duration = Duration::from_secs(120);
/// How long one write to the notifier's own topics may wait for its acknowledgement.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One record as read.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The record's timestamp, ms since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, String)>,
}

/// Every record of `topic`, in offset order per partition. `read_committed` skips the
/// records of aborted transactions and waits for open ones to end.
pub async fn read_to_end(
    kafka: &Kafka,
    topic: &str,
    read_committed: bool,
) -> Result<Vec<Record>, Error> {
    let consumer: BaseConsumer<EndsQuietly> = kafka
        .reader_config("notifier-reader")
        .set("group.id", "relec-notifier-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .set("fetch.wait.max.ms", "10")
        .create_with_context(EndsQuietly)?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read(&consumer, &topic))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

fn read(consumer: &BaseConsumer<EndsQuietly>, topic: &str) -> Result<Vec<Record>, Error> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let partitions: Vec<i32> = match metadata.topics().first() {
        Some(t) if t.error().is_none() => t.partitions().iter().map(|p| p.id()).collect(),
        _ => {
            return Err(relec_plumbing::Error::Topic {
                topic: topic.to_owned(),
                reason: "does not exist; create it with `relec topics create`".into(),
            }
            .into());
        }
    };
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut open = partitions;
    let mut records = Vec::new();
    let deadline = Instant::now() + READ_DEADLINE;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::ReadTimeout {
                topic: topic.to_owned(),
                partitions: open,
                waited: READ_DEADLINE,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => open.retain(|o| *o != p),
            Some(Err(e)) => tracing::warn!(error = %e, topic, "read error; retrying"),
            Some(Ok(m)) => records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp: m.timestamp().to_millis(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value = h.value.unwrap_or_default();
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(value).into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
        }
    }
    Ok(records)
}

/// Writes one record (a tombstone for `None`) and waits for its acknowledgement.
pub async fn write(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
    headers: rdkafka::message::OwnedHeaders,
) -> Result<(), Error> {
    let mut record = FutureRecord::to(topic).key(key).headers(headers);
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer
        .send(record, Timeout::After(WRITE_TIMEOUT))
        .await
        .map(|_| ())
        .map_err(|(e, _)| Error::Kafka(e))
}

/// Reaching a partition's end is how a reader knows it is done, not an error to log.
pub(crate) struct EndsQuietly;

impl ClientContext for EndsQuietly {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::debug!(reason, "partition read to its end");
        } else {
            tracing::warn!(%error, reason, "topic reader");
        }
    }
}

impl ConsumerContext for EndsQuietly {}
