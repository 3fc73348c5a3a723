//! Notifier stage: consumes `relec.alerts`, routes each alert to the National Contact Points
//! whose subscriptions and clearance match, and delivers by email and webhook.

pub mod notification;

pub use notification::Notification;
