//! The `[notifier]` section: where the subscriptions are, how mail leaves (SMTP), and how
//! hard the notifier tries before a delivery goes to the dead-letter topic.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Problems, Secret, Validate, key};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierConfig {
    /// The subscriptions file (subscribers, routes, inhibition rules), reloaded on change;
    /// a reload that fails keeps the previous file.
    pub subscriptions: PathBuf,
    /// How often the subscriptions file is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Consumer group of the notifier stage.
    pub group: String,
    /// A directory of templates overriding the built-in email templates (same names).
    pub templates: Option<PathBuf>,
    /// Write emails (`.eml`) and webhook bodies here instead of sending them: the
    /// zero-setup `relec run` uses it.
    pub outbox: Option<PathBuf>,
    /// Base of links in notifications (Alertmanager's `externalURL`, CAP's `web`).
    pub external_url: String,
    /// The CAP `sender` and the email `From` identity.
    pub sender: String,
    pub smtp: SmtpConfig,
    pub retry: RetryConfig,
    /// Deliveries in flight at once to one endpoint (one webhook URL, one SMTP server).
    pub endpoint_concurrency: usize,
    /// After this many failures in a row an endpoint is given a rest of `breaker_open_for`
    /// before it is tried again, so a dead endpoint does not use up the others' time.
    pub breaker_failures: u32,
    #[serde(with = "humantime_serde")]
    pub breaker_open_for: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            subscriptions: PathBuf::from("deploy/subscriptions.example.toml"),
            reload_interval: Duration::from_secs(10),
            group: "relec-notifier".to_owned(),
            templates: None,
            outbox: None,
            external_url: "http://localhost:9464".to_owned(),
            sender: "relec-ews@localhost".to_owned(),
            smtp: SmtpConfig::default(),
            retry: RetryConfig::default(),
            endpoint_concurrency: 4,
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(30),
        }
    }
}

/// How mail leaves: an SMTP relay.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `From` address of every email.
    pub from: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 25,
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "relec-ews <relec-ews@localhost>".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `starttls` (upgrade on the submission port, usually 587), `tls` (implicit TLS, usually
/// 465), or `plain` (no TLS: only to a relay on this host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    Plain,
}

/// Exponential backoff with full jitter between attempts; a `Retry-After` the endpoint
/// sends is honoured (up to `max_backoff`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Attempts before the delivery goes to the dead-letter topic.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

/// Whether `host` is this machine: `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Validate for NotifierConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.group.trim().is_empty() {
            problems.push(key(path, "group"), "must not be empty");
        }
        if self.endpoint_concurrency == 0 {
            problems.push(key(path, "endpoint_concurrency"), "must be at least 1");
        }
        if self.breaker_failures == 0 {
            problems.push(key(path, "breaker_failures"), "must be at least 1");
        }
        if !self.external_url.starts_with("http://") && !self.external_url.starts_with("https://") {
            problems.push(key(path, "external_url"), "must be an http(s) URL");
        }
        let smtp = key(path, "smtp");
        if self.smtp.host.trim().is_empty() {
            problems.push(key(&smtp, "host"), "must not be empty");
        }
        if self.smtp.security == SmtpSecurity::Plain && !is_loopback(&self.smtp.host) {
            problems.push(
                key(&smtp, "security"),
                format!(
                    "\"plain\" sends mail unencrypted: only allowed to a relay on this host, not {:?}; use \"starttls\" or \"tls\"",
                    self.smtp.host
                ),
            );
        }
        if self.smtp.password.is_some() && self.smtp.username.is_none() {
            problems.push(key(&smtp, "username"), "is needed with a password");
        }
        if !self.smtp.from.contains('@') {
            problems.push(key(&smtp, "from"), "must be an email address");
        }
        let retry = key(path, "retry");
        if self.retry.max_attempts == 0 {
            problems.push(key(&retry, "max_attempts"), "must be at least 1");
        }
        if self.retry.initial_backoff > self.retry.max_backoff {
            problems.push(
                key(&retry, "initial_backoff"),
                "must not exceed max_backoff",
            );
        }
    }
}
