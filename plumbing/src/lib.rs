//! Plumbing shared by every relec stage: configuration, Kafka clients (a real cluster or
//! the embedded one), telemetry (logs, metrics, health endpoints) and graceful shutdown.

pub mod config;
mod error;
pub mod kafka;
pub mod shutdown;
pub mod telemetry;

pub use config::Config;
pub use error::Error;
