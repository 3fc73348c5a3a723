//! The `[kafka]`, `[topics]` and `[schema_registry]` sections: where the cluster is, how to
//! reach it securely, how clients behave, and the topics the pipeline owns.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use relec_schemas::WireFormat;
use serde::{Deserialize, Serialize};

use super::{Problems, Secret, Validate, key};

/// Brokers value that starts librdkafka's in-process mock cluster instead of connecting.
pub const EMBEDDED: &str = "embedded";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `"embedded"` (default: an in-process cluster, for trying relec out and fast tests) or
    /// a comma-separated list of `host:port` bootstrap brokers.
    pub brokers: String,
    /// Client id prefix shown in broker logs and quotas.
    pub client_id: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: SecurityProtocol,
    /// Certificates for `ssl` and `sasl_ssl`.
    pub tls: Option<TlsConfig>,
    /// Credentials for `sasl_plaintext` and `sasl_ssl`.
    pub sasl: Option<SaslConfig>,
    /// How records are framed: `single-object` (default, no registry) or `confluent`
    /// (needs `[schema_registry]`).
    pub wire_format: WireFormat,
    pub producer: ProducerConfig,
    pub consumer: ConsumerConfig,
    /// Extra librdkafka properties passed through as-is, for tuning this file does not
    /// cover; they win over everything above.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: EMBEDDED.to_owned(),
            client_id: "relec".to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            wire_format: WireFormat::SingleObject,
            producer: ProducerConfig::default(),
            consumer: ConsumerConfig::default(),
            librdkafka: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    pub fn is_embedded(&self) -> bool {
        self.brokers == EMBEDDED
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA that signed the brokers' certificates; the system store if unset.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for clusters that authenticate clients by certificate.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    pub key_password: Option<Secret>,
    /// Check that the broker's certificate names the host connected to (default true).
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `SCRAM-SHA-512` (default), `SCRAM-SHA-256` or `PLAIN`.
    #[serde(default)]
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum SaslMechanism {
    #[default]
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::Plain => "PLAIN",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// `none`, `gzip`, `snappy`, `lz4` (default) or `zstd`.
    pub compression: Compression,
    /// How long to wait to fill a batch; a few milliseconds buys much throughput.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Give up on a record (and report it) after this long without an acknowledgement.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            compression: Compression::Lz4,
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// A consumer that misses heartbeats this long is removed from its group.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How often stored offsets are committed in the background; they are also committed
    /// synchronously at shutdown.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// At most this many bytes a consumer fetches ahead of what it has processed
    /// (librdkafka's `queued.max.messages.kbytes` and `fetch.max.bytes`): its memory
    /// while it catches up on a backlog. librdkafka's own default is 64 MiB.
    pub max_prefetch_bytes: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(10),
            commit_interval: Duration::from_secs(5),
            max_prefetch_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Validate for KafkaConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !self.is_embedded() {
            let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
            for broker in brokers {
                if !is_host_port(broker) {
                    problems.push(
                        key(path, "brokers"),
                        format!("{broker:?} is not host:port (or use \"embedded\")"),
                    );
                }
            }
        }
        if self.client_id.trim().is_empty() {
            problems.push(key(path, "client_id"), "must not be empty");
        }
        let protocol = self.security_protocol;
        if protocol.uses_sasl() && self.sasl.is_none() {
            problems.push(
                key(path, "sasl"),
                format!(
                    "security_protocol {} needs a [kafka.sasl] section",
                    protocol.as_librdkafka()
                ),
            );
        }
        if !protocol.uses_sasl() && self.sasl.is_some() {
            problems.push(
                key(path, "sasl"),
                format!(
                    "is set but security_protocol {} does not use SASL",
                    protocol.as_librdkafka()
                ),
            );
        }
        if !protocol.uses_tls() && self.tls.is_some() {
            problems.push(
                key(path, "tls"),
                format!(
                    "is set but security_protocol {} does not use TLS",
                    protocol.as_librdkafka()
                ),
            );
        }
        if let Some(tls) = &self.tls {
            let tls_path = key(path, "tls");
            for (name, file) in [
                ("ca_file", &tls.ca_file),
                ("cert_file", &tls.cert_file),
                ("key_file", &tls.key_file),
            ] {
                if let Some(file) = file.as_ref().filter(|f| !f.is_file()) {
                    problems.push(
                        key(&tls_path, name),
                        format!("file {} not found", file.display()),
                    );
                }
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                problems.push(tls_path, "cert_file and key_file go together");
            }
        }
        if let Some(sasl) = &self.sasl
            && sasl.username.is_empty()
        {
            problems.push(key(&key(path, "sasl"), "username"), "must not be empty");
        }
        if self.producer.delivery_timeout < Duration::from_secs(1) {
            problems.push(
                key(path, "producer.delivery_timeout"),
                "must be at least 1s",
            );
        }
        if self.consumer.session_timeout < Duration::from_secs(1) {
            problems.push(key(path, "consumer.session_timeout"), "must be at least 1s");
        }
        // A record larger than this could never be fetched (the broker's message.max.bytes
        // default is about 1 MiB).
        if !(1 << 20..=1 << 30).contains(&self.consumer.max_prefetch_bytes) {
            problems.push(
                key(path, "consumer.max_prefetch_bytes"),
                "must be between 1 MiB and 1 GiB",
            );
        }
    }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// `[topics]`: the topics the pipeline owns, created by `relec topics create`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Incident events from all publishers, keyed by route.
    pub incidents: TopicSpec,
    /// Records that failed to decode or validate, with the reason in headers.
    pub incidents_rejected: TopicSpec,
    /// Alert transitions, keyed by fingerprint.
    pub alerts: TopicSpec,
    /// Internal to the rules stage: incidents re-keyed by each group key rules use, so
    /// every key's state lives in one partition. As many partitions as the stage may
    /// have instances.
    pub rules_repartition: TopicSpec,
    /// Internal to the rules stage: its state, compacted, one partition per repartition
    /// partition; read back on restart and rebalance.
    pub rules_changelog: TopicSpec,
    /// Deliveries that failed for good (permanent error or attempts used up), with the
    /// reason, for an operator to inspect and replay (`relec notify dlq`).
    pub notifications_dlq: TopicSpec,
    /// Internal to the notifier: what was delivered to whom, compacted, so a restarted
    /// notifier does not send again what already arrived.
    pub notifier_deliveries: TopicSpec,
    /// The notifier's silences, compacted by silence id.
    pub notifier_silences: TopicSpec,
    /// Where agencies with their own Kafka producers write: one topic per agency, named
    /// `<name>.<agency id>` (grant each agency's principal write on its own topic only);
    /// partitions, retention and the rest apply to each. The ingest stage's screen checks
    /// every record there as it checks an HTTP request, and publishes the good ones.
    pub native: TopicSpec,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            incidents: TopicSpec::new("relec.incidents", 6, Some(days(400))),
            incidents_rejected: TopicSpec::new("relec.incidents.rejected", 1, Some(days(30))),
            alerts: TopicSpec::new("relec.alerts", 3, Some(days(400))),
            rules_repartition: TopicSpec::new("relec.rules.repartition", 6, Some(days(7))),
            rules_changelog: TopicSpec::changelog("relec.rules.changelog", 6),
            notifications_dlq: TopicSpec::new("relec.notifications.dlq", 1, Some(days(30))),
            notifier_deliveries: TopicSpec::changelog("relec.notifier.deliveries", 3),
            notifier_silences: TopicSpec::changelog("relec.notifier.silences", 1),
            native: TopicSpec::new("relec.native", 1, Some(days(7))),
        }
    }
}

