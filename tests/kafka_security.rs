//! TLS and SASL/SCRAM to the real broker, through relec's own `[kafka]` config: the test
//! bed's SSL listener (client certificates required) and SASL_SSL listener (SCRAM-SHA-512
//! and SCRAM-SHA-256) carry records both ways, plain and in a transaction that also
//! commits the input offsets, as the rules stage does. A wrong SCRAM password, a client
//! that trusts another CA or none, a client without its certificate and plaintext to a TLS
//! port are refused with an error that says why, within a bounded wait. No secret shows in
//! the config's `Debug`, in errors, or in anything the client logs.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::{
    ClientContext, Message,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::KafkaError,
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext},
};
use relec_plumbing::{Config, kafka::Kafka};
use relec_schemas::{IncidentEvent, WireFormat, sample};
use relec_tests::{RECEIVE_DEADLINE, unique};

const RECORDS: u64 = 200;
/// How long a refused client may take to say so: librdkafka's first connection attempt and
/// its report, on a loaded machine.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(20);
/// Bounds each transactional call, as the stages' own timeout does.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The secure side of the test bed, from the exports of `tests/bed/up.sh`.
struct Bed {
    ssl: String,
    sasl_ssl: String,
    tls: PathBuf,
    user: String,
}

impl Bed {
    fn get() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the suite with tests/run.sh, which starts the broker with its SSL and SASL_SSL listeners")
            })
        };
        Self {
            ssl: var("RELEC_TEST_KAFKA_SSL"),
            sasl_ssl: var("RELEC_TEST_KAFKA_SASL_SSL"),
            tls: var("RELEC_TEST_KAFKA_TLS_DIR").into(),
            user: var("RELEC_TEST_KAFKA_SCRAM_USER"),
        }
    }

    fn file(&self, name: &str) -> String {
        self.tls.join(name).display().to_string()
    }

    /// The secrets the bed made; none may ever be printed.
    fn secrets(&self) -> Vec<String> {
        ["scram.password", "client-key.password"]
            .iter()
            .map(|f| {
                let s = std::fs::read_to_string(self.tls.join(f)).expect("secret file");
                s.trim().to_owned()
            })
            .collect()
    }

    /// `[kafka.tls]` for the SSL listener: the bed's CA, the client certificate, its key
    /// encrypted under a password read from a file.
    fn mtls(&self) -> String {
        format!(
            "[kafka.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nkey_password = {{ file = {:?} }}\n",
            self.file("ca.pem"),
            self.file("client.pem"),
            self.file("client.key"),
            self.file("client-key.password"),
        )
    }

    /// `[kafka.tls]` and `[kafka.sasl]` for the SASL_SSL listener.
    fn scram(&self, mechanism: &str, password: &str) -> String {
        format!(
            "[kafka.tls]\nca_file = {:?}\n[kafka.sasl]\nmechanism = {mechanism:?}\nusername = {:?}\npassword = {password}\n",
            self.file("ca.pem"),
            self.user,
        )
    }

    fn scram_password_file(&self) -> String {
        format!("{{ file = {:?} }}", self.file("scram.password"))
    }
}

/// A config as an operator writes it (parsed and validated from TOML), for `brokers` with
/// `protocol` and the sections in `sections`, on topics no other test uses.
fn secure_config(brokers: &str, protocol: &str, sections: &str) -> Config {
    let text = format!(
        "[kafka]\nbrokers = {brokers:?}\nsecurity_protocol = {protocol:?}\n[kafka.producer]\ndelivery_timeout = \"10s\"\n{sections}"
    );
    let mut config = Config::from_toml(&text, std::iter::empty())
        .unwrap_or_else(|e| panic!("config does not load: {e}\n{text}"));
    config.topics = relec_tests::config(brokers, WireFormat::SingleObject).topics;
    config
}

/// Records what librdkafka logs and reports as errors: what the clients relec makes (with
/// the default context) hand to the log.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("capture").clone()
    }
}

impl ClientContext for Capture {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let line = format!("log {level:?} {fac}: {log_message}");
        self.0.lock().expect("capture").push(line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let line = format!("error {error}: {reason}");
        self.0.lock().expect("capture").push(line);
    }
}

impl ConsumerContext for Capture {}

