//! The two ways a notification leaves the notifier, behind one call: one attempt to
//! deliver an [`Outbound`] to its channel as the subscriptions describe it now (email
//! over SMTP, or a signed webhook POST), classified for the retry policy. The stage and
//! `relec notify dlq replay` both deliver through it.

use std::{sync::Arc, time::SystemTime};

use lettre::message::Mailbox;
use relec_plumbing::config::NotifierConfig;

use crate::{
    Error, Outbound,
    email::{SmtpSender, Templates},
    outbox::Outbox,
    retry::Outcome,
    subscriptions::{Channel, ChannelId, Subscriptions},
    tlp::Access,
    webhook::{WebhookOptions, WebhookSender},
};

/// What endpoint name stands for the SMTP relay: every email goes through it.
pub const SMTP_ENDPOINT: &str = "smtp";

/// The senders of every channel kind; one per process, cheap to share.
#[derive(Debug, Clone)]
pub struct Channels {
    smtp: SmtpSender,
    webhook: WebhookSender,
    /// With `notifier.outbox` set, messages are written there instead of sent.
    outbox: Option<Outbox>,
}

/// The channel kind, as a metric label.
pub fn kind(channel: &ChannelId) -> &'static str {
    match channel.channel {
        Channel::Email => "email",
        Channel::Webhook(_) => "webhook",
    }
}

impl Channels {
    /// Loads the templates (built-in, or the operator's overrides) and sets up the SMTP
    /// relay and the HTTP client, or the outbox directory when one is configured. Call it
    /// inside a Tokio runtime.
    pub fn new(config: &NotifierConfig) -> Result<Self, Error> {
        let templates = Arc::new(Templates::load(config.templates.as_deref())?);
        Ok(Self {
            smtp: SmtpSender::new(&config.smtp, templates)?,
            webhook: WebhookSender::new(WebhookOptions::from(config))?,
            outbox: config.outbox.as_deref().map(Outbox::new).transpose()?,
        })
    }

    /// The outbox messages are written to instead of sent, if any.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// The endpoint a delivery goes to, for concurrency limits and the circuit breaker:
    /// the webhook URL's origin (scheme, host, port), or the SMTP relay. `None` if the
    /// channel is no longer in the subscriptions.
    pub fn endpoint(subscriptions: &Subscriptions, channel: &ChannelId) -> Option<String> {
        match channel.channel {
            Channel::Email => subscriptions
                .email(channel)
                .map(|_| SMTP_ENDPOINT.to_owned()),
            Channel::Webhook(_) => {
                let url = &subscriptions.webhook(channel)?.url;
                Some(match reqwest::Url::parse(url) {
                    Ok(u) => u.origin().ascii_serialization(),
                    Err(_) => url.clone(),
                })
            }
        }
    }

