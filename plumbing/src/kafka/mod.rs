//! Kafka clients for every stage: one place that turns the `[kafka]` config into librdkafka
//! settings (security included), an idempotent producer, consumers that commit only what
//! was processed, and the embedded cluster used when no brokers are configured.

mod consumer;
mod embedded;
pub mod polled;
mod producer;
pub mod rejected;
mod topics;

use std::{sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig, admin::AdminClient, client::DefaultClientContext, config::FromClientConfig,
    consumer::StreamConsumer, producer::FutureProducer,
};
use relec_schemas::{Decoder, Encoder, Record, RegistryAuth, RegistryClient, WireFormat};

pub use consumer::{Consumed, RecordConsumer, commit_sync};
pub use embedded::EmbeddedCluster;
pub use producer::{Delivery, RecordProducer};
pub use topics::{TopicDescription, TopicOutcome};

use crate::{Config, Error, config::KafkaConfig};

/// A connection plan to one Kafka cluster: real (from `brokers`) or embedded, with the
/// schema registry if the wire format needs one. Cheap to clone; clients are made from it.
#[derive(Debug, Clone)]
pub struct Kafka {
    config: KafkaConfig,
    bootstrap: String,
    registry: Option<Arc<RegistryClient>>,
    embedded: Option<Arc<EmbeddedCluster>>,
}

impl Kafka {
    /// Plans connections for `config`; with `brokers = "embedded"` this starts the
    /// in-process cluster, which lives as long as any clone of this value.
    pub fn connect(config: &Config) -> Result<Self, Error> {
        let embedded = if config.kafka.is_embedded() {
            Some(Arc::new(EmbeddedCluster::start()?))
        } else {
            None
        };
        let bootstrap = match &embedded {
            Some(cluster) => cluster.bootstrap_servers().to_owned(),
            None => config.kafka.brokers.clone(),
        };
        let registry = match &config.schema_registry {
            Some(r) => {
                let auth =
                    r.username
                        .clone()
                        .zip(r.password.clone())
                        .map(|(username, password)| RegistryAuth {
                            username,
                            password: password.expose().to_owned(),
                        });
                Some(Arc::new(RegistryClient::new(&r.url, auth, r.timeout)?))
            }
            None => None,
        };
        Ok(Self {
            config: config.kafka.clone(),
            bootstrap,
            registry,
            embedded,
        })
    }

    /// The same cluster (and embedded cluster, if any) with other client settings, e.g. a
    /// producer with its own delivery timeout.
    pub fn connect_like(other: &Kafka, config: &Config) -> Self {
        Self {
            config: config.kafka.clone(),
            ..other.clone()
        }
    }

