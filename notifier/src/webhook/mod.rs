//! Webhook channel of the notifier: a notification becomes a body in the subscriber's
//! format (native JSON, OASIS CAP 1.2 XML or Alertmanager JSON) and is POSTed signed with
//! Standard Webhooks headers, the idempotency key as `webhook-id`.

mod alertmanager;
mod cap;
mod native;
mod sender;
mod sign;

use relec_plumbing::config::NotifierConfig;

pub use cap::NAMESPACE as CAP_NAMESPACE;
pub use sender::{WebhookSender, classify, classify_error, retry_after};
pub use sign::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_IDEMPOTENCY_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    VerifyError, WebhookSecret, verify,
};

use crate::{Notification, subscriptions::WebhookFormat};

/// What can go wrong building a webhook request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the secret starts with whsec_ but the rest is not base64: {0}")]
    InvalidSecret(#[source] base64::DecodeError),
    #[error("{0:?} is not a valid HTTP header name or value")]
    InvalidHeader(String),
    #[error("cannot write the JSON body: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write the CAP body: {0}")]
    Xml(#[from] std::io::Error),
}

/// Settings shared by every webhook of the process, from `[notifier]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// CAP `<sender>`: who this system is to CAP receivers, usually an address such as
    /// `relec@relec.example` (no spaces, commas, `<` or `&`).
    pub cap_sender: String,
    /// Alertmanager's `externalURL` (and each alert's `generatorURL`) and CAP's `<web>`:
    /// where a recipient can look the alerts up; empty if there is no such place.
    pub external_url: String,
}

impl From<&NotifierConfig> for WebhookOptions {
    fn from(config: &NotifierConfig) -> Self {
        Self {
            cap_sender: config.sender.clone(),
            external_url: config.external_url.clone(),
        }
    }
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self::from(&NotifierConfig::default())
    }
}

/// The request body for `notification` in `format`, and its content type. The body
/// depends on the notification only, so every retry sends the same bytes.
pub fn body(
    format: WebhookFormat,
    notification: &Notification,
    options: &WebhookOptions,
) -> Result<(Vec<u8>, &'static str), Error> {
    Ok(match format {
        WebhookFormat::Native => (native::body(notification)?, "application/json"),
        WebhookFormat::Alertmanager => (
            alertmanager::body(notification, options)?,
            "application/json",
        ),
        WebhookFormat::Cap => (
            cap::body(notification, options)?,
            "application/xml; charset=utf-8",
        ),
    })
}
