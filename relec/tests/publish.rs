//! `relec publish` against the real broker: good lines land, bad ones are reported by line
//! and field, the exit code says so, and a re-run publishes nothing twice.

use std::process::Command;

use relec_plumbing::kafka::Kafka;
use relec_schemas::{WireFormat, sample};
use relec_tests::{broker, config, records_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_file_twice_lands_each_event_once() {
    let base = config(&broker(), WireFormat::SingleObject);
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, hash) = relec_ingest_key();
    let config_file = dir.path().join("relec.toml");
    std::fs::write(
        &config_file,
        format!(
            "[kafka]\nbrokers = {:?}\n\
             [topics.incidents]\nname = {:?}\npartitions = 3\n\
             [topics.incidents_rejected]\nname = {:?}\n\
             [topics.alerts]\nname = {:?}\n\
             [[ingest.agencies]]\nid = \"PAK-FIA\"\ncountries = [\"PAK\"]\nkey_sha256 = {hash:?}\n",
            base.kafka.brokers,
            base.topics.incidents.name,
            base.topics.incidents_rejected.name,
            base.topics.alerts.name,
        ),
    )
    .expect("config");

    let kafka = Kafka::connect(&base).expect("connect");
    kafka.create_topics(&base.topics).await.expect("topics");
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let mut lines: Vec<String> = (0..20)
        .map(|i| {
            let mut e = sample::incident(seed, i);
            e.reporting_country = "PAK".into();
            serde_json::to_string(&e).expect("json")
        })
        .collect();
    let mut negative = sample::incident(seed, 100);
    negative.reporting_country = "PAK".into();
    negative.victims = -1;
    lines.insert(5, serde_json::to_string(&negative).expect("json")); // line 6
    lines.insert(10, "{\"event_id\": 42}".into()); // line 11
    let mut foreign = sample::incident(seed, 101);
    foreign.reporting_country = "TUR".into();
    lines.push(serde_json::to_string(&foreign).expect("json")); // line 23
    let file = dir.path().join("incidents.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("file");

    let publish = || {
        Command::new(env!("CARGO_BIN_EXE_relec"))
            .args(["--config", config_file.to_str().expect("utf-8"), "publish"])
            .arg(&file)
            .env("RELEC_AGENCY_KEY", &key)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run relec publish")
    };
    let first = publish();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
    );
    assert_eq!(first.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("23 events: 20 published, 0 already published, 3 rejected"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("incidents.jsonl:6: /victims: -1 is negative"),
        "{stderr}"
    );
    assert!(
        stderr.contains("incidents.jsonl:11: /event_id:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "incidents.jsonl:23: /reporting_country: agency PAK-FIA may not report for TUR"
        ),
        "{stderr}"
    );

    let second = publish();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stdout.contains("23 events: 0 published, 20 already published, 3 rejected"),
        "{stdout}"
    );

    assert_eq!(records_on(&kafka, &base.topics.incidents.name).await, 20);
}

fn relec_ingest_key() -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relec"))
        .args([
            "ingest",
            "keygen",
            "--agency",
            "PAK-FIA",
            "--country",
            "PAK",
        ])
        .output()
        .expect("keygen");
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hash = stderr
        .lines()
        .find_map(|l| l.strip_prefix("key_sha256 = "))
        .expect("hash line")
        .trim_matches('"')
        .to_owned();
    (key, hash)
}

/// The simulator's stream passes ingest's validation whole: what the demo, the rule
/// fixtures and the benchmarks feed the pipeline is what an agency could publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_stream_publishes_without_a_rejection() {
    let base = config(&broker(), WireFormat::SingleObject);
    let kafka = Kafka::connect(&base).expect("connect");
    kafka.create_topics(&base.topics).await.expect("topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, hash) = relec_ingest_key();
    let config_file = dir.path().join("relec.toml");
    std::fs::write(
        &config_file,
        format!(
            "[kafka]\nbrokers = {:?}\n[topics.incidents]\nname = {:?}\n\
             [[ingest.agencies]]\nid = \"ALL\"\ncountries = [\"AFG\", \"BGD\", \"IRN\", \"IRQ\", \"PAK\", \"TUR\"]\n\
             key_sha256 = {hash:?}\n",
            base.kafka.brokers, base.topics.incidents.name,
        ),
    )
    .expect("config");
    let file = dir.path().join("simulated.csv");
    let relec = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relec"))
            .args(["--config", config_file.to_str().expect("utf-8")])
            .args(args)
            .env("RELEC_AGENCY_KEY", &key)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run relec")
    };
    let out = relec(&[
        "simulate",
        "--days",
        "10",
        "--scenario",
        "casualty:IRN-TUR-VAN@day=3,dead=12,missing=5",
        "--out",
        file.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = relec(&["publish", file.to_str().expect("utf-8")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published: i64 = stdout
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(published > 5_000, "{stdout}");
    assert!(
        stdout.ends_with("0 already published, 0 rejected\n"),
        "{stdout}"
    );
    assert_eq!(
        records_on(&kafka, &base.topics.incidents.name).await,
        published
    );
}
