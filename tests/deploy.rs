//! `deploy/` against the code it deploys: the Grafana dashboard and the Prometheus alert
//! rules name only metrics the stages export, the README's metrics table lists every one
//! of them, the configs and subscriptions of the compose stack, the image and Kubernetes
//! load as the stages would load them, and the Strimzi `KafkaTopic`s are the topics the
//! Kubernetes config declares. (Syntax and schemas: `deploy/check.sh`.)

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use prometheus::{Gauge, Registry};
use relec_plumbing::{Config, config::TopicsConfig, telemetry::Telemetry};

/// The Strimzi cluster and namespace the KafkaTopics are for (deploy/k8s/relec.toml).
const STRIMZI_CLUSTER: &str = "relec-kafka";
const STRIMZI_NAMESPACE: &str = "kafka";
/// Set to rewrite deploy/k8s/kafka-topics.yaml from deploy/k8s/relec.toml.
const BLESS: &str = "RELEC_BLESS";
/// The compose stack's demo agency key, as the README prints it.
const COMPOSE_DEMO_KEY: &str = "demo-compose-key-not-secret";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A registry holding every metric the stages register, registered by the same functions
/// the stages call.
fn stage_registry() -> Registry {
    let registry = Telemetry::new().registry;
    relec_ingest::events::IngestMetrics::register(&registry).expect("ingest metrics");
    relec_ingest::screen::ScreenMetrics::register(&registry).expect("screen metrics");
    relec_rules::events::RulesMetrics::register(&registry).expect("rules metrics");
    relec_rules::reload::ReloadMetrics::register(&registry).expect("reload metrics");
    relec_notifier::events::NotifierMetrics::register(&registry).expect("notifier metrics");
    registry
}

/// Whether `registry` holds a metric family called `name`: a second collector of that name
/// is refused. (Gathering alone would miss labelled families no label value was set on.)
fn is_registered(registry: &Registry, name: &str) -> bool {
    let probe = Gauge::new(name, "probe").expect("a valid metric name");
    match registry.register(Box::new(probe.clone())) {
        Ok(()) => {
            registry
                .unregister(Box::new(probe))
                .expect("just registered");
            false
        }
        Err(_) => true,
    }
}

/// Every `relec_...` word in `text`.
fn relec_names(text: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("relec_") {
        let before = rest[..at].chars().next_back();
        let word: String = rest[at..].chars().take_while(|&c| is_word(c)).collect();
        if !before.is_some_and(is_word) {
            names.insert(word.clone());
        }
        rest = &rest[at + word.len()..];
    }
    names
}

/// The name of the family a sample name belongs to: histograms expose `_bucket`, `_sum`
/// and `_count` series under their family's name.
fn family<'a>(registry: &Registry, sample: &'a str) -> Option<&'a str> {
    if is_registered(registry, sample) {
        return Some(sample);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .find(|base| is_registered(registry, base))
}

/// Every metric family the stages export. Candidates are the gathered families and every
/// `relec_...` word in the stages' sources; the registry decides.
fn exported(registry: &Registry) -> BTreeSet<String> {
    let mut candidates: BTreeSet<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    for dir in ["plumbing/src", "ingest/src", "rules/src", "notifier/src"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).expect("source file");
            candidates.extend(relec_names(&text));
        }
    }
    candidates
        .into_iter()
        .filter(|name| is_registered(registry, name))
        .collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Names in `text` that are no family the stages export (nor one of its series).
fn unknown_metrics(registry: &Registry, text: &str) -> Vec<String> {
    relec_names(text)
        .into_iter()
        .filter(|name| family(registry, name).is_none())
        .collect()
}

/// Every `expr` string anywhere in a dashboard.
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_is_grafana_json_over_exported_metrics_only() {
    let registry = stage_registry();
    let text = read("deploy/grafana/dashboards/relec-ews.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "relec-ews");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} twice");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "panel {id}: gridPos.{key}");
        }
        if panel["type"] != "row" {
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "panel {id} has no query");
        }
    }
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() > 20, "{} queries", all.len());
    let mut unknown = Vec::new();
    for expr in &all {
        unknown.extend(unknown_metrics(&registry, expr));
    }
    assert!(unknown.is_empty(), "not exported: {unknown:?}");

    // Every stage's metrics appear on the dashboard.
    let shown: BTreeSet<String> = all.iter().flat_map(|e| relec_names(e)).collect();
    for prefix in ["relec_ingest_", "relec_rules_", "relec_notifier_"] {
        assert!(shown.iter().any(|n| n.starts_with(prefix)), "{prefix}*");
    }
}

#[test]
fn the_alert_rules_use_exported_metrics_only() {
    let registry = stage_registry();
    let text = read("deploy/prometheus/alerts.yml");
    let used = relec_names(&text);
    assert!(used.len() >= 8, "{used:?}");
    let unknown = unknown_metrics(&registry, &text);
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
    for topic in ["consumer_lag", "dlq", "rule_errors", "notifications_total"] {
        assert!(
            used.iter().any(|n| n.contains(topic)),
            "no alert on {topic}"
        );
    }
}

