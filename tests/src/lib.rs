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
    config.topics.notifications_dlq = TopicSpec::new(&format!("{run}.dlq"), 1, None);
    config.topics.notifier_deliveries = TopicSpec::changelog(&format!("{run}.deliveries"), 3);
    config.topics.notifier_silences = TopicSpec::changelog(&format!("{run}.silences"), 1);
    config.topics.native = TopicSpec::new(&format!("{run}.native"), 2, None);
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

/// The `relec` binary of the build these tests belong to: `target/<profile>/relec`, next
/// to the `deps/` directory this test binary runs from (Cargo only gives
/// `CARGO_BIN_EXE_relec` to the `relec` crate's own tests). `tests/run.sh` builds it with
/// the rest of the workspace before any test runs.
pub fn relec_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("relec");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (`cargo build -p relec`, or run tests/run.sh)",
        binary.display()
    );
    binary
}

/// Every record `topic` holds that a read_committed consumer sees, partition by partition
/// from the beginning to the end, decoded as `T` (a record that does not decode fails the
/// test). Records of transactions still open are not read.
pub async fn read_committed<T: relec_schemas::Record>(
    kafka: &relec_plumbing::kafka::Kafka,
    topic: &str,
) -> Vec<T> {
    let decoder = relec_schemas::Decoder::<T>::new(kafka.registry().cloned());
    let mut records = Vec::new();
    for raw in read_committed_raw(kafka, topic).await {
        records.push(
            decoder
                .decode(&raw.payload)
                .await
                .expect("a record that decodes"),
        );
    }
    records
}

/// A record as it lies on a topic.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub key: Option<Vec<u8>>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub payload: Vec<u8>,
}

/// [`read_committed`] without decoding: keys, headers and bytes.
pub async fn read_committed_raw(
    kafka: &relec_plumbing::kafka::Kafka,
    topic: &str,
) -> Vec<RawRecord> {
    use rdkafka::{
        Message, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
        error::KafkaError,
        message::Headers,
    };
    let consumer: BaseConsumer = kafka
        .client_config("read-committed")
        .set("group.id", unique("read-committed"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(&topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut open: Vec<i32> = (0..partitions).collect();
        let mut payloads = Vec::new();
        let deadline = std::time::Instant::now() + RECEIVE_DEADLINE;
        while !open.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{topic}: partitions {open:?} not read to their end in {RECEIVE_DEADLINE:?}"
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => open.retain(|o| *o != p),
                Some(Err(e)) => panic!("{topic}: {e}"),
                Some(Ok(m)) => {
                    let headers = (m.headers().into_iter().flat_map(|h| h.iter()))
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_owned(), value.into_owned())
                        })
                        .collect();
                    payloads.push(RawRecord {
                        key: m.key().map(<[u8]>::to_vec),
                        headers,
                        payload: m.payload().unwrap_or_default().to_vec(),
                    });
                }
            }
        }
        payloads
    })
    .await
    .expect("join")
}

/// The value of the series `name{labels...}` in a Prometheus text exposition, summed over
/// the series that carry at least `labels`; `None` if there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name
            || !labels.iter().all(|(k, v)| {
                series_labels
                    .split(',')
                    .any(|l| l == format!("{k}=\"{v}\""))
            })
        {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// How many records of `topic` consumer group `group` has not committed yet: the sum over
/// partitions of the high watermark minus the group's committed offset (all of it where the
/// group has none). Offsets committed in a transaction count once it commits.
pub async fn group_lag(kafka: &relec_plumbing::kafka::Kafka, group: &str, topic: &str) -> i64 {
    use rdkafka::{
        Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
    };
    // Asking for the group's offsets does not join it. Read uncommitted, librdkafka does
    // not ask for stable offsets: it gets what the group has committed at once, where a
    // read_committed one waits while an instance's transaction holds offsets (a killed
    // instance's until the next one fences it off).
    let consumer: BaseConsumer = kafka
        .client_config("group-lag")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut wanted = TopicPartitionList::new();
        for p in 0..partitions {
            wanted.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(wanted, timeout)
            .expect("committed offsets");
        (0..partitions)
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .expect("watermarks");
                let at = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => low,
                };
                high - at
            })
            .sum()
    })
    .await
    .expect("join")
}