    /// The same clients, but producers send each record at once instead of lingering to
    /// fill a batch: for writes something waits on (a checkpoint, a measured publish).
    pub fn eager(&self) -> Self {
        let mut eager = self.clone();
        eager.config.producer.linger = Duration::ZERO;
        eager
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    pub fn embedded(&self) -> Option<&EmbeddedCluster> {
        self.embedded.as_deref()
    }

    pub fn registry(&self) -> Option<&Arc<RegistryClient>> {
        self.registry.as_ref()
    }

    pub fn wire_format(&self) -> WireFormat {
        self.config.wire_format
    }

    /// Base librdkafka settings shared by every client: brokers, identity and security.
    pub fn client_config(&self, role: &str) -> ClientConfig {
        let k = &self.config;
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", format!("{}-{role}", k.client_id))
            .set("security.protocol", k.security_protocol.as_librdkafka());
        if let Some(tls) = &k.tls {
            let path = |p: &std::path::PathBuf| p.display().to_string();
            if let Some(ca) = &tls.ca_file {
                c.set("ssl.ca.location", path(ca));
            }
            if let Some(cert) = &tls.cert_file {
                c.set("ssl.certificate.location", path(cert));
            }
            if let Some(key) = &tls.key_file {
                c.set("ssl.key.location", path(key));
            }
            if let Some(pw) = &tls.key_password {
                c.set("ssl.key.password", pw.expose());
            }
            let verify = if tls.verify_hostname { "https" } else { "none" };
            c.set("ssl.endpoint.identification.algorithm", verify);
        }
        if let Some(sasl) = &k.sasl {
            c.set("sasl.mechanism", sasl.mechanism.as_librdkafka())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
        for (key, value) in &k.librdkafka {
            c.set(key, value);
        }
        c
    }

    /// An idempotent producer: acks from all in-sync replicas, no duplicates on retry, order
    /// kept per partition.
    pub fn producer(&self, role: &str) -> Result<FutureProducer, Error> {
        Ok(self.producer_config(role).create()?)
    }

    /// The settings of [`Kafka::producer`], for a producer with a context of its own.
    pub fn producer_config(&self, role: &str) -> ClientConfig {
        let p = &self.config.producer;
        let mut c = self.client_config(role);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", p.compression.as_librdkafka())
            .set("linger.ms", p.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                p.delivery_timeout.as_millis().to_string(),
            );
        reapply_overrides(&mut c, &self.config);
        c
    }

    /// A transactional producer (`transactional.id` = `id`): what it sends becomes visible
    /// to read_committed consumers only when its transaction commits, together with the
    /// consumer offsets sent to the transaction. A new producer with the same id fences the
    /// old one off and aborts what it left open.
    pub fn transactional_producer<P: FromClientConfig>(
        &self,
        role: &str,
        id: &str,
    ) -> Result<P, Error> {
        Ok(self.transactional_config(role, id).create()?)
    }

    /// The transactional id of a stage's `turn`-th producer: `id`, then `id.1`, `id.2`, ...
    /// Stages take turns on a few transactional producers, one transaction at a time:
    /// after a commit the broker still writes the transaction's markers, and the same id's
    /// next transaction waits for them ("concurrent transactions", which librdkafka retries
    /// every 20 ms). Records of one key still go out in the order they were written.
    pub fn turn_id(id: &str, turn: usize) -> String {
        match turn {
            0 => id.to_owned(),
            n => format!("{id}.{n}"),
        }
    }

    /// The settings of [`Kafka::transactional_producer`], for a producer with a context of
    /// its own.
    pub fn transactional_config(&self, role: &str, id: &str) -> ClientConfig {
        let p = &self.config.producer;
        let mut c = self.client_config(role);
        c.set("transactional.id", id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", p.compression.as_librdkafka())
            .set("linger.ms", p.linger.as_millis().to_string())
            .set(
                "transaction.timeout.ms",
                p.delivery_timeout.as_millis().max(1000).to_string(),
            )
            // Adding a partition to a transaction right after the previous one committed is
            // answered "concurrent transactions" until its markers are written; retry soon
            // (the default 100 ms backoff would add that much to every commit).
            .set("retry.backoff.ms", "5");
        reapply_overrides(&mut c, &self.config);
        c
    }

    /// Consumer settings for `group`: read_committed, from the earliest offset when the
    /// group has none, committing nothing by itself; for consumers that commit their
    /// offsets in a transaction, or store them as [`Kafka::consumer`] does.
    pub fn consumer_config(&self, role: &str, group: &str) -> ClientConfig {
        let k = &self.config.consumer;
        let mut c = self.reader_config(role);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set(
                "session.timeout.ms",
                k.session_timeout.as_millis().to_string(),
            );
        reapply_overrides(&mut c, &self.config);
        c
    }

    /// Settings of any client that consumes, in a group or by assignment: what it may
    /// fetch ahead is bounded by `kafka.consumer.max_prefetch_bytes`. A full queue
    /// postpones the next fetch by 10 ms, not librdkafka's default second, which would
    /// stall a consumer catching up on a backlog every time it filled its queue.
    pub fn reader_config(&self, role: &str) -> ClientConfig {
        let bytes = self.config.consumer.max_prefetch_bytes;
        let mut c = self.client_config(role);
        c.set("queued.max.messages.kbytes", (bytes / 1024).to_string())
            .set("fetch.max.bytes", bytes.to_string())
            .set("fetch.queue.backoff.ms", "10");
        reapply_overrides(&mut c, &self.config);
        c
    }

    /// A consumer in `group` that reads only committed transactions and commits only the
    /// offsets the caller stored after processing (`enable.auto.offset.store=false`).
    pub fn consumer(&self, role: &str, group: &str) -> Result<StreamConsumer, Error> {
        let k = &self.config.consumer;
        let mut c = self.consumer_config(role, group);
        c.set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                k.commit_interval.as_millis().to_string(),
            );
        reapply_overrides(&mut c, &self.config);
        Ok(c.create()?)
    }

    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>, Error> {
        Ok(self.client_config("admin").create()?)
    }

    /// A producer of `T` records on `topic`, framed in the configured wire format (which
    /// registers the schema under `<topic>-value` for the Confluent format).
    pub async fn record_producer<T: Record>(
        &self,
        role: &str,
        topic: &str,
    ) -> Result<RecordProducer<T>, Error> {
        let encoder = self.encoder(topic, self.config.wire_format).await?;
        Ok(RecordProducer::new(self.producer(role)?, topic, encoder))
    }

    /// An encoder of `T` for `topic` in `format`.
    pub async fn encoder<T: Record>(
        &self,
        topic: &str,
        format: WireFormat,
    ) -> Result<Encoder<T>, Error> {
        match format {
            WireFormat::SingleObject => Ok(Encoder::single_object()),
            WireFormat::Confluent => {
                let registry = self.registry.as_ref().ok_or_else(|| Error::Topic {
                    topic: topic.to_owned(),
                    reason: "the confluent wire format needs [schema_registry]".to_owned(),
                })?;
                Ok(Encoder::confluent(registry, &format!("{topic}-value")).await?)
            }
        }
    }

    /// A consumer of `T` records from `topics`, decoding either wire format.
    pub fn record_consumer<T: Record>(
        &self,
        role: &str,
        group: &str,
        topics: &[&str],
    ) -> Result<RecordConsumer<T>, Error> {
        use rdkafka::consumer::Consumer;
        let consumer = self.consumer(role, group)?;
        consumer.subscribe(topics)?;
        Ok(RecordConsumer::new(
            consumer,
            Decoder::new(self.registry.clone()),
        ))
    }
}

/// Operator-given librdkafka properties win over the defaults set for a client kind.
fn reapply_overrides(c: &mut ClientConfig, k: &KafkaConfig) {
    for (key, value) in &k.librdkafka {
        c.set(key, value);
    }
}

/// How long admin and metadata requests may take before they are reported as failures.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until a new client knows the cluster's brokers and is connected to one of them
/// (`topic` is any topic, to keep the requests small). A new client talks to its bootstrap
/// address first, then retires that connection for one to each broker the metadata names;
/// a coordinator query or leader lookup made in between finds nothing to ask, and
/// librdkafka asks again only after a fixed 500 ms. The first request names the brokers
/// and the partition leaders; the second waits for a connection to a named broker.
pub fn learn_brokers<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<(), rdkafka::error::KafkaError> {
    for _ in 0..2 {
        client.fetch_metadata(Some(topic), timeout)?;
    }
    Ok(())
}

/// Runs a blocking metadata or offsets request again while the broker answers that a
/// partition's leader is not known yet (just after the topic was created, or while a
/// broker restarts), until `deadline`; any other outcome is returned as it is.
pub fn while_leaders_move<T>(
    deadline: std::time::Instant,
    mut request: impl FnMut() -> Result<T, rdkafka::error::KafkaError>,
) -> Result<T, rdkafka::error::KafkaError> {
    use rdkafka::types::RDKafkaErrorCode::{
        LeaderNotAvailable, NotLeaderForPartition, UnknownTopicOrPartition,
    };
    loop {
        match request() {
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(LeaderNotAvailable | NotLeaderForPartition | UnknownTopicOrPartition)
                ) && std::time::Instant::now() < deadline =>
            {
                tracing::debug!(error = %e, "no partition leader yet; asking again");
                std::thread::sleep(Duration::from_millis(100));
            }
            outcome => return outcome,
        }
    }
}
