//! Wire codecs: a record becomes Avro in one of the two framings Kafka shops use, and either
//! framing becomes a record again. Decoders accept both, told apart by the first byte:
//! single-object (`C3 01` + 8-byte CRC-64-AVRO fingerprint, no registry needed) or the
//! Confluent wire format (`00` + 4-byte big-endian schema id in a registry).

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{Arc, Once, RwLock},
};

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, schema_compatibility::SchemaCompatibility,
    writer::datum::GenericDatumWriter,
};

use crate::{Error, Record, RegistryClient};

const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
const SINGLE_OBJECT_HEADER: usize = 10;
const CONFLUENT_MAGIC: u8 = 0x00;
const CONFLUENT_HEADER: usize = 5;

/// No record of ours comes near this; garbage that claims a longer string or array is
/// rejected before memory is reserved for it (the Avro crate's own default is 512 MiB).
const MAX_AVRO_ALLOCATION: usize = 16 * 1024 * 1024;

fn limit_allocations() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
    });
}

/// How records are framed on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// Avro single-object encoding: self-describing by fingerprint, no registry needed.
    #[default]
    SingleObject,
    /// Confluent wire format against a schema registry.
    Confluent,
}

/// Encodes records of type `T` with the newest released schema.
pub struct Encoder<T: Record> {
    header: Vec<u8>,
    writer: GenericDatumWriter<'static>,
    _record: PhantomData<fn(&T)>,
}

impl<T: Record> std::fmt::Debug for Encoder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("record", &T::schema_set().name)
            .field("header", &self.header)
            .finish()
    }
}

impl<T: Record> Encoder<T> {
    /// Single-object encoding; needs nothing outside the process.
    pub fn single_object() -> Self {
        let current = T::schema_set().current();
        let mut header = SINGLE_OBJECT_MARKER.to_vec();
        header.extend_from_slice(&current.fingerprint);
        Self::with_header(header)
    }

    /// Confluent wire format: registers the schema under `subject` (the registry's
    /// topic-name strategy is `<topic>-value`) once, here, so encoding never waits on HTTP.
    pub async fn confluent(registry: &RegistryClient, subject: &str) -> Result<Self, Error> {
        let id = registry
            .register(subject, T::schema_set().current().json)
            .await?;
        let mut header = vec![CONFLUENT_MAGIC];
        header.extend_from_slice(&id.to_be_bytes());
        Ok(Self::with_header(header))
    }

    fn with_header(header: Vec<u8>) -> Self {
        let schema = &T::schema_set().current().schema;
        let writer = GenericDatumWriter::builder(schema)
            .build()
            .expect("embedded schemas resolve");
        Self {
            header,
            writer,
            _record: PhantomData,
        }
    }

    pub fn encode(&self, record: &T) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(record, &mut out)?;
        Ok(out)
    }

    /// Appends the framed record to `out`, so a batch can reuse one buffer.
    pub fn encode_into(&self, record: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&self.header);
        self.writer
            .write_ser(out, record)
            .map_err(|source| Error::Encode {
                record: T::schema_set().name,
                source,
            })?;
        Ok(())
    }
}

/// Where the writer schema of a Confluent-framed record came from.
#[derive(Clone)]
enum Writer {
    /// One of our released versions, by index.
    Released(usize),
    /// A schema some other producer registered; read through schema resolution.
    Foreign(Arc<Schema>),
}

/// Decodes records of type `T` written with any released version of its schema, in either
/// framing.
pub struct Decoder<T: Record> {
    /// One reader per released version; the newest reads straight into `T`, the older ones
    /// resolve to the newest schema first.
    readers: Vec<GenericDatumReader<'static>>,
    registry: Option<Arc<RegistryClient>>,
    by_id: RwLock<HashMap<u32, Writer>>,
    _record: PhantomData<fn() -> T>,
}

impl<T: Record> std::fmt::Debug for Decoder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("record", &T::schema_set().name)
            .field("registry", &self.registry)
            .finish()
    }
}

