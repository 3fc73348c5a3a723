//! The one error type of the plumbing crate.

use crate::config::Problems;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration:\n{0}")]
    Config(Problems),
    #[error("Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("schemas: {0}")]
    Schema(#[from] relec_schemas::Error),
    #[error("embedded Kafka cluster: {0}")]
    Embedded(String),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("telemetry setup: {0}")]
    Telemetry(String),
}
