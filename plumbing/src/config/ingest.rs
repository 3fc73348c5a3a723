//! The `[ingest]` section: the HTTP API border agencies publish through, who they are, and
//! the limits that keep one publisher from hurting the others.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, key};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Where `POST /v1/events` is served.
    pub listen: SocketAddr,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// Larger batches get 413; split them.
    pub max_batch: usize,
    /// A client that has not sent a request's complete headers this long after it
    /// connected, or after its previous response, is disconnected: a slow-loris client
    /// cannot hold a connection open, and idle keep-alive connections close after this.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A request body not received in full this long after its headers gets 408 and the
    /// connection is closed. Raise it for agencies on slow links sending large batches.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// How far `occurred_at` and `reported_at` may lie in the future, for clocks that drift.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How long a request may wait for the brokers' acknowledgement before it gets 503.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// What 503 answers tell clients to wait (`Retry-After`).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Re-sent events whose `event_id` was accepted within this window are acknowledged
    /// again but not written twice; the window is rebuilt from the topic at start.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// At most this many event ids are remembered (oldest forgotten first).
    pub dedup_capacity: usize,
    /// Take the records agencies' own Kafka producers write to their native topics
    /// (`topics.native`): each is checked as an HTTP request is, good ones are published,
    /// and the others are copied to the rejected topic.
    pub screen: bool,
    /// The agencies allowed to publish.
    pub agencies: Vec<AgencyConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 8 * 1024 * 1024,
            max_batch: 5_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            clock_skew: Duration::from_secs(300),
            publish_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(5),
            dedup_window: Duration::from_secs(7 * 86_400),
            dedup_capacity: 2_000_000,
            screen: true,
            agencies: Vec::new(),
        }
    }
}

/// One publishing agency. Its API key is stored only as a SHA-256 hash: keys are long
/// random tokens (`relec ingest keygen`), so a fast hash cannot be brute-forced, and a
/// leaked config file leaks no key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyConfig {
    /// Agency id, as it appears in `reporting_agency`.
    pub id: String,
    /// ISO 3166-1 alpha-3 codes of the countries it may report for.
    pub countries: Vec<String>,
    /// Lower-case hex SHA-256 of its API key.
    pub key_sha256: String,
}

impl Validate for IngestConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.max_body_bytes < 1024 {
            problems.push(key(path, "max_body_bytes"), "must be at least 1024");
        }
        if self.max_batch == 0 {
            problems.push(key(path, "max_batch"), "must be at least 1");
        }
        for (name, timeout) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
        ] {
            if timeout < Duration::from_millis(100) {
                problems.push(key(path, name), "must be at least 100ms");
            }
        }
        if self.publish_timeout < Duration::from_secs(1) {
            problems.push(key(path, "publish_timeout"), "must be at least 1s");
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut hashes = std::collections::BTreeSet::new();
        for (i, agency) in self.agencies.iter().enumerate() {
            let p = format!("{}[{i}]", key(path, "agencies"));
            if agency.id.trim().is_empty() {
                problems.push(key(&p, "id"), "must not be empty");
            } else if !is_topic_suffix(&agency.id) {
                problems.push(
                    key(&p, "id"),
                    format!(
                        "{:?}: use at most 200 of the letters a-z, A-Z, digits, '.', '_' \
                         and '-' (it names the agency's native topic)",
                        agency.id
                    ),
                );
            } else if !ids.insert(agency.id.as_str()) {
                problems.push(key(&p, "id"), format!("{:?} appears twice", agency.id));
            }
            if agency.countries.is_empty() {
                problems.push(key(&p, "countries"), "list at least one country");
            }
            for (j, c) in agency.countries.iter().enumerate() {
                if isocountry::CountryCode::for_alpha3(c).is_err() {
                    problems.push(
                        format!("{}[{j}]", key(&p, "countries")),
                        format!("{c:?} is not an ISO 3166-1 alpha-3 code"),
                    );
                }
            }
            let hash = &agency.key_sha256;
            if hash.len() != 64
                || !hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                problems.push(
                    key(&p, "key_sha256"),
                    "must be 64 lower-case hex digits (relec ingest keygen prints one)",
                );
            } else if !hashes.insert(hash.as_str()) {
                problems.push(
                    key(&p, "key_sha256"),
                    "the same key is given to two agencies",
                );
            }
        }
    }
}

/// Kafka topic names take these characters, up to 249 of them; the agency id is the last
/// part of its native topic's name.
fn is_topic_suffix(id: &str) -> bool {
    id.len() <= 200
        && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
