//! Rebuilds the idempotency window from `relec.incidents` at start, so a re-sent event is a
//! duplicate even after a restart, and a re-run of `relec publish` publishes nothing twice.

use std::{collections::HashMap, sync::Arc, time::Instant};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
};
use relec_plumbing::kafka::{ADMIN_TIMEOUT, Kafka, while_leaders_move};
use relec_schemas::{Decoder, IncidentEvent};

use crate::dedup::Dedup;

/// Rebuilds the window from `topic`: every record written since `now_ms - window` is
/// remembered by its `event_id` at its record timestamp. Returns how many were read.
/// This is what makes a re-sent event a duplicate even after a restart, and a re-run of
/// `relec publish` publish nothing twice.
pub async fn rebuild(
    dedup: Arc<Dedup>,
    kafka: &Kafka,
    topic: &str,
    now_ms: i64,
) -> Result<usize, crate::Error> {
    let consumer: BaseConsumer = kafka
        .reader_config("ingest-dedup")
        .set("group.id", "relec-ingest-dedup")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // Transaction markers occupy offsets too; EOF events say "caught up" reliably.
        .set("enable.partition.eof", "true")
        .create()
        .map_err(relec_plumbing::Error::from)?;
    let decoder = Decoder::<IncidentEvent>::new(kafka.registry().cloned());
    let topic = topic.to_owned();
    let since = now_ms - dedup.window().as_millis() as i64;
    let runtime = tokio::runtime::Handle::current();
    let read = tokio::task::spawn_blocking(move || -> Result<usize, KafkaError> {
        let timeout = ADMIN_TIMEOUT;
        // A topic created a moment ago may have no partition leaders yet.
        let settled = Instant::now() + timeout;
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut starts = TopicPartitionList::new();
        for p in 0..partitions {
            starts.add_partition_offset(&topic, p, Offset::Offset(since))?;
        }
        let starts = while_leaders_move(settled, || {
            consumer.offsets_for_times(starts.clone(), timeout)
        })?;
        // Read each partition up to where it ended when we started; later records are
        // ones this process writes itself.
        let mut assign = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for element in starts.elements() {
            let (_, high) = while_leaders_move(settled, || {
                consumer.fetch_watermarks(&topic, element.partition(), timeout)
            })?;
            if let Offset::Offset(start) = element.offset()
                && start < high
            {
                assign.add_partition_offset(&topic, element.partition(), element.offset())?;
                ends.insert(element.partition(), high);
            }
        }
        drop(starts);
        if ends.is_empty() {
            return Ok(0);
        }
        consumer.assign(&assign)?;
        let deadline = Instant::now() + timeout * 4;
        let mut read = 0;
        while !ends.is_empty() && Instant::now() < deadline {
            let Some(message) = consumer.poll(std::time::Duration::from_millis(200)) else {
                continue;
            };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    ends.remove(&partition);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let at = message.timestamp().to_millis().unwrap_or(now_ms);
            if let Ok(event) =
                runtime.block_on(decoder.decode(message.payload().unwrap_or_default()))
            {
                dedup.remember(&event.event_id, at);
                read += 1;
            }
            if ends
                .get(&message.partition())
                .is_some_and(|end| message.offset() + 1 >= *end)
            {
                ends.remove(&message.partition());
            }
        }
        Ok(read)
    })
    .await
    .map_err(relec_plumbing::Error::from)?
    .map_err(relec_plumbing::Error::from)?;
    Ok(read)
}
