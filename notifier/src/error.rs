//! The one error type of the notifier crate: what can go wrong reading subscriptions and
//! silences (routing), setting up the channels, and running the stage on Kafka. Failures
//! of single deliveries are not errors: they are outcomes (`retry::Outcome`) that end in
//! the dead-letter topic.

use relec_plumbing::config::Problems;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read subscriptions file {path}: {source}")]
    SubscriptionsRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Every problem in the subscriptions file at once, each with its key path.
    #[error("invalid subscriptions:\n{0}")]
    Subscriptions(Problems),
    /// A silence that cannot be applied, each problem with its field path.
    #[error("invalid silence:\n{0}")]
    Silence(Problems),
    #[error("invalid matcher {matcher:?}: {reason}")]
    Matcher { matcher: String, reason: String },
    #[error("email: {0}")]
    Email(#[from] crate::email::Error),
    #[error("webhooks: {0}")]
    Webhook(#[from] crate::webhook::Error),
    #[error("cannot use the outbox {path}: {source}")]
    Outbox {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Plumbing(#[from] relec_plumbing::Error),
    #[error("Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A record of the delivery log, the silences or the dead-letter topic that does not
    /// read: the topic was written by something else, or by a newer relec.
    #[error("{topic}: record {key:?} at partition {partition} offset {offset}: {reason}")]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        key: String,
        reason: String,
    },
    #[error("{topic}: partitions {partitions:?} not read to their end within {waited:?}")]
    ReadTimeout {
        topic: String,
        partitions: Vec<i32>,
        waited: std::time::Duration,
    },
    /// Another instance of the same consumer group took over the notifier's state.
    #[error(
        "another notifier of group {group:?} has taken over (its state writer fenced this one off); run one instance per group"
    )]
    Fenced { group: String },
    #[error("notifier task failed: {0}")]
    Task(String),
    #[error("{0}")]
    NotFound(String),
}