impl TopicsConfig {
    /// Every topic with its config key, in a stable order.
    pub fn all(&self) -> [(&'static str, &TopicSpec); 8] {
        [
            ("incidents", &self.incidents),
            ("incidents_rejected", &self.incidents_rejected),
            ("alerts", &self.alerts),
            ("rules_repartition", &self.rules_repartition),
            ("rules_changelog", &self.rules_changelog),
            ("notifications_dlq", &self.notifications_dlq),
            ("notifier_deliveries", &self.notifier_deliveries),
            ("notifier_silences", &self.notifier_silences),
        ]
    }
}

impl TopicsConfig {
    /// The topic agency `agency` writes its native records to.
    pub fn native_for(&self, agency: &str) -> TopicSpec {
        TopicSpec {
            name: format!("{}.{agency}", self.native.name),
            ..self.native.clone()
        }
    }

    /// The agency whose native topic `topic` is, if it is one.
    pub fn native_agency<'a>(&self, topic: &'a str) -> Option<&'a str> {
        (topic.strip_prefix(self.native.name.as_str()))
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|agency| !agency.is_empty())
    }

    /// A regex subscription (librdkafka's `^` prefix) to every agency's native topic.
    pub fn native_pattern(&self) -> String {
        format!("^{}\\..+", self.native.name.replace('.', "\\."))
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    /// Partitions bound how far a stage scales out: one consumer per partition at most.
    #[serde(default = "one")]
    pub partitions: i32,
    /// 1 suits a single broker; use 3 on a production cluster.
    #[serde(default = "one")]
    pub replication_factor: i32,
    /// How long records are kept (`retention.ms`); unset keeps them forever.
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// Keep only the latest record per key (`cleanup.policy=compact`).
    #[serde(default)]
    pub compacted: bool,
    /// Further topic configs passed to the broker as-is.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

fn one() -> i32 {
    1
}

impl TopicSpec {
    pub fn new(name: &str, partitions: i32, retention: Option<Duration>) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            replication_factor: 1,
            retention,
            compacted: false,
            configs: BTreeMap::new(),
        }
    }

    /// A compacted topic kept forever whose closed segments are compacted within the
    /// hour, so reading it back costs about the size of the state, not of its history.
    pub fn changelog(name: &str, partitions: i32) -> Self {
        Self {
            compacted: true,
            configs: BTreeMap::from([
                ("segment.ms".to_owned(), "3600000".to_owned()),
                ("min.cleanable.dirty.ratio".to_owned(), "0.1".to_owned()),
            ]),
            ..Self::new(name, partitions, None)
        }
    }

    /// The broker-side topic configs this spec asks for.
    pub fn broker_configs(&self) -> BTreeMap<String, String> {
        let mut configs = BTreeMap::new();
        let retention_ms = self.retention.map_or(-1, |r| r.as_millis() as i64);
        configs.insert("retention.ms".to_owned(), retention_ms.to_string());
        let policy = if self.compacted { "compact" } else { "delete" };
        configs.insert("cleanup.policy".to_owned(), policy.to_owned());
        configs.extend(self.configs.clone());
        configs
    }
}

