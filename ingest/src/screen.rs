//! The native Kafka path: agencies with their own producers write Avro (either wire format)
//! to a topic of their own, `relec.native.<agency id>`, where Kafka's ACLs let only that
//! agency's principal write. The screen reads every such topic and treats each record as
//! that agency's HTTP request: it must decode, validate, and be for a country the agency is
//! bound to. Good records go through the publisher every path shares to `relec.incidents`
//! (deduplicated by `event_id`); the others are copied, bytes and key untouched, to
//! `relec.incidents.rejected` with the reason in headers, counted, and passed over, so a bad
//! record never blocks its partition.

use std::{sync::Arc, time::Duration};

use prometheus::{IntCounterVec, Opts, Registry};
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
    util::Timeout,
};
use relec_plumbing::{
    Config,
    kafka::{Consumed, Kafka, commit_sync, rejected},
};
use relec_schemas::IncidentEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    auth::{Agencies, Agency},
    publisher::{Item, Outcome, Publisher},
};

/// Consumer group of the screen; one screen per partition is enough, so it scales with
/// the ingest instances.
pub const SCREEN_GROUP: &str = "relec-ingest-screen";

/// Bounded reasons a native record is rejected for.
pub const REASONS: [&str; 4] = ["decode", "invalid", "forbidden", "unknown-agency"];

/// At most this many records, of those already fetched, are published together.
const MAX_BATCH: usize = 500;

/// How long to wait before publishing again while Kafka does not acknowledge.
const RETRY_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ScreenMetrics {
    pub rejected: IntCounterVec,
}

impl ScreenMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let rejected = IntCounterVec::new(
            Opts::new(
                "relec_ingest_native_rejected_total",
                "Records on agencies' native topics that failed to decode or validate, or were for a country their agency may not report for; copied to the rejected topic.",
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

/// What the shared parts of the ingest stage lend the screen.
#[derive(Debug, Clone)]
pub struct Screen {
    pub publisher: Publisher,
    pub agencies: Arc<Agencies>,
    pub metrics: ScreenMetrics,
}

/// Why a record is not published.
struct Rejection {
    reason: &'static str,
    detail: String,
}

/// Screens every agency's native topic until `shutdown`, then commits what it processed.
pub async fn run(
    kafka: &Kafka,
    config: &Config,
    screen: Screen,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let topics = &config.topics;
    let consumer = Arc::new(kafka.record_consumer::<IncidentEvent>(
        "ingest-screen",
        SCREEN_GROUP,
        &[&topics.native_pattern()],
    )?);
    let producer = kafka.producer("ingest-screen")?;
    // A task of its own reads ahead, so the loop below can take whatever has arrived as
    // one batch without ever dropping a read half done.
    let (tx, mut rx) = mpsc::channel(MAX_BATCH);
    let reader = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            loop {
                let next = match consumer.next().await {
                    // Every broker gone ends the screen, and with it the stage, which exits
                    // with an error for its supervisor to restart: a stage kept up through
                    // a broker restart was seen to stop acknowledging requests in the chaos
                    // suite, and a fresh process does not.
                    Err(relec_plumbing::Error::Kafka(e))
                        if e.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) =>
                    {
                        // No agency topic yet, a partition moving: librdkafka goes on.
                        tracing::warn!(error = %e, "reading native topics: retrying");
                        tokio::time::sleep(RETRY_BACKOFF).await;
                        continue;
                    }
                    next => next,
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    break;
                }
            }
        })
    };
    let result = async {
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = rx.recv() => next.expect("the reader ends only through the channel")?,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH
                && let Ok(next) = rx.try_recv()
            {
                batch.push(next?);
            }
            if !screen_batch(&screen, config, &producer, &batch, &shutdown).await? {
                return Ok(()); // shut down while Kafka was away: the batch is read again
            }
            for consumed in &batch {
                consumer.store(consumed)?;
            }
        }
    }
    .await;
    reader.abort();
    commit_sync(consumer.inner())?;
    result
}