impl ProducerContext for Capture {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Creates topics, produces `RECORDS` incidents with relec's producer, moves them to the
/// alerts topic in transactions that commit the input offsets (as the rules stage does),
/// and reads both topics back with relec's consumer. Returns what librdkafka logged on the
/// way, at debug level for security, broker and configuration.
async fn round_trip(mut config: Config) -> Capture {
    config
        .kafka
        .librdkafka
        .insert("debug".into(), "security,broker,conf".into());
    let kafka = Kafka::connect(&config).expect("connect");
    tokio::time::timeout(RECEIVE_DEADLINE, kafka.create_topics(&config.topics))
        .await
        .expect("topics created in time")
        .expect("create topics");
    let input = config.topics.incidents.name.clone();
    let output = config.topics.alerts.name.clone();

    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let sent: Vec<IncidentEvent> = (0..RECORDS).map(|i| sample::incident(seed, i)).collect();
    let producer = kafka
        .record_producer::<IncidentEvent>("test", &input)
        .await
        .expect("producer");
    let results = tokio::time::timeout(
        RECEIVE_DEADLINE,
        producer.send_all(sent.iter().map(|e| (e.route.as_str(), e))),
    )
    .await
    .expect("acknowledged in time");
    for r in results {
        r.expect("acknowledged");
    }
    assert_eq!(read_ids(&kafka, &input).await, ids(&sent), "plain produce");

    let capture = Capture::default();
    let group = unique("tx");
    let kafka2 = kafka.clone();
    let moved = tokio::task::spawn_blocking(move || {
        transactional_copy(&kafka2, &input, &output, &group, capture.clone());
        capture
    })
    .await
    .expect("transactional copy");
    assert_eq!(
        read_ids(&kafka, &config.topics.alerts.name).await,
        ids(&sent),
        "transactional produce, read_committed"
    );
    moved
}

fn ids(events: &[IncidentEvent]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    ids.sort();
    ids
}

/// Every incident on `topic`, read with relec's consumer in a group of its own.
async fn read_ids(kafka: &Kafka, topic: &str) -> Vec<String> {
    let consumer = kafka
        .record_consumer::<IncidentEvent>("test", &unique("read"), &[topic])
        .expect("consumer");
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + RECEIVE_DEADLINE;
    while ids.len() < RECORDS as usize {
        let consumed = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {RECORDS} arrived in time", ids.len()))
            .expect("consume");
        ids.push(consumed.record.expect("decodes").event_id);
    }
    ids.sort();
    ids
}

/// Consume-transform-produce in transactions of 50 records, the consumer's offsets sent to
/// each: relec's transactional producer and consumer settings, logging into `capture`.
fn transactional_copy(kafka: &Kafka, input: &str, output: &str, group: &str, capture: Capture) {
    let consumer: BaseConsumer<Capture> = kafka
        .consumer_config("test", group)
        .create_with_context(capture.clone())
        .expect("consumer");
    consumer.subscribe(&[input]).expect("subscribe");
    let producer: BaseProducer<Capture> = kafka
        .transactional_config("test", &unique("txid"))
        .create_with_context(capture)
        .expect("transactional producer");
    producer.init_transactions(TXN_TIMEOUT).expect("init");
    let deadline = std::time::Instant::now() + RECEIVE_DEADLINE;
    let mut copied = 0;
    while copied < RECORDS {
        producer.begin_transaction().expect("begin");
        let mut batch = 0;
        while batch < 50 && copied < RECORDS {
            assert!(
                std::time::Instant::now() < deadline,
                "only {copied} of {RECORDS} copied in time"
            );
            let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.expect("consume");
            let record = BaseRecord::to(output)
                .key(m.key().unwrap_or_default())
                .payload(m.payload().unwrap_or_default());
            producer.send(record).map_err(|(e, _)| e).expect("send");
            batch += 1;
            copied += 1;
        }
        let positions = consumer.position().expect("position");
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&positions, &metadata, TXN_TIMEOUT)
            .expect("offsets to the transaction");
        producer.commit_transaction(TXN_TIMEOUT).expect("commit");
    }
    let committed = consumer.committed(TXN_TIMEOUT).expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .sum();
    assert_eq!(
        total, RECORDS as i64,
        "input offsets committed with the output"
    );
}

