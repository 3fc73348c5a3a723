//! The native Kafka path: agencies with their own producers write Avro (either wire format)
//! straight to `relec.incidents`. This consumer checks every record there; one that does
//! not decode or validate is copied to `relec.incidents.rejected` with the reason in its
//! headers, counted by reason, and passed over, so a bad record never blocks its partition.
//! (The rules stage applies the same check and skips such records.)

use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use relec_plumbing::{
    Config,
    kafka::{Consumed, Kafka, commit_sync},
};
use relec_schemas::IncidentEvent;
use tokio_util::sync::CancellationToken;

use crate::{Error, publisher::Clock, validate::validate};

/// Consumer group of the screen; one screen per partition is enough, so it scales with
/// the ingest instances.
pub const SCREEN_GROUP: &str = "relec-ingest-screen";

/// Header names on rejected records.
pub const REASON_HEADER: &str = "relec.reject.reason";
pub const DETAIL_HEADER: &str = "relec.reject.detail";
pub const SOURCE_HEADER: &str = "relec.source";

/// Bounded reasons a native record is rejected for.
pub const REASONS: [&str; 2] = ["decode", "invalid"];

#[derive(Debug, Clone)]
pub struct ScreenMetrics {
    pub rejected: IntCounterVec,
}

impl ScreenMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let rejected = IntCounterVec::new(
            Opts::new(
                "relec_ingest_native_rejected_total",
                "Records on the incidents topic that failed to decode or validate, copied to the rejected topic.",
            ),
            &["reason"],
        )?;
        for reason in REASONS {
            rejected.with_label_values(&[reason]);
        }
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self { rejected })
    }
}

/// Screens the incidents topic until `shutdown`, then commits what it has processed.
pub async fn run(
    kafka: &Kafka,
    config: &Config,
    metrics: ScreenMetrics,
    clock: Clock,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let topics = &config.topics;
    let consumer = kafka.record_consumer::<IncidentEvent>(
        "ingest-screen",
        SCREEN_GROUP,
        &[&topics.incidents.name],
    )?;
    let producer = kafka.producer("ingest-screen")?;
    let skew = config.ingest.clock_skew;
    loop {
        let consumed = tokio::select! {
            _ = shutdown.cancelled() => break,
            consumed = consumer.next() => consumed?,
        };
        let verdict = match &consumed.record {
            Err(e) => Some(("decode", e.to_string())),
            Ok(event) => {
                let errors = validate(event, clock(), skew);
                (!errors.is_empty()).then(|| {
                    let detail: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.pointer, e.reason))
                        .collect();
                    ("invalid", detail.join("; "))
                })
            }
        };
        if let Some((reason, detail)) = verdict {
            forward(
                &producer,
                &topics.incidents_rejected.name,
                &consumed,
                reason,
                &detail,
            )
            .await?;
            tracing::warn!(
                reason,
                detail = %detail,
                partition = consumed.partition,
                offset = consumed.offset,
                "native record rejected"
            );
            metrics.rejected.with_label_values(&[reason]).inc();
        }
        consumer.store(&consumed)?;
    }
    commit_sync(consumer.inner())?;
    Ok(())
}

/// Copies the record as it arrived, key and bytes untouched, with why and where from.
async fn forward(
    producer: &FutureProducer,
    topic: &str,
    consumed: &Consumed<IncidentEvent>,
    reason: &str,
    detail: &str,
) -> Result<(), Error> {
    let source = format!(
        "{}/{}/{}",
        consumed.topic, consumed.partition, consumed.offset
    );
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: REASON_HEADER,
            value: Some(reason),
        })
        .insert(Header {
            key: DETAIL_HEADER,
            value: Some(detail),
        })
        .insert(Header {
            key: SOURCE_HEADER,
            value: Some(&source),
        });
    let mut record = FutureRecord::to(topic)
        .payload(&consumed.payload)
        .headers(headers);
    if let Some(key) = &consumed.key {
        record = record.key(key);
    }
    // Keep trying: moving on without the copy would lose the record for the operator.
    producer
        .send(record, Timeout::After(Duration::from_secs(60)))
        .await
        .map_err(|(e, _)| relec_plumbing::Error::Kafka(e))?;
    Ok(())
}