impl<T: Record> Decoder<T> {
    /// A decoder; without a registry, Confluent-framed records are rejected with
    /// [`Error::NoRegistry`].
    pub fn new(registry: Option<Arc<RegistryClient>>) -> Self {
        limit_allocations();
        let set = T::schema_set();
        let current = &set.current().schema;
        let last = set.versions().len() - 1;
        let readers = set
            .versions()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let reader = GenericDatumReader::builder(&v.schema);
                let reader = if i == last {
                    reader.build()
                } else {
                    reader.reader_schema(current).build()
                };
                reader.expect("embedded schemas resolve")
            })
            .collect();
        Self {
            readers,
            registry,
            by_id: RwLock::default(),
            _record: PhantomData,
        }
    }

    /// Decodes either framing; a Confluent record with an unseen schema id costs one
    /// registry request, later ones none.
    pub async fn decode(&self, bytes: &[u8]) -> Result<T, Error> {
        match bytes.first() {
            Some(&CONFLUENT_MAGIC) => {
                let id = confluent_id(bytes)?;
                let writer = self.writer_for_id(id).await?;
                self.decode_body(&writer, &bytes[CONFLUENT_HEADER..])
            }
            _ => self.decode_single_object(bytes),
        }
    }

    /// Decodes single-object bytes; needs no registry and never waits.
    pub fn decode_single_object(&self, bytes: &[u8]) -> Result<T, Error> {
        match bytes {
            [] => Err(Error::Empty),
            [0xC3] => Err(truncated("single-object", 1, SINGLE_OBJECT_HEADER)),
            [0xC3, 0x01, ..] if bytes.len() < SINGLE_OBJECT_HEADER => Err(truncated(
                "single-object",
                bytes.len(),
                SINGLE_OBJECT_HEADER,
            )),
            [0xC3, 0x01, ..] => {
                let set = T::schema_set();
                let fingerprint = &bytes[2..SINGLE_OBJECT_HEADER];
                let (index, _) =
                    set.by_fingerprint(fingerprint)
                        .ok_or_else(|| Error::UnknownFingerprint {
                            record: set.name,
                            fingerprint: hex(fingerprint),
                        })?;
                self.decode_body(&Writer::Released(index), &bytes[SINGLE_OBJECT_HEADER..])
            }
            [0xC3, second, ..] => Err(Error::BadMarker(*second)),
            [first, ..] => Err(Error::UnknownFormat(*first)),
        }
    }

    async fn writer_for_id(&self, id: u32) -> Result<Writer, Error> {
        let known = self
            .by_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        if let Some(writer) = known {
            return Ok(writer);
        }
        let registry = self.registry.as_ref().ok_or(Error::NoRegistry(id))?;
        let schema = registry.schema_by_id(id).await?;
        self.remember(id, schema)
    }

    /// Teaches the decoder the writer schema behind a Confluent schema id without asking
    /// a registry: for schemas known out of band, and for the fuzz targets, which must not
    /// wait on HTTP. The schema is checked exactly as one fetched from the registry.
    pub fn add_schema(&self, id: u32, schema: Arc<Schema>) -> Result<(), Error> {
        self.remember(id, schema).map(drop)
    }

    fn remember(&self, id: u32, schema: Arc<Schema>) -> Result<Writer, Error> {
        let set = T::schema_set();
        // A schema we released ourselves takes the fast, pre-built reader.
        let fingerprint = schema.fingerprint::<apache_avro::rabin::Rabin>().bytes;
        let writer = match set.by_fingerprint(&fingerprint) {
            Some((index, _)) => Writer::Released(index),
            None => {
                SchemaCompatibility::can_read(&schema, &set.current().schema).map_err(|e| {
                    Error::Incompatible {
                        id,
                        record: set.name,
                        reason: e.to_string(),
                    }
                })?;
                Writer::Foreign(schema)
            }
        };
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, writer.clone());
        Ok(writer)
    }

    fn decode_body(&self, writer: &Writer, body: &[u8]) -> Result<T, Error> {
        let record = T::schema_set().name;
        let malformed = |source| Error::Body { record, source };
        let mut rest = body;
        let decoded = match writer {
            Writer::Released(index) if *index == self.readers.len() - 1 => {
                self.readers[*index].read_deser(&mut rest)
            }
            Writer::Released(index) => self.readers[*index]
                .read_value(&mut rest)
                .and_then(|value| apache_avro::from_value(&value)),
            Writer::Foreign(schema) => GenericDatumReader::builder(schema)
                .reader_schema(&T::schema_set().current().schema)
                .build()
                .and_then(|reader| reader.read_value(&mut rest))
                .and_then(|value| apache_avro::from_value(&value)),
        }
        .map_err(malformed)?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes(rest.len()));
        }
        Ok(decoded)
    }
}

fn confluent_id(bytes: &[u8]) -> Result<u32, Error> {
    let header: [u8; 4] = bytes
        .get(1..CONFLUENT_HEADER)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated("Confluent", bytes.len(), CONFLUENT_HEADER))?;
    Ok(u32::from_be_bytes(header))
}

fn truncated(format: &'static str, got: usize, need: usize) -> Error {
    Error::TruncatedHeader { format, got, need }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