    /// One attempt to deliver `outbound` as the subscriptions say now. A channel that was
    /// removed, or a subscriber whose clearance was lowered below what the notification
    /// carries, fails for good: it goes to the dead-letter topic, never to the channel.
    pub async fn attempt(
        &self,
        subscriptions: &Subscriptions,
        outbound: &Outbound,
        now: SystemTime,
    ) -> Outcome {
        let (channel, notification) = (&outbound.channel, &outbound.notification);
        let Some(subscriber) = subscriptions.subscriber(&channel.subscriber) else {
            return Outcome::permanent(format!(
                "subscriber {} is no longer in the subscriptions",
                channel.subscriber
            ));
        };
        // The clearance is checked again: it may have been lowered by a reload since the
        // notification was cut for it, or, for a replay, since it failed. RED was named
        // for this recipient when the group flushed; naming is not re-derived here.
        let access = Access {
            clearance: subscriber.clearance,
            named_for_red: true,
        };
        if let Some(alert) = (notification.alerts.iter()).find(|a| !access.may_receive(a.handling))
        {
            return Outcome::permanent(format!(
                "subscriber {}'s clearance {} no longer covers {} (alert {})",
                subscriber.id,
                subscriber.clearance.tlp().as_str(),
                alert.handling.as_str(),
                alert.fingerprint
            ));
        }
        match &channel.channel {
            Channel::Email => {
                let Some(email) = subscriptions.email(channel) else {
                    return Outcome::permanent(format!(
                        "channel {channel} is no longer in the subscriptions"
                    ));
                };
                let to: Result<Vec<Mailbox>, _> = email
                    .addresses
                    .iter()
                    .map(|a| a.parse::<Mailbox>())
                    .collect();
                let to = match to {
                    Ok(to) => to,
                    Err(e) => return Outcome::permanent(format!("email: bad address: {e}")),
                };
                let Some(outbox) = &self.outbox else {
                    return self.smtp.send(notification, &to, &email.locale, now).await;
                };
                match self.smtp.compose(notification, &to, &email.locale, now) {
                    Ok(message) => {
                        outbox
                            .email(channel, notification, message.formatted())
                            .await
                    }
                    Err(e) => Outcome::permanent(e.to_string()),
                }
            }
            Channel::Webhook(_) => {
                let Some(webhook) = subscriptions.webhook(channel) else {
                    return Outcome::permanent(format!(
                        "channel {channel} is no longer in the subscriptions"
                    ));
                };
                let Some(outbox) = &self.outbox else {
                    return self.webhook.send(webhook, notification, now).await;
                };
                match self.webhook.signed(webhook, notification, now) {
                    Ok((headers, body)) => {
                        (outbox.webhook(channel, notification, &webhook.url, &headers, body)).await
                    }
                    Err(e) => Outcome::permanent(format!("webhook: {e}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use relec_plumbing::config::NotifierConfig;
    use relec_schemas::{AlertStatus, Tlp};

    use super::*;
    use crate::{
        Notification,
        testkit::{alert, handled},
    };

    const SUBSCRIPTIONS: &str = r#"
[[subscribers]]
id = "irn-ncp"
country = "IRN"
clearance = "GREEN"
[subscribers.email]
addresses = ["ncp@police.ir.example"]
[[subscribers.webhooks]]
name = "soc"
url = "https://soc.police.ir.example:8443/relec?token=x"
secret = "0123456789abcdef0123456789abcdef"

[[receivers]]
name = "all"
subscribers = ["irn-ncp"]

[route]
receiver = "all"
"#;

    fn outbound(channel: &str, handling: Tlp) -> Outbound {
        let a = handled(alert("fp", &[]), handling);
        Outbound {
            channel: channel.parse().expect("channel"),
            notification: Notification {
                subscriber: "irn-ncp".into(),
                receiver: "all".into(),
                group_key: "{}:{}".into(),
                group_labels: Default::default(),
                status: AlertStatus::Firing,
                handling,
                idempotency_key: "k".into(),
                alerts: vec![a],
            },
        }
    }

    #[tokio::test]
    async fn what_the_clearance_no_longer_covers_is_never_sent() {
        let subs = Subscriptions::from_toml(SUBSCRIPTIONS).expect("parses");
        let channels = Channels::new(&NotifierConfig::default()).expect("channels");
        for channel in ["irn-ncp/email", "irn-ncp/webhook/soc"] {
            let outcome = channels
                .attempt(&subs, &outbound(channel, Tlp::Amber), SystemTime::now())
                .await;
            match outcome {
                Outcome::Permanent { reason } => {
                    assert!(
                        reason.contains("clearance GREEN no longer covers AMBER"),
                        "{reason}"
                    )
                }
                other => panic!("{channel}: {other:?}"),
            }
        }
        let gone = channels
            .attempt(
                &subs,
                &outbound("tur-ncp/email", Tlp::Green),
                SystemTime::now(),
            )
            .await;
        assert!(
            matches!(gone, Outcome::Permanent { reason } if reason.contains("no longer in the subscriptions"))
        );
        let removed = channels
            .attempt(
                &subs,
                &outbound("irn-ncp/webhook/old", Tlp::Green),
                SystemTime::now(),
            )
            .await;
        assert!(matches!(removed, Outcome::Permanent { .. }));
    }

    #[test]
    fn endpoints_are_origins_or_the_relay() {
        let subs = Subscriptions::from_toml(SUBSCRIPTIONS).expect("parses");
        let endpoint = |c: &str| Channels::endpoint(&subs, &c.parse().expect("channel"));
        assert_eq!(endpoint("irn-ncp/email").as_deref(), Some(SMTP_ENDPOINT));
        // No path or query: they may hold tokens, and endpoints are logged.
        assert_eq!(
            endpoint("irn-ncp/webhook/soc").as_deref(),
            Some("https://soc.police.ir.example:8443")
        );
        assert_eq!(endpoint("irn-ncp/webhook/old"), None);
    }
}
