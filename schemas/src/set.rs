//! Every released version of each schema, embedded at build time, with the fingerprints
//! the single-object encoding identifies them by.

use std::sync::LazyLock;

use apache_avro::{Schema, rabin::Rabin};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Alert, IncidentEvent};

/// A type that is written to Kafka as an Avro record of one [`SchemaSet`].
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Every released version of the record's schema; the newest is what this type writes.
    fn schema_set() -> &'static SchemaSet;
}

/// One released version of a schema.
#[derive(Debug)]
pub struct SchemaVersion {
    pub version: u32,
    pub schema: Schema,
    /// The `.avsc` text as released.
    pub json: &'static str,
    /// CRC-64-AVRO (Rabin) fingerprint of the Parsing Canonical Form, little-endian, as the
    /// single-object encoding writes it.
    pub fingerprint: [u8; 8],
}

/// All released versions of one record's schema, oldest first.
#[derive(Debug)]
pub struct SchemaSet {
    pub name: &'static str,
    versions: Vec<SchemaVersion>,
}

impl SchemaSet {
    /// Parses embedded schemas. They are part of the binary, so a parse failure is a bug
    /// caught by the tests, never a runtime condition.
    fn embedded(name: &'static str, released: &[(u32, &'static str)]) -> Self {
        let versions = released
            .iter()
            .map(|&(version, json)| {
                let schema = Schema::parse_str(json)
                    .unwrap_or_else(|e| panic!("embedded schema {name} v{version}: {e}"));
                let bytes = schema.fingerprint::<Rabin>().bytes;
                let fingerprint = bytes.try_into().expect("Rabin fingerprints are 8 bytes");
                SchemaVersion {
                    version,
                    schema,
                    json,
                    fingerprint,
                }
            })
            .collect();
        Self { name, versions }
    }

    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    /// The version this build writes.
    pub fn current(&self) -> &SchemaVersion {
        self.versions.last().expect("a schema set has a version")
    }

    pub fn by_fingerprint(&self, fingerprint: &[u8]) -> Option<(usize, &SchemaVersion)> {
        self.versions
            .iter()
            .enumerate()
            .find(|(_, v)| v.fingerprint == fingerprint)
    }
}

static INCIDENT_EVENT: LazyLock<SchemaSet> = LazyLock::new(|| {
    SchemaSet::embedded(
        "IncidentEvent",
        &[(1, include_str!("../avro/incident_event/v1.avsc"))],
    )
});

static ALERT: LazyLock<SchemaSet> =
    LazyLock::new(|| SchemaSet::embedded("Alert", &[(1, include_str!("../avro/alert/v1.avsc"))]));

impl Record for IncidentEvent {
    fn schema_set() -> &'static SchemaSet {
        &INCIDENT_EVENT
    }
}

impl Record for Alert {
    fn schema_set() -> &'static SchemaSet {
        &ALERT
    }
}
