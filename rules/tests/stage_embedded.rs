//! The rules stage on the embedded cluster (librdkafka's in-process mock, the zero-setup
//! default of `relec run`): incidents in, the pack's alerts out, with transactions.
//! The exactly-once guarantees are tested on a real broker in `tests/rules_stage.rs`.

use std::{path::Path, time::Duration};

use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::{Config, kafka::Kafka};
use relec_rules::stage::RulesStage;
use relec_schemas::{Alert, AlertStatus, IncidentEvent};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pack_fires_through_the_stage_on_the_embedded_cluster() {
    let mut config = Config::default();
    config.kafka.brokers = "embedded".into();
    config.rules.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pack");
    config.rules.instance = Some("embedded-test".into());
    config.rules.commit_interval = Duration::from_millis(50);
    config.telemetry.listen = "127.0.0.1:0".parse().expect("addr");
    let kafka = Kafka::connect(&config).expect("embedded cluster");
    let registry = prometheus::Registry::new();
    let stage = RulesStage::build(&config, &kafka, &registry)
        .await
        .expect("stage builds");

    let events: Vec<IncidentEvent> = Simulation::new(SimConfig {
        seed: 5,
        start_ms: 1_736_121_600_000,
        days: 40,
        scale: 0.3,
        scenarios: vec![
            "casualty:IRN-TUR-VAN@day=20,dead=3,missing=1"
                .parse()
                .expect("scenario"),
        ],
        background_casualties: false,
    })
    .events()
    .collect();
    let producer = kafka
        .record_producer::<IncidentEvent>("test", &config.topics.incidents.name)
        .await
        .expect("producer");
    for chunk in events.chunks(500) {
        for result in producer
            .send_all(chunk.iter().map(|e| (e.route.as_str(), e)))
            .await
        {
            result.expect("delivered");
        }
    }

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stage.run(shutdown.clone()));
    let alerts = kafka
        .record_consumer::<Alert>("test", "alerts-reader", &[&config.topics.alerts.name])
        .expect("consumer");
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let consumed = alerts.next().await.expect("consume");
            let alert = consumed.record.expect("decodes");
            if alert.rule_id == "death_or_missing" {
                return alert;
            }
        }
    })
    .await
    .expect("a death_or_missing alert within 60 s");
    assert_eq!(found.status, AlertStatus::Firing);
    assert_eq!(found.value, 4.0);
    assert_eq!(
        found.labels.get("route").map(String::as_str),
        Some("IRN-TUR-VAN")
    );
    shutdown.cancel();
    running
        .await
        .expect("joins")
        .expect("the stage stops cleanly");
}
