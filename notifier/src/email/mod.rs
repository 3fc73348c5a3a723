//! Email channel of the notifier: renders a notification from templates in the
//! subscriber's language (text and HTML, TLP-marked) and sends it over SMTP, classifying
//! what the server answers for the retry policy.

mod locale;
mod render;
mod smtp;
mod templates;

use std::path::PathBuf;

use relec_plumbing::config::Problems;

pub use locale::{DEFAULT_LOCALE, Direction, Locale};
pub(crate) use render::severity_name;
pub use render::{Rendered, message, message_id, render, tlp_marking};
pub use smtp::{SmtpSender, classify};
pub use templates::{BODY_HTML, BODY_TEXT, SUBJECT, Templates};

/// What can go wrong setting up or rendering email.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("email template {name}: {source}")]
    Template {
        name: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("cannot read email template {}: {source}", path.display())]
    TemplateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("email locale {name}: {source}")]
    Locale {
        name: String,
        #[source]
        source: toml::de::Error,
    },
    /// Every problem in the SMTP settings at once.
    #[error("invalid SMTP settings:\n{0}")]
    Config(Problems),
    #[error("cannot set up the SMTP transport: {0}")]
    Transport(#[source] lettre::transport::smtp::Error),
    #[error("cannot build the email: {0}")]
    Message(#[source] lettre::error::Error),
}
