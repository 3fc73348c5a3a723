//! Schemas: the Avro schemas of every relec topic (the `.avsc` files under `avro/` are the
//! source of truth), the Rust types written against them, and the wire codecs every stage
//! uses to put them on Kafka and take them off again.

mod alert;
mod codec;
mod error;
mod incident;
mod registry;
pub mod sample;
mod set;
mod tlp;
pub mod validate;

pub use alert::{Alert, AlertStatus, Severity};
pub use codec::{Decoder, Encoder, WireFormat};
pub use error::Error;
pub use incident::{
    Direction, GeoPoint, IncidentCategory, IncidentEvent, NationalityCount, SourceReliability,
};
pub use registry::{REGISTER_ATTEMPTS, RegistryAuth, RegistryClient};
pub use set::{Record, SchemaSet, SchemaVersion};
pub use tlp::Tlp;
