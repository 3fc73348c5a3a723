//! Incident events through Kafka and back: 10,000 per wire format produced with the
//! project's producer, consumed in a consumer group, compared field by field, on the real
//! broker and on the embedded cluster; and topic creation that is idempotent.

use std::collections::HashMap;

use relec_plumbing::kafka::{Kafka, TopicOutcome};
use relec_schemas::{IncidentEvent, WireFormat, sample};
use relec_tests::{RECEIVE_DEADLINE, broker, config, unique};

const EVENTS: u64 = 10_000;
const BATCH: usize = 1_000;

async fn round_trip(brokers: &str, format: WireFormat) {
    let config = config(brokers, format);
    let kafka = Kafka::connect(&config).expect("connect");
    kafka
        .create_topics(&config.topics)
        .await
        .expect("create topics");
    let topic = &config.topics.incidents.name;

    let seed = rand_seed();
    let sent: Vec<IncidentEvent> = (0..EVENTS).map(|i| sample::incident(seed, i)).collect();
    let producer = kafka
        .record_producer::<IncidentEvent>("test", topic)
        .await
        .expect("producer");
    for batch in sent.chunks(BATCH) {
        let results = producer
            .send_all(batch.iter().map(|e| (e.route.as_str(), e)))
            .await;
        for r in results {
            r.expect("acknowledged");
        }
    }

    let consumer = kafka
        .record_consumer::<IncidentEvent>("test", &unique("group"), &[topic])
        .expect("consumer");
    let mut received: HashMap<String, IncidentEvent> = HashMap::new();
    let deadline = tokio::time::Instant::now() + RECEIVE_DEADLINE;
    while received.len() < sent.len() {
        let consumed = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {EVENTS} arrived in time", received.len()))
            .expect("consume");
        let event = consumed.record.as_ref().expect("decodes").clone();
        assert_eq!(
            consumed.key.as_deref(),
            Some(event.route.as_bytes()),
            "keyed by route"
        );
        consumer.store(&consumed).expect("store offset");
        let id = event.event_id.clone();
        assert!(
            received.insert(id.clone(), event).is_none(),
            "{id} arrived twice"
        );
    }
    for event in &sent {
        assert_eq!(received.get(&event.event_id), Some(event), "field by field");
    }
    relec_plumbing::kafka::commit_sync(consumer.inner()).expect("commit");
}

fn rand_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_single_object() {
    round_trip(&broker(), WireFormat::SingleObject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_confluent() {
    round_trip(&broker(), WireFormat::Confluent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_single_object() {
    round_trip("embedded", WireFormat::SingleObject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_confluent() {
    round_trip("embedded", WireFormat::Confluent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_is_idempotent_on_the_real_broker() {
    let config = config(&broker(), WireFormat::SingleObject);
    let kafka = Kafka::connect(&config).expect("connect");
    let first = kafka.create_topics(&config.topics).await.expect("create");
    assert!(
        first.iter().all(|(_, o)| *o == TopicOutcome::Created),
        "{first:?}"
    );
    let second = kafka
        .create_topics(&config.topics)
        .await
        .expect("create again");
    assert!(
        second
            .iter()
            .all(|(_, o)| *o == TopicOutcome::Exists { drift: vec![] }),
        "{second:?}"
    );
    let described = kafka
        .describe_topics(&[&config.topics.incidents.name])
        .await
        .expect("describe");
    assert_eq!(described[0].partitions, 3);
    assert_eq!(described[0].replication_factor, 1);
    assert_eq!(
        described[0]
            .configs
            .get("cleanup.policy")
            .map(String::as_str),
        Some("delete")
    );
    assert_eq!(
        described[0].configs.get("retention.ms").map(String::as_str),
        Some("-1")
    );
}