impl Validate for TopicsConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        let mut seen = BTreeMap::new();
        for (name, spec) in self.all() {
            let p = key(path, name);
            if let Some(other) = seen.insert(spec.name.clone(), name) {
                problems.push(
                    key(&p, "name"),
                    format!("{:?} is also topics.{other}", spec.name),
                );
            }
            if !is_topic_name(&spec.name) {
                problems.push(
                    key(&p, "name"),
                    format!(
                        "{:?} is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)",
                        spec.name
                    ),
                );
            }
            if spec.partitions < 1 {
                problems.push(
                    key(&p, "partitions"),
                    format!("{} must be at least 1", spec.partitions),
                );
            }
            if spec.replication_factor < 1 {
                problems.push(
                    key(&p, "replication_factor"),
                    format!("{} must be at least 1", spec.replication_factor),
                );
            }
        }
    }
}

fn is_topic_name(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `[schema_registry]`: a Confluent-compatible registry, for the `confluent` wire format.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://registry:8081`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(default = "registry_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn registry_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Validate for RegistryConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push(
                key(path, "url"),
                format!("{:?} is not an http(s) URL", self.url),
            );
        }
        if self.username.is_some() != self.password.is_some() {
            problems.push(path.to_owned(), "username and password go together");
        }
    }
}
