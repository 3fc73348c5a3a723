//! The one path every incident takes into `relec.incidents`, whether it came over HTTP or
//! from a bulk file: authorise, validate, deduplicate, produce, and wait for the brokers'
//! acknowledgement before calling anything accepted.

use std::{sync::Arc, time::Duration};

use relec_plumbing::kafka::{Delivery, RecordProducer};
use relec_schemas::IncidentEvent;

use crate::{
    Error,
    auth::Agency,
    dedup::{Claim, Dedup},
    events::{IngestMetrics, Rejected, Unavailable},
    validate::{FieldError, validate},
};

/// One position of a request: an event, or why the bytes there are not one.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Box<IncidentEvent>),
    Invalid {
        /// The `event_id` if one could be read, so the publisher can match the answer.
        event_id: Option<String>,
        errors: Vec<FieldError>,
    },
}

impl Item {
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Item::Event(e) => Some(&e.event_id),
            Item::Invalid { event_id, .. } => event_id.as_deref(),
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted(Delivery),
    /// Accepted before (or earlier in the same request); not written again.
    Duplicate,
    Rejected(Vec<FieldError>),
}

/// The clock: milliseconds since the Unix epoch. Injected so tests control "now".
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// How long to wait for another request that is writing the same `event_id`.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(5);

#[derive(Clone)]
pub struct Publisher {
    producer: Arc<RecordProducer<IncidentEvent>>,
    dedup: Arc<Dedup>,
    clock: Clock,
    skew: Duration,
    timeout: Duration,
    metrics: IngestMetrics,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("producer", &self.producer)
            .field("remembered_ids", &self.dedup.len())
            .finish()
    }
}

impl Publisher {
    pub fn new(
        producer: RecordProducer<IncidentEvent>,
        dedup: Arc<Dedup>,
        clock: Clock,
        skew: Duration,
        timeout: Duration,
        metrics: IngestMetrics,
    ) -> Self {
        Self {
            producer: Arc::new(producer),
            dedup,
            clock,
            skew,
            timeout,
            metrics,
        }
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Publishes `items` for `agency`. A request with any event for a country the agency is
    /// not bound to is refused whole, before anything is written.
    pub async fn publish(&self, agency: &Agency, items: Vec<Item>) -> Result<Vec<Outcome>, Error> {
        let m = &self.metrics;
        m.received.inc_by(items.len() as u64);
        if let Some((index, country)) = items.iter().enumerate().find_map(|(i, item)| match item {
            Item::Event(e) if !agency.may_report_for(&e.reporting_country) => {
                Some((i, e.reporting_country.clone()))
            }
            _ => None,
        }) {
            Rejected {
                agency: &agency.id,
                reason: "forbidden",
                count: items.len() as u64,
            }
            .emit(m);
            return Err(Error::Forbidden {
                agency: agency.id.clone(),
                country,
                index,
            });
        }

        let now = (self.clock)();
        // `None` marks an event waiting for its acknowledgement.
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
        let mut to_send: Vec<(usize, Box<IncidentEvent>)> = Vec::new();
        let mut in_request = std::collections::HashSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let event = match item {
                Item::Invalid { errors, .. } => {
                    self.reject(agency, "schema", 1);
                    outcomes.push(Some(Outcome::Rejected(errors)));
                    continue;
                }
                Item::Event(event) => event,
            };
            let errors = validate(&event, now, self.skew);
            if let Some(first) = errors.first() {
                self.reject(agency, &first.metric_reason(), 1);
                outcomes.push(Some(Outcome::Rejected(errors)));
                continue;
            }
            if !in_request.insert(event.event_id.clone())
                || self.claim(&event.event_id).await? == Claim::Duplicate
            {
                m.duplicates.inc();
                outcomes.push(Some(Outcome::Duplicate));
                continue;
            }
            outcomes.push(None);
            to_send.push((i, event));
        }

        let records = to_send.iter().map(|(_, e)| (e.route.as_str(), e.as_ref()));
        let sent = self.producer.send_all(records);
        // librdkafka fails undelivered messages after its own delivery timeout; this outer
        // bound only guards against that never happening.
        let results: Vec<Result<Delivery, String>> =
            match tokio::time::timeout(self.timeout * 2, sent).await {
                Ok(results) => results
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect(),
                Err(_) => vec![Err("no acknowledgement in time".to_owned()); to_send.len()],
            };
        self.metrics
            .producer_queue
            .set(self.producer.in_flight() as i64);
        let acked_at = (self.clock)();
        let mut failure = None;
        for ((i, event), result) in to_send.iter().zip(results) {
            match result {
                Ok(delivery) => {
                    self.dedup.confirm(&event.event_id, acked_at);
                    m.accepted.inc();
                    outcomes[*i] = Some(Outcome::Accepted(delivery));
                }
                Err(e) => {
                    self.dedup.release(&event.event_id);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(error) = failure {
            let count = to_send.len() as u64;
            Unavailable {
                agency: &agency.id,
                count,
                error: &error,
            }
            .emit(m);
            return Err(Error::Unavailable(error));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every event was acknowledged, else we returned above"))
            .collect())
    }

    fn reject(&self, agency: &Agency, reason: &str, count: u64) {
        Rejected {
            agency: &agency.id,
            reason,
            count,
        }
        .emit(&self.metrics);
    }

    /// Claims `id`, waiting (bounded) while another request is writing it.
    async fn claim(&self, id: &str) -> Result<Claim, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout * 2;
        loop {
            match self.dedup.claim(id) {
                Claim::InFlight if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(IN_FLIGHT_POLL).await;
                }
                Claim::InFlight => {
                    return Err(Error::Unavailable(format!(
                        "event {id} is still being written by another request"
                    )));
                }
                claim => return Ok(claim),
            }
        }
    }
}
