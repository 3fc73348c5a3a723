//! Notifier stage: consumes `relec.alerts`, routes each alert to the National Contact Points
//! whose subscriptions and clearance match, and delivers by email and webhook.

pub mod breaker;
pub mod channels;
pub mod deliveries;
pub mod dispatch;
pub mod dlq;
pub mod email;
mod error;
pub mod events;
pub mod inhibit;
pub mod ledger;
pub mod matcher;
pub mod notification;
pub mod outbox;
pub mod retry;
pub mod route;
pub mod router;
pub mod silence;
pub mod stage;
pub mod subscriptions;
#[cfg(test)]
mod testkit;
pub mod tlp;
pub mod webhook;

pub use dispatch::Outbound;
pub use error::Error;
pub use notification::Notification;
pub use router::Router;
pub use silence::{Silence, Silences};
pub use subscriptions::Subscriptions;
