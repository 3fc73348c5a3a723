//! SMTP delivery with lettre: the sender that renders and sends one notification through
//! the relay of `[notifier.smtp]`, and the classification of SMTP errors into retry or
//! give up.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::Mailbox,
    transport::smtp::{self, authentication::Credentials},
};
use relec_plumbing::config::{Problems, SmtpConfig, SmtpSecurity, is_loopback, key};

use super::{Error, Templates, message, message_id, render};
use crate::{Notification, retry::Outcome};

/// The SMTP settings as [`SmtpSender::new`] checks them: what `NotifierConfig::validate`
/// checks, plus what lettre needs (both credentials, a parsable From), so a sender is
/// never built on settings that would fail on the first message or leak over plain text.
fn problems(config: &SmtpConfig) -> Problems {
    let mut problems = Problems::default();
    let path = "notifier.smtp";
    if config.host.trim().is_empty() {
        problems.push(key(path, "host"), "must not be empty");
    } else if config.security == SmtpSecurity::Plain && !is_loopback(&config.host) {
        problems.push(
            key(path, "security"),
            format!(
                "plain (unencrypted) SMTP is only allowed to a loopback host, not {:?}; \
                 use starttls or tls",
                config.host
            ),
        );
    }
    match (&config.username, &config.password) {
        (Some(_), None) => problems.push(key(path, "password"), "is required with username"),
        (None, Some(_)) => problems.push(key(path, "username"), "is required with password"),
        _ => {}
    }
    if let Err(e) = config.from.parse::<Mailbox>() {
        problems.push(key(path, "from"), format!("not an email address: {e}"));
    }
    if config.timeout.is_zero() {
        problems.push(key(path, "timeout"), "must be more than 0");
    }
    problems
}

/// Renders and sends notifications through one relay. Connections are pooled by lettre.
#[derive(Debug, Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Templates>,
    timeout: Duration,
}

impl SmtpSender {
    /// Checks `config` (every problem at once) and sets up the transport; connects only
    /// when the first message goes out. Call it inside a Tokio runtime: the connection
    /// pool starts a task there.
    pub fn new(config: &SmtpConfig, templates: Arc<Templates>) -> Result<Self, Error> {
        let problems = problems(config);
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let from = config.from.parse().expect("validated above");
        type Transport = AsyncSmtpTransport<Tokio1Executor>;
        let builder = match config.security {
            SmtpSecurity::Starttls => Transport::starttls_relay(&config.host),
            SmtpSecurity::Tls => Transport::relay(&config.host),
            SmtpSecurity::Plain => Ok(Transport::builder_dangerous(&config.host)),
        }
        .map_err(Error::Transport)?;
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            templates,
            timeout: config.timeout,
        })
    }

    /// Renders `notification` in `locale` and sends it to `to` as one message dated
    /// `now`. Never fails: what went wrong is in the outcome, for the retry policy.
    pub async fn send(
        &self,
        notification: &Notification,
        to: &[Mailbox],
        locale: &str,
        now: SystemTime,
    ) -> Outcome {
        let email = match self.compose(notification, to, locale, now) {
            Ok(email) => email,
            Err(e) => return Outcome::permanent(e.to_string()),
        };
        // lettre bounds only the TCP connect with its timeout; a relay that stalls later
        // in the dialogue would hold the attempt for ever without this one.
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => Outcome::Delivered,
            Ok(Err(e)) => classify(&e),
            Err(_) => Outcome::retry(format!("smtp: no answer within {:?}", self.timeout)),
        }
    }

    /// The message [`SmtpSender::send`] would send: `notification` rendered in `locale`
    /// for `to`, dated `now` (the outbox writes it as it is).
    pub fn compose(
        &self,
        notification: &Notification,
        to: &[Mailbox],
        locale: &str,
        now: SystemTime,
    ) -> Result<Message, Error> {
        let rendered = render(&self.templates, notification, locale)?;
        let id = message_id(notification, self.from.email.domain());
        message(&rendered, &self.from, to, &id, now)
    }
}

/// 4xx replies, timeouts and connection or network failures are worth retrying; 5xx
/// replies are final, and so are client-side errors (a message lettre cannot send) and
/// TLS failures (a certificate or a missing STARTTLS does not heal by retrying).
pub fn classify(error: &smtp::Error) -> Outcome {
    let reason = format!("smtp: {error}");
    if error.is_permanent() || error.is_client() || error.is_tls() {
        Outcome::permanent(reason)
    } else {
        Outcome::retry(reason)
    }
}

#[cfg(test)]
mod tests {
    use relec_plumbing::config::Secret;

    use super::*;

    fn config(host: &str, security: SmtpSecurity) -> SmtpConfig {
        SmtpConfig {
            host: host.to_owned(),
            port: 2525,
            security,
            from: "RELEC <alerts@relec.example>".to_owned(),
            ..SmtpConfig::default()
        }
    }

    fn sender(config: &SmtpConfig) -> Result<SmtpSender, Error> {
        SmtpSender::new(config, Arc::new(Templates::built_in()))
    }

    #[tokio::test]
    async fn plain_is_only_for_loopback_hosts() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            assert!(sender(&config(host, SmtpSecurity::Plain)).is_ok(), "{host}");
        }
        for host in [
            "mail.example.org",
            "10.0.0.5",
            "192.168.1.1",
            "localhost.example.org",
        ] {
            let err = sender(&config(host, SmtpSecurity::Plain)).expect_err(host);
            let text = err.to_string();
            assert!(text.contains("notifier.smtp.security"), "{text}");
            assert!(text.contains("loopback") && text.contains(host), "{text}");
        }
        assert!(sender(&config("mail.example.org", SmtpSecurity::Starttls)).is_ok());
        assert!(sender(&config("mail.example.org", SmtpSecurity::Tls)).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = config("", SmtpSecurity::Tls);
        config.username = Some("relec".into());
        config.from = "not an address".into();
        config.timeout = Duration::ZERO;
        let paths: Vec<_> = problems(&config).iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "notifier.smtp.host",
                "notifier.smtp.password",
                "notifier.smtp.from",
                "notifier.smtp.timeout"
            ]
        );
    }

    #[tokio::test]
    async fn the_password_never_shows_in_debug_output() {
        let mut config = config("127.0.0.1", SmtpSecurity::Plain);
        config.username = Some("relec".into());
        config.password = Some(Secret::new("hunter2-very-secret"));
        let sender = sender(&config).expect("valid");
        for text in [
            format!("{config:?}"),
            format!("{sender:?}"),
            format!("{sender:#?}"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
