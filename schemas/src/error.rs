//! The one error type of the schemas crate: why bytes could not become a record, or a
//! record could not become bytes.

/// Decoding errors name the cause, so a rejected record can be told apart from a broken
/// registry: only [`Error::is_retryable`] errors are worth trying again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("empty payload")]
    Empty,
    #[error(
        "unknown wire format: first byte 0x{0:02x} is neither single-object (0xc3) nor Confluent (0x00)"
    )]
    UnknownFormat(u8),
    #[error("bad single-object marker: expected c3 01, found c3 {0:02x}")]
    BadMarker(u8),
    #[error("truncated {format} header: {got} bytes, need at least {need}")]
    TruncatedHeader {
        format: &'static str,
        got: usize,
        need: usize,
    },
    #[error("unknown schema fingerprint {fingerprint} for {record}: not a released version")]
    UnknownFingerprint {
        record: &'static str,
        fingerprint: String,
    },
    #[error("Confluent wire format (schema id {0}) but no schema registry is configured")]
    NoRegistry(u32),
    #[error("malformed Avro body for {record}: {source}")]
    Body {
        record: &'static str,
        #[source]
        source: apache_avro::Error,
    },
    #[error("{0} trailing bytes after the Avro body")]
    TrailingBytes(usize),
    #[error("schema {id} from the registry is not readable as {record}: {reason}")]
    Incompatible {
        id: u32,
        record: &'static str,
        reason: String,
    },
    #[error("cannot encode {record}: {source}")]
    Encode {
        record: &'static str,
        #[source]
        source: apache_avro::Error,
    },
    #[error("schema registry request {what} failed: {source}")]
    RegistryUnreachable {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("schema registry answered {what} with HTTP {status}: {message}")]
    Registry {
        what: String,
        status: u16,
        message: String,
    },
}

impl Error {
    /// Whether trying the same bytes again later may succeed (the registry was down), as
    /// opposed to bytes that will never decode.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RegistryUnreachable { .. } => true,
            Error::Registry { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
