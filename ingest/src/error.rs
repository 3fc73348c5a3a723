//! The one error type of the ingest crate.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request tried to publish for a country its agency is not bound to.
    #[error("agency {agency} may not report for {country} (event {index})")]
    Forbidden {
        agency: String,
        country: String,
        index: usize,
    },
    /// The brokers did not acknowledge in time; nothing of the request counts as accepted
    /// except what was acknowledged, which a retry finds as duplicates.
    #[error("Kafka unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Plumbing(#[from] relec_plumbing::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
