//! A broker outage under the ingest API, on the real broker: while Kafka is down the API
//! answers 503 with Retry-After; once it is back, publishing resumes and every acknowledged
//! event is on the topic exactly once. Its own test binary, because it stops the broker
//! every other test uses (cargo runs test binaries one at a time).

use std::{collections::HashMap, process::Command, time::Duration};

use relec_ingest::auth::generate_key;
use relec_plumbing::config::AgencyConfig;
use relec_schemas::{IncidentEvent, WireFormat, sample};
use relec_tests::{RECEIVE_DEADLINE, broker, config, records_on, start_ingest, unique};

fn bed(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bed/kafka.sh");
    let status = Command::new("bash")
        .args([script, action])
        .status()
        .expect("kafka.sh");
    assert!(status.success(), "kafka.sh {action} failed");
}

/// Puts the broker back even if an assertion fails halfway.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bed/kafka.sh");
        let _ = Command::new("bash").args([script, "resume"]).status();
    }
}

fn events(seed: u64, range: std::ops::Range<u64>) -> Vec<IncidentEvent> {
    range
        .map(|i| {
            let mut e = sample::incident(seed, i);
            e.reporting_country = "IRQ".into();
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_gives_503_and_loses_nothing() {
    let mut config = config(&broker(), WireFormat::SingleObject);
    config.ingest.publish_timeout = Duration::from_secs(3);
    config.ingest.retry_after = Duration::from_secs(2);
    let (key, hash) = generate_key();
    config.ingest.agencies = vec![AgencyConfig {
        id: "IRQ-BORDER".into(),
        countries: vec!["IRQ".into()],
        key_sha256: hash,
    }];
    let (kafka, url, _stop) = start_ingest(&config).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let post = |batch: &[IncidentEvent]| client.post(&url).bearer_auth(&key).json(batch).send();

    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let before = events(seed, 0..50);
    assert_eq!(post(&before).await.expect("post").status(), 200);

    let _restore = Restore;
    bed("stop");
    let during = events(seed, 50..100);
    let response = post(&during).await.expect("post");
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let problem: serde_json::Value = response.json().await.expect("problem");
    relec_tests::assert_matches_openapi("post", "/v1/events", 503, &media, &problem);
    assert_eq!(problem["type"], "/v1/problems/unavailable");

    bed("resume");
    // Retry as a client would, honouring Retry-After, until the brokers take it again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let response = post(&during).await.expect("post");
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503, "only 503 while Kafka recovers");
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing did not resume"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let topic = &config.topics.incidents.name;
    let consumer = kafka
        .record_consumer::<IncidentEvent>("test", &unique("group"), &[topic])
        .expect("consumer");
    let mut seen: HashMap<String, usize> = HashMap::new();
    let expected = before.len() + during.len();
    while seen.values().sum::<usize>() < expected {
        let consumed = tokio::time::timeout(RECEIVE_DEADLINE, consumer.next())
            .await
            .expect("in time")
            .expect("consume");
        *seen
            .entry(consumed.record.expect("decodes").event_id)
            .or_default() += 1;
    }
    for e in before.iter().chain(&during) {
        assert_eq!(seen.get(&e.event_id), Some(&1), "{} once", e.event_id);
    }
    assert_eq!(
        records_on(&kafka, topic).await,
        expected as i64,
        "nothing written twice"
    );
}
