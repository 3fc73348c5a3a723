//! Helpers for the black-box tests: where the test bed's real services are, and unique
//! names so tests never see each other's topics or groups.

use std::time::Duration;

use relec_plumbing::{
    Config,
    config::{RegistryConfig, TopicSpec},
};
use relec_schemas::WireFormat;

/// How long a test waits for records that should arrive; generous for a loaded 2-core CI.
pub const RECEIVE_DEADLINE: Duration = Duration::from_secs(180);

/// The real Kafka broker started by `tests/bed/up.sh`. These tests exist to prove relec
/// against the real thing, so running them without it is an error, not a skip.
pub fn broker() -> String {
    std::env::var("RELEC_TEST_BROKERS").unwrap_or_else(|_| {
        panic!("RELEC_TEST_BROKERS is not set: run the suite with tests/run.sh, which starts the broker")
    })
}

/// The Confluent-compatible schema registry of the test bed.
pub fn registry() -> String {
    std::env::var("RELEC_TEST_REGISTRY").unwrap_or_else(|_| {
        panic!("RELEC_TEST_REGISTRY is not set: run the suite with tests/run.sh")
    })
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A config for `brokers` (a broker list or "embedded") in `format`, with unique topic names.
pub fn config(brokers: &str, format: WireFormat) -> Config {
    let mut config = Config::default();
    config.kafka.brokers = brokers.to_owned();
    config.kafka.wire_format = format;
    if format == WireFormat::Confluent {
        config.schema_registry = Some(RegistryConfig {
            url: registry(),
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
        });
    }
    let run = unique("t");
    config.topics.incidents = TopicSpec::new(&format!("{run}.incidents"), 3, None);
    config.topics.incidents_rejected = TopicSpec::new(&format!("{run}.rejected"), 1, None);
    config.topics.alerts = TopicSpec::new(&format!("{run}.alerts"), 2, None);
    config
}

/// How many records `topic` holds: the sum of its partitions' high watermarks.
pub async fn records_on(kafka: &relec_plumbing::kafka::Kafka, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = kafka
        .client_config("watermarks")
        .set("group.id", unique("watermarks"))
        .create()
        .expect("consumer");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .expect("watermarks")
                    .1
            })
            .sum()
    })
    .await
    .expect("join")
}
