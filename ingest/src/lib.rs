//! Ingest stage: how border agencies publish incident events into `relec.incidents`, over
//! HTTP or from bulk files, authenticated, validated, deduplicated and acknowledged by the
//! brokers before anything is called accepted.

pub mod auth;
pub mod dedup;
mod error;
pub mod events;
pub mod file;
pub mod http;
pub mod publisher;
pub mod restore;
pub mod screen;
mod server;
mod stage;
pub use relec_schemas::validate;

pub use error::Error;
pub use stage::{build, serve};
pub mod simulate;
