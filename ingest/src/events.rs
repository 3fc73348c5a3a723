//! What the ingest stage tells operators: one type per observable event, each writing its
//! log line and bumping its metric together so the two never drift.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Reasons an event can be rejected for, beyond the names of the fields that failed
/// validation; all are initialised to 0 so dashboards see them before the first rejection.
pub const REJECT_REASONS: [&str; 3] = ["schema", "forbidden", "unavailable"];

/// The ingest stage's metrics.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub received: IntCounter,
    pub accepted: IntCounter,
    pub duplicates: IntCounter,
    pub rejected: IntCounterVec,
    pub request_seconds: Histogram,
    pub producer_queue: IntGauge,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| IntCounter::with_opts(Opts::new(name, help));
        let m = Self {
            received: counter(
                "relec_ingest_events_received_total",
                "Incident events received by the ingest API and bulk import.",
            )?,
            accepted: counter(
                "relec_ingest_events_accepted_total",
                "Incident events acknowledged by the brokers.",
            )?,
            duplicates: counter(
                "relec_ingest_events_duplicate_total",
                "Re-sent events acknowledged again without being written twice.",
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "relec_ingest_events_rejected_total",
                    "Incident events rejected, by reason (the failing field, or schema, forbidden, unavailable).",
                ),
                &["reason"],
            )?,
            request_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "relec_ingest_request_duration_seconds",
                    "Time to answer a publish request, acknowledgement included.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )?,
            producer_queue: IntGauge::with_opts(Opts::new(
                "relec_ingest_producer_queue_messages",
                "Messages waiting in the producer for an acknowledgement.",
            ))?,
        };
        for reason in REJECT_REASONS {
            m.rejected.with_label_values(&[reason]);
        }
        registry.register(Box::new(m.received.clone()))?;
        registry.register(Box::new(m.accepted.clone()))?;
        registry.register(Box::new(m.duplicates.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.request_seconds.clone()))?;
        registry.register(Box::new(m.producer_queue.clone()))?;
        Ok(m)
    }

    /// Metrics on a private registry, for tests and tools that do not serve them.
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry takes every metric")
    }
}

/// Events of one request were rejected.
#[derive(Debug)]
pub struct Rejected<'a> {
    pub agency: &'a str,
    pub reason: &'a str,
    pub count: u64,
}

impl Rejected<'_> {
    pub fn emit(&self, m: &IngestMetrics) {
        tracing::info!(
            agency = self.agency,
            reason = self.reason,
            count = self.count,
            "events rejected"
        );
        m.rejected
            .with_label_values(&[self.reason])
            .inc_by(self.count);
    }
}

/// The brokers could not acknowledge a request's events in time.
#[derive(Debug)]
pub struct Unavailable<'a> {
    pub agency: &'a str,
    pub count: u64,
    pub error: &'a str,
}

impl Unavailable<'_> {
    pub fn emit(&self, m: &IngestMetrics) {
        tracing::warn!(
            agency = self.agency,
            count = self.count,
            error = self.error,
            "Kafka unavailable, answering 503"
        );
        m.rejected
            .with_label_values(&["unavailable"])
            .inc_by(self.count);
    }
}
