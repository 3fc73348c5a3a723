//! Schema-registry interop: a client no one here wrote, Python's confluent-kafka with its
//! Avro serializer (tests/bed/confluent_client.py), publishes incidents in the Confluent
//! wire format through the test bed's real registry (Apicurio Registry's Confluent API);
//! the rules stage reads them and raises the alert; the same client reads that alert
//! back from relec's alerts topic with its Avro deserializer.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::kafka::Kafka;
use relec_rules::stage::RulesStage;
use relec_schemas::{Alert, AlertStatus, IncidentEvent, Record, WireFormat};
use relec_tests::{
    RECEIVE_DEADLINE, broker, config, metric, read_committed, records_on, registry, unique,
};
use tokio_util::sync::CancellationToken;

/// How long the Python client may take for one command; it stops itself then.
const CLIENT_TIMEOUT_S: u32 = 120;

/// The Python of the venv `tests/bed/confluent.sh` makes (exported by `tests/bed/up.sh`).
fn confluent_python() -> String {
    std::env::var("RELEC_TEST_CONFLUENT_PYTHON").unwrap_or_else(|_| {
        panic!("RELEC_TEST_CONFLUENT_PYTHON is not set: run the suite with tests/run.sh, whose test bed makes the venv")
    })
}

/// Runs `confluent_client.py COMMAND ARGS...` with `stdin`; its stdout, or the test fails
/// with its stderr.
async fn client(command: &str, args: &[&str], stdin: String) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bed/confluent_client.py");
    let mut cmd = Command::new(confluent_python());
    cmd.arg(script)
        .arg(command)
        .args(["--brokers", &broker(), "--registry", &registry()])
        .args(["--timeout", &CLIENT_TIMEOUT_S.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = command.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("start the Confluent client");
        let mut input = child.stdin.take().expect("stdin");
        // A thread of its own, so a client that stops reading early cannot block us.
        let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
        let output = child.wait_with_output().expect("the Confluent client ends");
        writer.join().expect("writer").expect("stdin written");
        assert!(
            output.status.success(),
            "confluent_client.py {command} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    })
    .await
    .expect("join")
}

/// The id the registry holds for the latest version of `subject`.
async fn registered_id(subject: &str) -> u64 {
    let url = format!("{}/subjects/{subject}/versions/latest", registry());
    let answer: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .expect("a JSON answer");
    answer["id"].as_u64().expect("an id")
}

/// The current IncidentEvent schema as a file, for the Python serializer.
fn schema_file(dir: &Path) -> PathBuf {
    let file = dir.join("incident_event.avsc");
    std::fs::write(&file, IncidentEvent::schema_set().current().json).expect("schema file");
    file
}

/// Thirty days of simulated incidents, one of them a casualty, in report order.
fn stream() -> Vec<IncidentEvent> {
    Simulation::new(SimConfig {
        seed: 23,
        start_ms: 1_736_121_600_000,
        days: 30,
        scale: 0.1,
        scenarios: vec![
            "casualty:IRN-TUR-VAN@day=20,dead=3,missing=1"
                .parse()
                .expect("scenario"),
        ],
        // No deaths in ordinary traffic, so "any death" fires only on the casualty.
        background_casualties: false,
    })
    .events()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_from_the_confluent_client_fire_an_alert_it_reads_back() {
    let started = Instant::now();
    let mut config = config(&broker(), WireFormat::Confluent);
    config.rules.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/pack");
    config.rules.group = unique("interop-rules");
    config.rules.instance = Some("interop".into());
    config.rules.commit_interval = Duration::from_millis(50);
    config.telemetry.listen = "127.0.0.1:0".parse().expect("addr");
    let kafka = Kafka::connect(&config).expect("connect");
    kafka.create_topics(&config.topics).await.expect("topics");
    let incidents = config.topics.incidents.name.clone();
    let alerts_topic = config.topics.alerts.name.clone();
    let scratch = std::env::temp_dir().join(unique("relec-interop"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");

    // 1. The Confluent client publishes the stream, registering the schema itself.
    let events = stream();
    let casualty = events
        .iter()
        .find(|e| e.dead + e.missing > 0)
        .expect("the casualty scenario's incident")
        .clone();
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("JSON"))
        .collect();
    let schema = schema_file(&scratch);
    let produced: serde_json::Value = serde_json::from_str(
        &client(
            "produce",
            &[
                "--topic",
                &incidents,
                "--schema",
                schema.to_str().expect("UTF-8 path"),
            ],
            lines.join("\n"),
        )
        .await,
    )
    .expect("the producer's summary");
    assert_eq!(produced["produced"], events.len(), "{produced}");
    assert_eq!(
        produced["schema_id"].as_u64(),
        Some(registered_id(&format!("{incidents}-value")).await),
        "the client framed its records with the id the registry gave its schema"
    );
    assert_eq!(records_on(&kafka, &incidents).await, events.len() as i64);

    // 2. The rules stage decodes them through the registry and raises the alert.
    let metrics = prometheus::Registry::new();
    let stage = RulesStage::build(&config, &kafka, &metrics)
        .await
        .expect("stage builds");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stage.run(shutdown.clone()));
    let deadline = Instant::now() + RECEIVE_DEADLINE;
    let alerts = loop {
        let alerts: Vec<Alert> = read_committed(&kafka, &alerts_topic).await;
        if alerts.iter().any(|a| a.rule_id == "death_or_missing") {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "no death_or_missing alert within {RECEIVE_DEADLINE:?}; alerts so far: {:?}",
            alerts.iter().map(|a| &a.rule_id).collect::<Vec<_>>()
        );
        assert!(!running.is_finished(), "the rules stage stopped early");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let death = alerts
        .iter()
        .find(|a| a.rule_id == "death_or_missing")
        .expect("found above");
    assert_eq!(death.status, AlertStatus::Firing);
    assert_eq!(death.value, f64::from(casualty.dead + casualty.missing));
    assert_eq!(death.labels.get("route"), Some(&casualty.route));
    assert_eq!(
        death.annotations.get("incident"),
        Some(&casualty.event_id),
        "the alert names the incident the Confluent client sent"
    );
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.gather())
        .expect("metrics text");
    assert_eq!(
        metric(&text, "relec_rules_events_total", &[("outcome", "skipped")]),
        Some(0.0),
        "every record of the client decoded and validated"
    );
    shutdown.cancel();
    running
        .await
        .expect("joins")
        .expect("the stage stops cleanly");

    // 3. The other way: the client reads relec's alerts with its Avro deserializer, and
    //    sees what relec itself reads, in relec's framing with the registry's id.
    let alerts_id = registered_id(&format!("{alerts_topic}-value")).await;
    let relec_view: Vec<Alert> = read_committed(&kafka, &alerts_topic).await;
    let consumed = client(
        "consume",
        &["--topic", &alerts_topic, "--group", &unique("interop-read")],
        String::new(),
    )
    .await;
    let mut client_view: Vec<serde_json::Value> = Vec::new();
    for line in consumed.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(record["magic"], 0, "{record}");
        assert_eq!(record["schema_id"].as_u64(), Some(alerts_id), "{record}");
        assert_eq!(record["key"], record["value"]["fingerprint"], "{record}");
        client_view.push(record["value"].clone());
    }
    let by_fingerprint = |v: &mut Vec<serde_json::Value>| {
        v.sort_by_key(|a| (a["fingerprint"].to_string(), a["generated_at"].to_string()))
    };
    let mut want: Vec<serde_json::Value> = relec_view
        .iter()
        .map(|a| serde_json::to_value(a).expect("JSON"))
        .collect();
    by_fingerprint(&mut want);
    by_fingerprint(&mut client_view);
    assert_eq!(
        client_view, want,
        "the Confluent client decodes relec's alerts as relec does"
    );
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "registry interop: {} incidents in, {} alert transitions out, in {:.1} s",
        events.len(),
        relec_view.len(),
        started.elapsed().as_secs_f64()
    );
}
