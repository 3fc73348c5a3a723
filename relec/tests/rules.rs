//! The analysts' tools as an analyst runs them: `relec rules check` on a directory with one
//! rule per kind of mistake, `relec rules test` on the pack's fixtures and on a failing
//! case, and `relec rules backtest` over a simulated file and over a topic of the real
//! broker written in both wire formats.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use relec_ingest::simulate::{SimConfig, Simulation};
use relec_plumbing::kafka::{Kafka, RecordProducer};
use relec_schemas::{Encoder, IncidentEvent, WireFormat};
use relec_tests::{broker, config};

fn relec(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relec"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RELEC_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run relec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/pack")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const META: &str = r#"#{ id: "ID", title: "T", severity: "low", group_by: ["route"] }"#;

fn rule(id: &str, condition: &str) -> String {
    format!(
        "// {id}\nfn condition(g) {{\n    {condition}\n}}\n{}\n",
        META.replace("ID", id)
    )
}

#[test]
fn rules_check_names_each_kind_of_mistake_with_its_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        ("clean.rhai", rule("clean", r#"g.sum("persons", "7d") > 10"#)),
        (
            "unknown_function.rhai",
            rule(
                "unknown_function",
                r#"g.sum("persons", "7d") > 3.0 * g.baseline_maen("persons", "7d", 8)"#,
            ),
        ),
        (
            "missing_metadata.rhai",
            "fn condition(g) { true }\n#{\n    id: \"missing_metadata\",\n    severity: \"low\",\n}\n"
                .to_owned(),
        ),
        (
            "bad_window.rhai",
            rule("bad_window", r#"g.count("7 days") > 0"#),
        ),
        (
            "long_window.rhai",
            rule(
                "long_window",
                r#"g.sum("persons", "7d") > g.baseline_mean("persons", "7d", 60)"#,
            ),
        ),
    ];
    for (name, source) in &files {
        std::fs::write(dir.path().join(name), source).expect("write");
    }
    let out = relec(&["rules", "check", path(dir.path())], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("clean.rhai: ok  clean"), "{stdout}");
    assert!(stdout.contains("1 rules ok, 4 with problems"), "{stdout}");
    let at = |file: &str| dir.path().join(file).display().to_string();
    for expected in [
        format!(
            "{}:3:38: unknown function `.baseline_maen(..)`: neither a rule function, a rhai \
             function nor a function of this file; did you mean `baseline_mean`?",
            at("unknown_function.rhai")
        ),
        format!(
            "{}:2:1: title: missing (required)",
            at("missing_metadata.rhai")
        ),
        format!(
            "{}:3:13: g.count: \"7 days\": the unit must be h, d or w",
            at("bad_window.rhai")
        ),
        format!(
            "{}:3:57: g.baseline_mean reads 427 days back, but the stage keeps 400 days of \
             state (rules.horizon)",
            at("long_window.rhai")
        ),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "missing: {expected}\nin:\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 4, "{stderr}");

    // The horizon is the configured one: with 500 days kept, 427 days back is fine.
    let out = relec(
        &["rules", "check", path(dir.path())],
        &[("RELEC_RULES__HORIZON", "500days")],
    );
    assert!(
        !text(&out.stderr).contains("long_window"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rules_test_passes_the_pack_and_shows_a_diff_for_a_failing_case() {
    let out = relec(&["rules", "test", path(&pack())], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    for file in [
        "route_spike",
        "route_shift",
        "new_crossing_point",
        "death_or_missing",
        "reporting_silence",
    ] {
        assert!(
            stdout.contains(&format!("tests/{file}.toml")),
            "{file}:\n{stdout}"
        );
    }

    // The spike fixture's rule with a case expecting the alert a day late, and a fixture
    // with a misspelt field.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        pack().join("route_spike.rhai"),
        dir.path().join("route_spike.rhai"),
    )
    .expect("copy");
    let tests = dir.path().join("tests");
    std::fs::create_dir(&tests).expect("mkdir");
    std::fs::write(
        tests.join("route_spike.toml"),
        r#"
[[case]]
name = "fires on the day of the spike"
daily = { from = 2026-01-05, to = 2026-03-15, route = "R", persons = 10 }
events = [{ day = 2026-03-09, route = "R", persons = 50, count = 4 }]
expect = [{ status = "firing", day = 2026-03-10, labels = { route = "R" } }]
"#,
    )
    .expect("write");
    std::fs::write(
        tests.join("typo.toml"),
        "rules = [\"route_spike\"]\n[[case]]\nname = \"x\"\nevents = [{ dya = 2026-03-09 }]\nexpect = []\n",
    )
    .expect("write");
    let out = relec(&["rules", "test", path(dir.path())], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("  FAIL  fires on the day of the spike"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ firing    route_spike  2026-03-09  route=R  value=270  threshold=210"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- firing    route_spike  2026-03-10  route=R"),
        "{stdout}"
    );
    assert!(
        stdout.contains("typo.toml: TOML parse error at line 4")
            && stdout.contains("unknown field `dya`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 cases in 2 files: 0 passed, 1 failed, 1 fixture files unusable"),
        "{stdout}"
    );
}

/// 80 days from 2025-09-01 at a third of the usual volume, with a fourfold spike on
/// AFG-IRN-NIMROZ from day 65 (2025-11-05).
fn simulation() -> SimConfig {
    SimConfig {
        seed: 7,
        start_ms: 1_756_684_800_000,
        days: 80,
        scale: 0.3,
        scenarios: vec![
            "spike:AFG-IRN-NIMROZ@day=65,days=7,factor=4"
                .parse()
                .expect("scenario"),
        ],
        background_casualties: false,
    }
}

fn spike_rows(table: &str) -> Vec<&str> {
    table
        .lines()
        .filter(|l| l.contains("route_spike") && l.contains("route=AFG-IRN-NIMROZ"))
        .collect()
}

#[test]
fn rules_backtest_replays_a_simulated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("history.jsonl");
    let out = relec(
        &[
            "simulate",
            "--seed",
            "7",
            "--days",
            "80",
            "--scale",
            "0.3",
            "--no-background-casualties",
            "--scenario",
            "spike:AFG-IRN-NIMROZ@day=65,days=7,factor=4",
            "--out",
            path(&file),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = Simulation::new(simulation()).events().count();

    let rules = pack();
    let backtest = |extra: &[&str]| {
        let mut args = vec![
            "rules",
            "backtest",
            "--rules",
            path(&rules),
            "--input",
            path(&file),
        ];
        args.extend_from_slice(extra);
        let out = relec(&args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };

    let (table, _) = backtest(&[]);
    let spikes = spike_rows(&table);
    assert_eq!(spikes.len(), 2, "{table}");
    assert!(
        spikes[0].contains("firing") && spikes[1].contains("resolved"),
        "{table}"
    );
    let fired = &spikes[0][..10];
    assert!(
        ("2025-11-05".."2025-11-13").contains(&fired),
        "fired on {fired}"
    );
    // Evaluations and time per rule, and the rate. The stream has no casualties, and
    // `death_or_missing` takes only reports with some (`when_any`): its row says 0.
    for (rule, ran) in [
        ("route_spike", true),
        ("route_shift", true),
        ("death_or_missing", false),
    ] {
        let row = table
            .lines()
            .find(|l| l.starts_with(rule) && l.contains(" µs"))
            .unwrap_or_else(|| panic!("no cost row for {rule}:\n{table}"));
        let evaluations: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(evaluations > 0, ran, "{row}");
    }
    assert!(
        table.contains(&format!(
            "replayed {events} events (0 duplicates, 0 late, 0 invalid"
        )),
        "{table}"
    );
    assert!(table.contains(" events/s; "), "{table}");

    // CSV on standard output, the costs on standard error.
    let (csv, costs) = backtest(&["--format", "csv"]);
    assert!(
        csv.starts_with("day,status,rule,severity,value,threshold,labels,fingerprint,summary\n"),
        "{csv}"
    );
    let row = csv
        .lines()
        .find(|l| l.contains(",firing,route_spike,high,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        row.starts_with(fired) && row.contains(",route=AFG-IRN-NIMROZ,"),
        "{row}"
    );
    assert!(
        costs.contains("route_spike") && costs.contains("replayed"),
        "{costs}"
    );

    // A window after the spike shows none of it; one that ends before it sees none.
    let (after, _) = backtest(&["--from", "2025-11-20"]);
    assert!(spike_rows(&after).is_empty(), "{after}");
    assert!(after.contains("before --from not shown"), "{after}");
    let (before, _) = backtest(&["--from", "2025-10-01", "--to", "2025-11-01"]);
    assert!(spike_rows(&before).is_empty(), "{before}");
    assert!(before.contains(" after --to)"), "{before}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_backtest_reads_a_topic_written_in_both_wire_formats() {
    let base = config(&broker(), WireFormat::Confluent);
    let topic = base.topics.incidents.name.clone();
    let kafka = Kafka::connect(&base).expect("connect");
    kafka.create_topics(&base.topics).await.expect("topics");
    let confluent = RecordProducer::new(
        kafka.producer("test").expect("producer"),
        &topic,
        kafka
            .encoder::<IncidentEvent>(&topic, WireFormat::Confluent)
            .await
            .expect("encoder"),
    );
    let single = RecordProducer::new(
        kafka.producer("test").expect("producer"),
        &topic,
        Encoder::single_object(),
    );
    let events: Vec<IncidentEvent> = Simulation::new(simulation()).events().collect();
    // Keyed by route, so each route's reports stay in order, as ingest writes them.
    for (i, chunk) in events.chunks(500).enumerate() {
        let producer = if i % 2 == 0 { &confluent } else { &single };
        let results = producer
            .send_all(chunk.iter().map(|e| (e.route.as_str(), e)))
            .await;
        assert!(results.iter().all(Result::is_ok), "delivery failed");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("relec.toml");
    std::fs::write(
        &config_file,
        format!(
            "[kafka]\nbrokers = {:?}\n[schema_registry]\nurl = {:?}\n",
            base.kafka.brokers,
            base.schema_registry.as_ref().expect("registry").url,
        ),
    )
    .expect("config");
    let rules = pack();
    let out = relec(
        &[
            "--config",
            path(&config_file),
            "rules",
            "backtest",
            "--rules",
            path(&rules),
            "--topic",
            &topic,
        ],
        &[],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("replayed {} events (0 duplicates", events.len())),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("0 invalid (skipped)"), "{stdout}");
    let spikes = spike_rows(&stdout);
    assert_eq!(spikes.len(), 2, "{stdout}");
    assert!(spikes[0].contains("firing"), "{stdout}");
}
