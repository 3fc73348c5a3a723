//! The ingest stage assembled: from the config to a running HTTP API whose publisher
//! writes to `relec.incidents`, until shutdown, then a flush of what is in flight.

use std::sync::Arc;

use relec_plumbing::{Config, kafka::Kafka, telemetry::Telemetry};
use relec_schemas::{Decoder, IncidentEvent};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    auth::Agencies,
    dedup::Dedup,
    events::IngestMetrics,
    http::{IngestApi, Limits, router},
    publisher::{Clock, Publisher},
    restore,
    server::serve_http,
};

/// Builds the publisher and the API for `config`. The producer gives up on a record after
/// `ingest.publish_timeout`, so an unacknowledged request fails with 503 in that time.
pub async fn build(
    config: &Config,
    kafka: &Kafka,
    telemetry: &Telemetry,
    clock: Clock,
) -> Result<IngestApi, Error> {
    let ingest = &config.ingest;
    let topic = &config.topics.incidents.name;
    if kafka.is_embedded() {
        kafka.create_topics(&config.topics).await?;
        kafka.create_native_topics(config).await?;
    } else if !kafka
        .describe_topics(&[topic])
        .await?
        .iter()
        .all(|t| t.exists)
    {
        return Err(relec_plumbing::Error::Topic {
            topic: topic.clone(),
            reason: "does not exist; create it with `relec topics create`".into(),
        }
        .into());
    }
    if ingest.screen && !kafka.is_embedded() {
        warn_of_missing_native_topics(config, kafka).await?;
    }
    let mut producer_config = config.clone();
    producer_config.kafka.producer.delivery_timeout = ingest.publish_timeout;
    let producer_kafka = Kafka::connect_like(kafka, &producer_config);
    let producer = producer_kafka
        .record_producer::<IncidentEvent>("ingest", &config.topics.incidents.name)
        .await?;
    let metrics = IngestMetrics::register(&telemetry.registry)?;
    let dedup = Arc::new(Dedup::new(ingest.dedup_window, ingest.dedup_capacity));
    let remembered =
        restore::rebuild(dedup.clone(), kafka, &config.topics.incidents.name, clock()).await?;
    tracing::info!(remembered, window = ?ingest.dedup_window, "idempotency window rebuilt from the topic");
    let publisher = Publisher::new(
        producer,
        dedup,
        clock,
        ingest.clock_skew,
        ingest.publish_timeout,
        metrics,
    );
    let agencies = Agencies::new(&ingest.agencies);
    if agencies.is_empty() {
        tracing::warn!(
            "no agencies configured under [[ingest.agencies]]: every publish request gets 401"
        );
    }
    Ok(IngestApi {
        publisher,
        agencies: Arc::new(agencies),
        limits: Limits {
            max_body_bytes: ingest.max_body_bytes,
            max_batch: ingest.max_batch,
            header_read_timeout: ingest.header_read_timeout,
            body_read_timeout: ingest.body_read_timeout,
            retry_after: ingest.retry_after,
        },
        decoder: Arc::new(Decoder::new(kafka.registry().cloned())),
    })
}

/// An agency without its native topic can publish over HTTP only; `relec topics create`
/// makes the topic (the screen finds it at its next start).
async fn warn_of_missing_native_topics(config: &Config, kafka: &Kafka) -> Result<(), Error> {
    let names: Vec<String> = (config.native_topics().into_iter())
        .map(|t| t.name)
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for topic in kafka.describe_topics(&names).await? {
        if !topic.exists {
            tracing::warn!(
                topic = topic.name,
                "native topic missing: its agency cannot publish over Kafka; create it with `relec topics create`"
            );
        }
    }
    Ok(())
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    api: IngestApi,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let header_read_timeout = api.limits.header_read_timeout;
    serve_http(listener, router(api), header_read_timeout, shutdown).await?;
    Ok(())
}