/// The secrets are in none of `lines`.
fn assert_no_secret(bed: &Bed, what: &str, lines: &[String]) {
    for secret in bed.secrets() {
        for line in lines {
            assert!(!line.contains(&secret), "{what} shows a secret: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_with_a_client_certificate() {
    let bed = Bed::get();
    let config = secure_config(&bed.ssl, "ssl", &bed.mtls());
    let capture = round_trip(config.clone()).await;
    assert!(
        capture.lines().iter().any(|l| l.contains("SSL")),
        "the client logged its TLS handshake"
    );
    assert_no_secret(&bed, "the client's log", &capture.lines());
    assert_no_secret(&bed, "the config's Debug", &[format!("{config:?}")]);
}

/// [`round_trip`] over SASL_SSL with `mechanism`, the password read from the bed's file.
async fn scram_round_trip(mechanism: &str) {
    let bed = Bed::get();
    let sections = bed.scram(mechanism, &bed.scram_password_file());
    let config = secure_config(&bed.sasl_ssl, "sasl_ssl", &sections);
    let capture = round_trip(config.clone()).await;
    assert_no_secret(&bed, "the client's log", &capture.lines());
    assert_no_secret(&bed, "the config's Debug", &[format!("{config:?}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_sha_512() {
    scram_round_trip("SCRAM-SHA-512").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_sha_256() {
    scram_round_trip("SCRAM-SHA-256").await;
}

/// How relec's clients fail against a broker that refuses them.
struct Refusal {
    /// relec's consumer: its first `next()`.
    consumer: String,
    /// relec's producer: one record, given up after the delivery timeout.
    producer: String,
    /// Creating the topics, the first thing an operator runs against a cluster (it waits
    /// out the admin timeout).
    create_topics: String,
    /// What librdkafka logged and reported meanwhile.
    log: Vec<String>,
}

impl Refusal {
    fn everything(&self) -> Vec<String> {
        let mut all = vec![
            self.consumer.clone(),
            self.producer.clone(),
            self.create_topics.clone(),
        ];
        all.extend(self.log.iter().cloned());
        all
    }
}

async fn refusal(config: Config) -> Refusal {
    let kafka = Kafka::connect(&config).expect("connect");
    let topic = config.topics.incidents.name.as_str();
    let consumer = kafka
        .record_consumer::<IncidentEvent>("test", &unique("refused"), &[topic])
        .expect("consumer");
    let consumer = tokio::time::timeout(REFUSAL_DEADLINE, consumer.next())
        .await
        .expect("the consumer reports the refusal in time")
        .expect_err("nothing to consume from a broker that refuses us");

    let capture = Capture::default();
    let logged: BaseConsumer<Capture> = kafka
        .consumer_config("test", &unique("refused"))
        .create_with_context(capture.clone())
        .expect("consumer");
    logged.subscribe(&[topic]).expect("subscribe");
    let logged = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + REFUSAL_DEADLINE;
        while std::time::Instant::now() < deadline {
            if let Some(Err(_)) = logged.poll(Duration::from_millis(100)) {
                return;
            }
        }
        panic!("no error reported within {REFUSAL_DEADLINE:?}");
    });

    let producer = kafka
        .record_producer::<IncidentEvent>("test", topic)
        .await
        .expect("producer");
    let event = sample::incident(1, 1);
    // Bounded by the producer's delivery timeout and the admin timeout.
    let bound = relec_plumbing::kafka::ADMIN_TIMEOUT + REFUSAL_DEADLINE;
    let (produced, created, logged) = tokio::time::timeout(bound, async {
        tokio::join!(
            producer.send(&event.route, &event),
            kafka.create_topics(&config.topics),
            logged
        )
    })
    .await
    .expect("refused in time");
    logged.expect("a logged refusal");
    Refusal {
        consumer: consumer.to_string(),
        producer: produced.expect_err("nothing acknowledged").to_string(),
        create_topics: created.expect_err("no topic created").to_string(),
        log: capture.lines(),
    }
}

/// Each of the refusals, at once (each waits out the admin timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clients_say_why() {
    let bed = Bed::get();
    let wrong = "\"not-the-password-3f9c\"";
    let ca = format!("[kafka.tls]\nca_file = {:?}\n", bed.file("ca.pem"));
    let cases = [
        (
            "a wrong SCRAM password",
            secure_config(
                &bed.sasl_ssl,
                "sasl_ssl",
                &bed.scram("SCRAM-SHA-512", wrong),
            ),
            "invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
        (
            "trusting another CA",
            secure_config(
                &bed.ssl,
                "ssl",
                &bed.mtls().replace("/ca.pem", "/other-ca.pem"),
            ),
            "certificate verify failed",
        ),
        (
            "trusting only the system's CAs",
            secure_config(
                &bed.ssl,
                "ssl",
                &bed.mtls()
                    .replace(&format!("ca_file = {:?}\n", bed.file("ca.pem")), ""),
            ),
            "certificate verify failed",
        ),
        (
            "without a client certificate",
            secure_config(&bed.ssl, "ssl", &ca),
            "alert bad certificate",
        ),
        (
            "plaintext to the TLS port",
            secure_config(&bed.ssl, "plaintext", ""),
            "brokers are down",
        ),
    ];
    let running: Vec<_> = cases
        .iter()
        .map(|(_, config, ..)| tokio::spawn(refusal(config.clone())))
        .collect();
    let mut refusals = Vec::new();
    for r in running {
        refusals.push(r.await.expect("refusal"));
    }
    let mut secrets = bed.secrets();
    secrets.push(wrong.trim_matches('"').to_owned());
    for ((case, config, why), refusal) in cases.iter().zip(refusals) {
        // Which code the consumer gets depends on when the connection broke (SSL or
        // BrokerTransportFailure for the same handshake); the log says why.
        assert!(
            refusal.consumer.contains("Message consumption error"),
            "{case}: the consumer says {:?}",
            refusal.consumer
        );
        assert!(
            refusal.log.iter().any(|l| l.contains(why)),
            "{case}: the client never logged {why:?}: {:#?}",
            refusal.log
        );
        // An admin request only times out: librdkafka reports the cause on the client's
        // main queue, which rdkafka's admin client never polls.
        assert!(
            refusal.create_topics.starts_with("Kafka client:"),
            "{case}: creating topics says {:?}",
            refusal.create_topics
        );
        assert!(
            refusal.producer.contains("MessageTimedOut"),
            "{case}: the producer says {:?}",
            refusal.producer
        );
        let shown = [refusal.everything(), vec![format!("{config:?}")]].concat();
        for secret in &secrets {
            for line in &shown {
                assert!(
                    !line.contains(secret.as_str()),
                    "{case}: a secret shows in {line}"
                );
            }
        }
    }
}