#[test]
fn the_readme_lists_every_exported_metric() {
    let registry = stage_registry();
    let readme = read("README.md");
    // The metrics table: rows that start with a metric name.
    let table: String = readme
        .lines()
        .filter(|l| l.starts_with("| `relec_"))
        .map(|l| l.split('|').nth(1).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let listed = relec_names(&table);
    let exported = exported(&registry);
    assert!(exported.len() > 30, "{exported:?}");
    let missing: Vec<_> = exported.difference(&listed).collect();
    assert!(missing.is_empty(), "README metrics table lacks {missing:?}");
    let stale: Vec<_> = listed
        .iter()
        .filter(|n| !is_registered(&registry, n))
        .collect();
    assert!(
        stale.is_empty(),
        "README lists metrics nobody exports: {stale:?}"
    );
}

/// Loads a deployment's config as its stages would, with `env` as their environment.
fn load_config(path: &str, env: &[(&str, &str)]) -> Config {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_toml(&read(path), env).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Kubernetes config with what the pods get from Secrets: the passwords are set (here
/// as plain values instead of the `{ env = ... }` the pods resolve) and the CA file is
/// mounted (here: any file that exists).
fn k8s_config() -> Config {
    let ca = root().join("deploy/k8s/relec.toml");
    let ca = format!("{:?}", ca.display().to_string());
    load_config(
        "deploy/k8s/relec.toml",
        &[
            ("RELEC_KAFKA__SASL__PASSWORD", "\"placeholder\""),
            ("RELEC_NOTIFIER__SMTP__PASSWORD", "\"placeholder\""),
            ("RELEC_KAFKA__TLS__CA_FILE", &ca),
        ],
    )
}

#[test]
fn the_deployment_configs_and_subscriptions_load() {
    let compose = load_config("deploy/compose/relec.toml", &[]);
    assert_eq!(compose.kafka.brokers, "kafka:9092");
    let demo = &compose.ingest.agencies[0];
    assert_eq!(
        demo.key_sha256,
        relec_ingest::auth::hash_key(COMPOSE_DEMO_KEY),
        "the README's demo key"
    );
    assert!(
        read("README.md").contains(COMPOSE_DEMO_KEY),
        "the README gives the demo key"
    );
    let image = load_config("deploy/image/relec.toml", &[]);
    let k8s = k8s_config();
    for (name, config) in [("compose", &compose), ("image", &image), ("k8s", &k8s)] {
        assert_eq!(
            config.telemetry.listen.port(),
            9898,
            "{name}: the healthcheck, probes and scrape configs use 9898"
        );
        assert!(
            config.telemetry.listen.ip().is_unspecified(),
            "{name}: metrics must be reachable from outside the container"
        );
    }
    for path in [
        "deploy/compose/subscriptions.toml",
        "deploy/k8s/subscriptions.toml",
    ] {
        // The notifier pod gets the webhook secret from a Secret; here it is a literal.
        let text = read(path).replace(
            r#"{ env = "RELEC_WEBHOOK_SECRET_TUR" }"#,
            r#""placeholder-webhook-secret-of-32-bytes-or-more""#,
        );
        relec_notifier::Subscriptions::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// Strimzi `KafkaTopic` resources for `topics`, as deploy/k8s/kafka-topics.yaml holds them.
fn kafka_topics_yaml(topics: &TopicsConfig) -> String {
    let mut out = String::from(
        "# Strimzi KafkaTopic resources for every topic relec uses, as deploy/k8s/relec.toml\n\
         # declares them (names, partitions, replicas, retention, compaction). Generated:\n\
         # tests/deploy.rs fails when this file and relec.toml disagree, and\n\
         # `RELEC_BLESS=1 cargo test -p relec-tests --test deploy` rewrites it.\n",
    );
    for (key, spec) in topics.all() {
        let configs: BTreeMap<String, String> = spec.broker_configs();
        out.push_str(&format!(
            "---\n\
             apiVersion: kafka.strimzi.io/v1beta2\n\
             kind: KafkaTopic\n\
             metadata:\n\
             \x20 name: {resource}\n\
             \x20 namespace: {STRIMZI_NAMESPACE}\n\
             \x20 labels:\n\
             \x20   strimzi.io/cluster: {STRIMZI_CLUSTER}\n\
             \x20   app.kubernetes.io/part-of: relec-ews\n\
             \x20 annotations:\n\
             \x20   relec-ews/config-key: topics.{key}\n\
             spec:\n\
             \x20 topicName: {name}\n\
             \x20 partitions: {partitions}\n\
             \x20 replicas: {replicas}\n\
             \x20 config:\n",
            resource = spec.name.replace(['.', '_'], "-"),
            name = spec.name,
            partitions = spec.partitions,
            replicas = spec.replication_factor,
        ));
        for (k, v) in configs {
            out.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    out
}

#[test]
fn the_kafka_topics_are_the_configured_topics() {
    let config = k8s_config();
    let expected = kafka_topics_yaml(&config.topics);
    let path = root().join("deploy/k8s/kafka-topics.yaml");
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, &expected).expect("write kafka-topics.yaml");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "deploy/k8s/kafka-topics.yaml differs from deploy/k8s/relec.toml's topics; \
         rewrite it with {BLESS}=1. Expected:\n{expected}"
    );
    // Every topic relec uses is there, with the defaults' compaction.
    let defaults = TopicsConfig::default();
    for ((key, spec), (_, default)) in config.topics.all().iter().zip(defaults.all()) {
        assert_eq!(spec.name, default.name, "topics.{key}");
        assert_eq!(spec.compacted, default.compacted, "topics.{key}");
        assert!(spec.replication_factor >= 3, "topics.{key}: production");
    }
}

#[test]
fn relec_names_finds_words_only() {
    let names = relec_names(
        "rate(relec_a_total[5m]) / xrelec_b + {job=\"relec-rules\"} relec.alerts relec_c_bucket",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["relec_a_total", "relec_c_bucket"]
    );
    let registry = stage_registry();
    assert!(is_registered(&registry, "relec_rules_evaluations_total"));
    assert!(!is_registered(&registry, "relec_rules_nothing_total"));
    // Probing leaves nothing behind.
    assert!(!is_registered(&registry, "relec_rules_nothing_total"));
    assert_eq!(
        family(&registry, "relec_rules_commit_duration_seconds_bucket"),
        Some("relec_rules_commit_duration_seconds")
    );
}
