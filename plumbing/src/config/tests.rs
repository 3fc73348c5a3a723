use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Problems> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_toml(text, env).map_err(|e| match e {
        Error::Config(p) => p,
        other => panic!("unexpected {other}"),
    })
}

fn paths(p: &Problems) -> Vec<&str> {
    p.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn empty_file_is_the_embedded_default() {
    let config = load("", &[]).expect("defaults are valid");
    assert!(config.kafka.is_embedded());
    assert_eq!(config.topics.incidents.name, "relec.incidents");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
        [kafka]
        brokers = "broker-1"
        security_protocol = "sasl_ssl"

        [topics.alerts]
        name = "relec.alerts"
        partitions = 0

        [shutdown]
        drain_deadline = "soon"
    "#;
    let problems = load(text, &[]).expect_err("invalid");
    assert_eq!(
        paths(&problems),
        [
            "shutdown.drain_deadline",
            "kafka.brokers",
            "kafka.sasl",
            "topics.alerts.partitions"
        ],
        "{problems}"
    );
}

#[test]
fn unknown_keys_and_sections_are_named() {
    let problems = load("[kafka]\nbrokerz = \"x:1\"\n[kafkaa]\n", &[]).expect_err("invalid");
    let text = problems.to_string();
    assert!(
        text.contains("brokerz") && text.contains("kafkaa"),
        "{text}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let config = load(
        "[kafka]\nbrokers = \"a:1\"\n",
        &[
            ("RELEC_KAFKA__BROKERS", "b:2,c:3"),
            ("RELEC_TOPICS__INCIDENTS__PARTITIONS", "12"),
            ("HOME", "/root"),
            ("RELEC_CONFIG", "/etc/relec.toml"),
        ],
    )
    .expect("valid");
    assert_eq!(config.kafka.brokers, "b:2,c:3");
    assert_eq!(config.topics.incidents.partitions, 12);
    assert_eq!(config.topics.incidents.name, "relec.incidents");
}

#[test]
fn syntax_errors_give_the_line() {
    let problems = load("[kafka]\nbrokers = \n", &[]).expect_err("invalid");
    assert_eq!(paths(&problems), ["line 2"]);
}

#[test]
fn confluent_needs_a_registry() {
    let problems = load("[kafka]\nwire_format = \"confluent\"\n", &[]).expect_err("invalid");
    assert_eq!(paths(&problems), ["kafka.wire_format"]);
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../../deploy/relec.example.toml");
    load(text, &[]).unwrap_or_else(|p| panic!("example config:\n{p}"));
}

#[test]
fn agency_ids_name_their_native_topics() {
    let agency = |id: &str| {
        format!(
            "[[ingest.agencies]]\nid = \"{id}\"\ncountries = [\"IRN\"]\nkey_sha256 = \"{}\"\n",
            "ab".repeat(32)
        )
    };
    let problems = load(&agency("irn police/east"), &[]).expect_err("invalid");
    assert_eq!(paths(&problems), ["ingest.agencies[0].id"]);
    assert!(problems.to_string().contains("native topic"), "{problems}");

    let config = load(&agency("irn-police.east"), &[]).expect("valid");
    let native = config.topics.native_for("irn-police.east");
    assert_eq!(native.name, "relec.native.irn-police.east");
    assert_eq!(
        config.topics.native_agency(&native.name),
        Some("irn-police.east")
    );
    assert_eq!(config.topics.native_agency("relec.native"), None);
    assert_eq!(config.topics.native_agency("relec.nativex.a"), None);
    let pattern = regex::Regex::new(&config.topics.native_pattern()[1..]).expect("regex");
    assert!(pattern.is_match(&native.name) && !pattern.is_match("relec.nativeXa"));
}

#[test]
fn the_commit_share_is_a_fraction_above_zero() {
    for bad in ["0.0", "1.5", "-0.1", "nan"] {
        let problems =
            load(&format!("[rules]\nmax_commit_share = {bad}\n"), &[]).expect_err("invalid");
        assert_eq!(paths(&problems), ["rules.max_commit_share"], "{bad}");
    }
    let config = load("[rules]\nmax_commit_share = 1\n", &[]).expect("1 turns it off");
    assert_eq!(config.rules.max_commit_share, 1.0);
}
