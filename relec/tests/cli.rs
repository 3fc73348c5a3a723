//! The `relec` binary as an operator uses it: config checks, and topic creation against the
//! real broker of the test bed.

use std::process::{Command, Output};

fn relec(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relec"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RELEC_CONFIG")
        .output()
        .expect("run relec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &tempfile::TempDir, toml: &str) -> String {
    let file = dir.path().join("relec.toml");
    std::fs::write(&file, toml).expect("write");
    file.to_str().expect("utf-8").to_owned()
}

#[test]
fn config_check_reports_three_mistakes_with_their_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(
        &dir,
        r#"
[kafka]
brokers = "kafka-1"                # no port
security_protocol = "sasl_ssl"     # but no [kafka.sasl]

[topics.alerts]
partitions = 0
"#,
    );
    let out = relec(&["config", "check", &file], &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("3 problems"), "{stderr}");
    for path in ["kafka.brokers:", "kafka.sasl:", "topics.alerts.partitions:"] {
        assert!(stderr.contains(path), "{path} missing from:\n{stderr}");
    }
}

#[test]
fn the_example_config_checks_clean() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/relec.example.toml");
    let out = relec(&["config", "check", example], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": ok"));
}

#[test]
fn config_check_never_prints_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(
        &dir,
        "[kafka]\nbrokers = \"k:9093\"\nsecurity_protocol = \"sasl_ssl\"\n\
         [kafka.sasl]\nusername = \"relec\"\npassword = \"hunter2-sasl\"\n",
    );
    let out = relec(&["config", "check", "--print", &file], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(
        all.contains("relec") && !all.contains("hunter2-sasl"),
        "{all}"
    );
}

#[test]
fn topics_create_against_the_real_broker_is_idempotent() {
    let brokers = std::env::var("RELEC_TEST_BROKERS")
        .expect("RELEC_TEST_BROKERS is not set: run the suite with tests/run.sh");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let names = [
        format!("cli-{run}.incidents"),
        format!("cli-{run}.rejected"),
        format!("cli-{run}.alerts"),
    ];
    let env = [
        ("RELEC_TOPICS__INCIDENTS__NAME", names[0].as_str()),
        ("RELEC_TOPICS__INCIDENTS_REJECTED__NAME", names[1].as_str()),
        ("RELEC_TOPICS__ALERTS__NAME", names[2].as_str()),
        ("RUST_LOG", "warn"),
    ];
    let topics = |verb: &str| {
        let out = relec(&["--brokers", &brokers, "topics", verb], &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    let first = topics("create");
    for name in &names {
        assert!(first.contains(&format!("{name}: created")), "{first}");
    }
    let second = topics("create");
    for name in &names {
        assert!(
            second.contains(&format!("{name}: exists, as configured")),
            "{second}"
        );
    }

    let table = topics("describe");
    let incidents = table
        .lines()
        .find(|l| l.starts_with(&names[0]))
        .unwrap_or_else(|| panic!("{table}"));
    // The defaults: 6 partitions, one replica, 400 days, delete policy.
    let cols: Vec<&str> = incidents.split_whitespace().collect();
    assert_eq!(cols[1..3], ["6", "1"], "{incidents}");
    assert!(
        incidents.contains("retention.ms=34560000000"),
        "{incidents}"
    );
    assert!(incidents.contains("cleanup.policy=delete"), "{incidents}");
}

#[test]
fn rules_check_passes_the_pack_and_names_each_problem() {
    let pack = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/pack");
    let out = relec(&["rules", "check", pack], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("route_spike"));

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.rhai"),
        "fn condition(g) { true }\n#{ id: \"Bad Id\", title: \"t\", severity: \"urgent\", group_by: [\"agency\"] }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("syntax.rhai"),
        "fn condition(g) { let x = ; }\n#{}\n",
    )
    .expect("write");
    let out = relec(
        &["rules", "check", dir.path().to_str().expect("utf-8")],
        &[],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    // Each problem at the line and column of its key (see relec/tests/rules.rs for more).
    for part in [
        "bad.rhai:2:4: id:",
        "bad.rhai:2:30: severity:",
        "bad.rhai:2:61: group_by[0]:",
        "syntax.rhai:1:",
    ] {
        assert!(stderr.contains(part), "{part} missing from:\n{stderr}");
    }
}