/// Publishes the good records of `batch` and forwards the others. `false`: shutdown came
/// while Kafka did not acknowledge, and nothing of the batch may count as processed.
async fn screen_batch(
    screen: &Screen,
    config: &Config,
    producer: &FutureProducer,
    batch: &[Consumed<IncidentEvent>],
    shutdown: &CancellationToken,
) -> Result<bool, Error> {
    let mut rejections: Vec<Option<Rejection>> = Vec::with_capacity(batch.len());
    // The good records by agency, each with its position in the batch.
    let mut good: Vec<(&Agency, Vec<(usize, Item)>)> = Vec::new();
    for (i, consumed) in batch.iter().enumerate() {
        match check(screen, config, consumed) {
            Ok((agency, event)) => {
                rejections.push(None);
                let item = (i, Item::Event(Box::new(event.clone())));
                match good.iter_mut().find(|(a, _)| a.id == agency.id) {
                    Some((_, items)) => items.push(item),
                    None => good.push((agency, vec![item])),
                }
            }
            Err(rejection) => rejections.push(Some(rejection)),
        }
    }
    for (agency, items) in good {
        let (positions, items): (Vec<usize>, Vec<Item>) = items.into_iter().unzip();
        let Some(outcomes) = publish(&screen.publisher, agency, items, shutdown).await? else {
            return Ok(false);
        };
        for (i, outcome) in positions.into_iter().zip(outcomes) {
            if let Outcome::Rejected(errors) = outcome {
                let detail: Vec<String> = (errors.iter())
                    .map(|e| format!("{}: {}", e.pointer, e.reason))
                    .collect();
                rejections[i] = Some(Rejection {
                    reason: "invalid",
                    detail: detail.join("; "),
                });
            }
        }
    }
    for (consumed, rejection) in batch.iter().zip(&rejections) {
        let Some(Rejection { reason, detail }) = rejection else {
            continue;
        };
        forward(
            producer,
            &config.topics.incidents_rejected.name,
            consumed,
            reason,
            detail,
        )
        .await?;
        tracing::warn!(
            reason,
            detail = %detail,
            topic = consumed.topic,
            partition = consumed.partition,
            offset = consumed.offset,
            "native record rejected"
        );
        screen.metrics.rejected.with_label_values(&[reason]).inc();
    }
    Ok(true)
}

/// The agency a record is from and the event it carries, if it may be published.
fn check<'a, 'c>(
    screen: &'a Screen,
    config: &Config,
    consumed: &'c Consumed<IncidentEvent>,
) -> Result<(&'a Agency, &'c IncidentEvent), Rejection> {
    let id = config.topics.native_agency(&consumed.topic).unwrap_or("");
    let agency = screen.agencies.by_id(id).ok_or_else(|| Rejection {
        reason: "unknown-agency",
        detail: format!(
            "topic {}: no agency {id:?} in ingest.agencies",
            consumed.topic
        ),
    })?;
    let event = consumed.record.as_ref().map_err(|e| Rejection {
        reason: "decode",
        detail: e.to_string(),
    })?;
    if !agency.may_report_for(&event.reporting_country) {
        return Err(Rejection {
            reason: "forbidden",
            detail: format!(
                "/reporting_country: agency {} may not report for {}",
                agency.id, event.reporting_country
            ),
        });
    }
    Ok((agency, event))
}

/// Publishes `items` for `agency`, again and again while Kafka does not acknowledge (a
/// retry finds what was acknowledged as duplicates); `None` if shutdown came first.
async fn publish(
    publisher: &Publisher,
    agency: &Agency,
    items: Vec<Item>,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<Outcome>>, Error> {
    loop {
        match publisher.publish(agency, items.clone()).await {
            Ok(outcomes) => return Ok(Some(outcomes)),
            Err(Error::Unavailable(reason)) => {
                tracing::warn!(agency = agency.id, %reason, "native records not acknowledged; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(RETRY_BACKOFF) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Copies the record as it arrived, key and bytes untouched, with why and where from.
async fn forward(
    producer: &FutureProducer,
    topic: &str,
    consumed: &Consumed<IncidentEvent>,
    reason: &str,
    detail: &str,
) -> Result<(), Error> {
    let headers = rejected::headers(
        reason,
        detail,
        &consumed.topic,
        consumed.partition,
        consumed.offset,
    );
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
