//! Configuration: one TOML file plus `RELEC_...` environment overrides, checked as a whole
//! so that every problem is reported at once with its key path.

mod ingest;
mod kafka;
mod notifier;
mod problems;
mod rules;
mod secret;
mod service;

use std::path::Path;

use serde::{Serialize, de::DeserializeOwned};

pub use ingest::{AgencyConfig, IngestConfig};
pub use kafka::{
    Compression, ConsumerConfig, EMBEDDED, KafkaConfig, ProducerConfig, RegistryConfig, SaslConfig,
    SaslMechanism, SecurityProtocol, TlsConfig, TopicSpec, TopicsConfig,
};
pub use notifier::{NotifierConfig, RetryConfig, SmtpConfig, SmtpSecurity, is_loopback};
pub use problems::{Problem, Problems, Validate, key};
pub use rules::{RuleLimits, RulesConfig};
pub use secret::Secret;
pub use service::{LogFormat, ShutdownConfig, TelemetryConfig};

use crate::Error;

/// Prefix of environment overrides: `RELEC_KAFKA__BROKERS=host:9092` sets `kafka.brokers`
/// (a double underscore separates keys, so single underscores stay inside key names; a
/// name without one, like `RELEC_CONFIG`, is not an override).
pub const ENV_PREFIX: &str = "RELEC_";

/// The whole configuration of a relec process. Every section is optional in the file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub schema_registry: Option<RegistryConfig>,
    pub ingest: IngestConfig,
    pub rules: RulesConfig,
    pub notifier: NotifierConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
}

impl Config {
    /// The native topic of every configured agency (see [`TopicsConfig::native_for`]).
    pub fn native_topics(&self) -> Vec<TopicSpec> {
        (self.ingest.agencies.iter())
            .map(|a| self.topics.native_for(&a.id))
            .collect()
    }

    /// Reads `path`, applies the process environment's overrides, and checks the result.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, std::env::vars())
    }

    /// The defaults, with the process environment's overrides.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_toml("", std::env::vars())
    }

    /// Parses `text`, applies the `RELEC_...` overrides among `env`, and checks the result.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let mut problems = Problems::default();
        let mut table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                let at = e
                    .span()
                    .map(|s| format!("line {}", line_of(text, s.start)))
                    .unwrap_or_else(|| "file".to_owned());
                problems.push(at, e.message().to_owned());
                return Err(Error::Config(problems));
            }
        };
        apply_env(&mut table, env, &mut problems);

        let config = Config {
            kafka: defaulted(&mut table, "kafka", &mut problems),
            topics: defaulted(&mut table, "topics", &mut problems),
            schema_registry: table
                .remove("schema_registry")
                .and_then(|v| section(v, "schema_registry", &mut problems)),
            ingest: defaulted(&mut table, "ingest", &mut problems),
            rules: defaulted(&mut table, "rules", &mut problems),
            notifier: defaulted(&mut table, "notifier", &mut problems),
            telemetry: defaulted(&mut table, "telemetry", &mut problems),
            shutdown: defaulted(&mut table, "shutdown", &mut problems),
        };
        for unknown in table.keys() {
            problems.push(unknown.clone(), "unknown section");
        }
        config.validate("", &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Error::Config(problems))
        }
    }
}

impl Validate for Config {
    fn validate(&self, _path: &str, problems: &mut Problems) {
        self.kafka.validate("kafka", problems);
        self.topics.validate("topics", problems);
        self.ingest.validate("ingest", problems);
        self.rules.validate("rules", problems);
        self.notifier.validate("notifier", problems);
        self.telemetry.validate("telemetry", problems);
        self.shutdown.validate("shutdown", problems);
        if let Some(registry) = &self.schema_registry {
            registry.validate("schema_registry", problems);
        }
        if self.kafka.wire_format == relec_schemas::WireFormat::Confluent
            && self.schema_registry.is_none()
        {
            problems.push(
                "kafka.wire_format",
                "\"confluent\" needs a [schema_registry] section",
            );
        }
    }
}

/// Takes one section out of the table and lays it over the section's defaults key by key,
/// so `[topics.alerts] partitions = 12` keeps the default topic name.
fn defaulted<T: DeserializeOwned + Serialize + Default>(
    table: &mut toml::Table,
    name: &str,
    problems: &mut Problems,
) -> T {
    let Some(given) = table.remove(name) else {
        return T::default();
    };
    let mut value = toml::Value::try_from(T::default()).expect("defaults serialize to TOML");
    merge(&mut value, given);
    section(value, name, problems).unwrap_or_default()
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Deserializes one section on its own, so a mistake in one section does not hide the
/// mistakes in the others.
fn section<T: DeserializeOwned>(
    value: toml::Value,
    name: &str,
    problems: &mut Problems,
) -> Option<T> {
    match serde_path_to_error::deserialize(value) {
        Ok(section) => Some(section),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                name.to_owned()
            } else {
                key(name, &inner)
            };
            problems.push(path, e.into_inner().message().to_owned());
            None
        }
    }
}

/// Sets `kafka.brokers` from `RELEC_KAFKA__BROKERS`, and so on. Values are read as TOML
/// (numbers, booleans, arrays) where they parse as such, else as strings.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Problems,
) {
    for (name, raw) in env {
        // Only `SECTION__KEY` names are overrides, so RELEC_CONFIG and the like are not.
        let Some(path) = name.strip_prefix(ENV_PREFIX).filter(|p| p.contains("__")) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        if let Err(parent) = set_path(table, &keys, value) {
            problems.push(keys.join("."), format!("{name}: {parent} is not a section"));
        }
    }
}

/// Sets `value` at `keys` below `table`, making sections on the way; fails with the key
/// that names a plain value where a section is needed.
fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (first, rest) = keys.split_first().expect("split yields one item");
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let entry = table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => set_path(t, rest, value),
        _ => Err(first.clone()),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
