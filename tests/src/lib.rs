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
    config.topics.rules_repartition = TopicSpec::new(&format!("{run}.repartition"), 3, None);
    config.topics.rules_changelog = TopicSpec::changelog(&format!("{run}.changelog"), 3);
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

/// Asserts that an answer of the live ingest API is what its OpenAPI document promises for
/// `method path`: a documented status, a documented content type, a body valid against the
/// documented schema.
pub fn assert_matches_openapi(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &serde_json::Value,
) {
    let doc: serde_json::Value =
        serde_json::from_str(relec_ingest::http::OPENAPI).expect("OpenAPI is JSON");
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the OpenAPI document does not list"
    );
    let media = content_type.split(';').next().unwrap_or("").trim();
    let schema = &response["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} answered {media}, which the document does not list"
    );
    // The document is the root, so the schema's `#/components/...` references resolve.
    let mut root = doc.clone();
    for (k, v) in schema.as_object().expect("schema object") {
        root[k] = v.clone();
    }
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} body does not match the document: {errors:?}\n{body}"
    );
}

/// The ingest API for `config` on a loopback port of its own, its topics created first.
/// Returns the cluster handle, the URL of `POST /v1/events`, and a guard that stops the
/// server when dropped.
pub async fn start_ingest(
    config: &Config,
) -> (
    relec_plumbing::kafka::Kafka,
    String,
    tokio_util::sync::DropGuard,
) {
    let kafka = relec_plumbing::kafka::Kafka::connect(config).expect("connect");
    kafka.create_topics(&config.topics).await.expect("topics");
    let telemetry = relec_plumbing::telemetry::Telemetry::new();
    let clock = relec_ingest::publisher::system_clock();
    let api = relec_ingest::build(config, &kafka, &telemetry, clock)
        .await
        .expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/events", listener.local_addr().expect("addr"));
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(relec_ingest::serve(listener, api, stop.clone()));
    (kafka, url, stop.drop_guard())
}
