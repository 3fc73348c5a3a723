//! Native Kafka publishers on the real broker: records written straight to the incidents
//! topic that do not decode or validate are copied to the rejected topic with the reason,
//! and the good ones around them are left alone.

use std::time::Duration;

use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
    producer::FutureRecord,
    util::Timeout,
};
use relec_ingest::{
    publisher::system_clock,
    screen::{self, REASON_HEADER, ScreenMetrics},
};
use relec_plumbing::kafka::Kafka;
use relec_schemas::{Encoder, IncidentEvent, WireFormat, sample};
use relec_tests::{RECEIVE_DEADLINE, broker, config, unique};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_invalid_records_land_in_the_rejected_topic() {
    let config = config(&broker(), WireFormat::SingleObject);
    let kafka = Kafka::connect(&config).expect("connect");
    kafka.create_topics(&config.topics).await.expect("topics");
    let producer = kafka.producer("native-agency").expect("producer");
    let encoder = Encoder::<IncidentEvent>::single_object();

    let good = encoder.encode(&sample::incident(3, 1)).expect("encode");
    let mut invalid_event = sample::incident(3, 2);
    invalid_event.persons = -5;
    let invalid = encoder.encode(&invalid_event).expect("encode");
    let garbage = b"{\"this is\": \"json, not avro\"}".to_vec();
    for (key, payload) in [("a", &good), ("b", &garbage), ("c", &invalid), ("d", &good)] {
        let record = FutureRecord::to(&config.topics.incidents.name)
            .key(key)
            .payload(payload);
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .expect("sent");
    }

    let stop = CancellationToken::new();
    let metrics = ScreenMetrics::register(&prometheus::Registry::new()).expect("metrics");
    let screen = {
        let (kafka, config, stop, metrics) =
            (kafka.clone(), config.clone(), stop.clone(), metrics.clone());
        tokio::spawn(
            async move { screen::run(&kafka, &config, metrics, system_clock(), stop).await },
        )
    };

    let rejected: StreamConsumer = kafka.consumer("test", &unique("group")).expect("consumer");
    rejected
        .subscribe(&[&config.topics.incidents_rejected.name])
        .expect("subscribe");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = tokio::time::timeout(RECEIVE_DEADLINE, rejected.recv())
            .await
            .expect("in time")
            .expect("message");
        let headers = m.headers().expect("headers");
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        seen.push((
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            header(REASON_HEADER),
            header(screen::DETAIL_HEADER),
            m.payload().unwrap_or_default().to_vec(),
        ));
    }
    seen.sort();
    assert_eq!((seen[0].0.as_str(), seen[0].1.as_str()), ("b", "decode"));
    assert!(seen[0].2.contains("unknown wire format"), "{}", seen[0].2);
    assert_eq!(seen[0].3, garbage, "kept as it arrived");
    assert_eq!((seen[1].0.as_str(), seen[1].1.as_str()), ("c", "invalid"));
    assert!(
        seen[1].2.contains("/persons: -5 is negative"),
        "{}",
        seen[1].2
    );

    // Nothing else follows: the good records were not copied.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rejected.recv())
            .await
            .is_err()
    );
    assert_eq!(metrics.rejected.with_label_values(&["decode"]).get(), 1);
    assert_eq!(metrics.rejected.with_label_values(&["invalid"]).get(), 1);
    stop.cancel();
    screen.await.expect("join").expect("clean stop");
}
