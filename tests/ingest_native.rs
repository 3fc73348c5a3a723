//! Native Kafka publishers on the real broker: each agency writes to its own topic, and the
//! screen treats every record there as that agency's request. Good ones reach the incidents
//! topic once; a record that does not decode, does not validate, is for a country the
//! agency may not report for, or sits on the topic of no configured agency is copied to the
//! rejected topic with the reason, and the good ones around it are left alone.

use std::{collections::BTreeMap, time::Duration};

use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use relec_ingest::{
    auth::generate_key,
    screen::{self, Screen, ScreenMetrics},
};
use relec_plumbing::{
    config::AgencyConfig,
    kafka::{
        Kafka,
        rejected::{DETAIL_HEADER, REASON_HEADER, SOURCE_HEADER},
    },
    telemetry::Telemetry,
};
use relec_schemas::{Decoder, Encoder, IncidentEvent, WireFormat, sample};
use relec_tests::{RECEIVE_DEADLINE, broker, config, records_on, unique};
use tokio_util::sync::CancellationToken;

const IRN: &str = "irn-border-guard";

fn agency(id: &str, country: &str) -> AgencyConfig {
    AgencyConfig {
        id: id.into(),
        countries: vec![country.into()],
        key_sha256: generate_key().1,
    }
}

fn irn_event(i: u64) -> IncidentEvent {
    let mut e = sample::incident(7, i);
    e.reporting_country = "IRN".into();
    e.reporting_agency = IRN.into();
    e
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    let record = FutureRecord::to(topic).key(key).payload(payload);
    producer
        .send(record, Timeout::After(Duration::from_secs(30)))
        .await
        .expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_records_are_screened_as_requests_of_the_agency_whose_topic_they_are_on() {
    let mut config = config(&broker(), WireFormat::SingleObject);
    // "ghost" gets a native topic, then leaves the config: its topic is no agency's.
    config.ingest.agencies = vec![agency(IRN, "IRN"), agency("ghost", "IRN")];
    let kafka = Kafka::connect(&config).expect("connect");
    kafka.create_topics(&config.topics).await.expect("topics");
    let natives = kafka.create_native_topics(&config).await.expect("natives");
    assert_eq!(natives.len(), 2);
    config.ingest.agencies.truncate(1);
    let (irn_topic, ghost_topic) = (
        config.topics.native_for(IRN).name,
        config.topics.native_for("ghost").name,
    );

    let producer = kafka.producer("native-agency").expect("producer");
    let encoder = Encoder::<IncidentEvent>::single_object();
    let encode = |e: &IncidentEvent| encoder.encode(e).expect("encode");
    let mut invalid = irn_event(3);
    invalid.persons = -5;
    let mut turkish = irn_event(4);
    turkish.reporting_country = "TUR".into();
    let garbage = b"{\"this is\": \"json, not avro\"}".to_vec();
    for (key, payload) in [
        ("good-1", encode(&irn_event(1))),
        ("garbage", garbage.clone()),
        ("invalid", encode(&invalid)),
        ("turkish", encode(&turkish)),
        ("good-1-again", encode(&irn_event(1))),
        ("good-2", encode(&irn_event(2))),
    ] {
        send(&producer, &irn_topic, key, &payload).await;
    }
    send(&producer, &ghost_topic, "ghost", &encode(&irn_event(5))).await;

    let stop = CancellationToken::new();
    let telemetry = Telemetry::new();
    let clock = relec_ingest::publisher::system_clock();
    let api = relec_ingest::build(&config, &kafka, &telemetry, clock)
        .await
        .expect("build");
    let metrics = ScreenMetrics::register(&telemetry.registry).expect("metrics");
    let screened = Screen {
        publisher: api.publisher.clone(),
        agencies: api.agencies.clone(),
        metrics: metrics.clone(),
    };
    let task = {
        let (kafka, config, stop) = (kafka.clone(), config.clone(), stop.clone());
        tokio::spawn(async move { screen::run(&kafka, &config, screened, stop).await })
    };

    let rejected: StreamConsumer = kafka.consumer("test", &unique("group")).expect("consumer");
    rejected
        .subscribe(&[&config.topics.incidents_rejected.name])
        .expect("subscribe");
    let mut seen = BTreeMap::new();
    while seen.len() < 4 {
        let m = tokio::time::timeout(RECEIVE_DEADLINE, rejected.recv())
            .await
            .expect("in time")
            .expect("message");
        let headers = m.headers().expect("headers");
        let header = |name: &str| {
            (headers.iter())
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let value = (
            header(REASON_HEADER),
            header(DETAIL_HEADER),
            header(SOURCE_HEADER),
            m.payload().unwrap_or_default().to_vec(),
        );
        assert!(seen.insert(key, value).is_none(), "each copied once");
    }
    let (reason, detail, source, payload) = &seen["garbage"];
    assert_eq!(reason, "decode");
    assert!(detail.contains("unknown wire format"), "{detail}");
    assert!(source.starts_with(&format!("{irn_topic}/")), "{source}");
    assert_eq!(payload, &garbage, "kept as it arrived");
    let (reason, detail, ..) = &seen["invalid"];
    assert_eq!(reason, "invalid");
    assert!(detail.contains("/persons: -5 is negative"), "{detail}");
    let (reason, detail, ..) = &seen["turkish"];
    assert_eq!(reason, "forbidden");
    assert_eq!(
        detail,
        &format!("/reporting_country: agency {IRN} may not report for TUR")
    );
    let (reason, detail, ..) = &seen["ghost"];
    assert_eq!(reason, "unknown-agency");
    assert!(detail.contains("no agency \"ghost\""), "{detail}");

    // Nothing else is copied: the good records were published, the repeat once.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rejected.recv())
            .await
            .is_err()
    );
    for reason in screen::REASONS {
        assert_eq!(metrics.rejected.with_label_values(&[reason]).get(), 1);
    }
    let incidents = &config.topics.incidents.name;
    assert_eq!(records_on(&kafka, incidents).await, 2);
    let published: StreamConsumer = kafka.consumer("test", &unique("group")).expect("consumer");
    published.subscribe(&[incidents]).expect("subscribe");
    let decoder = Decoder::<IncidentEvent>::new(None);
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let m = tokio::time::timeout(RECEIVE_DEADLINE, published.recv())
            .await
            .expect("in time")
            .expect("message");
        let event = decoder
            .decode(m.payload().unwrap_or_default())
            .await
            .expect("relec writes what it reads");
        ids.push(event.event_id);
    }
    ids.sort();
    let mut want = vec![irn_event(1).event_id, irn_event(2).event_id];
    want.sort();
    assert_eq!(ids, want);
    stop.cancel();
    task.await.expect("join").expect("clean stop");
}
