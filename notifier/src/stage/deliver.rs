//! Deliveries of the stage, each a task of its own: attempts through the channel with
//! the retry policy, at most `endpoint_concurrency` at once per endpoint and behind that
//! endpoint's circuit breaker, so a slow or dead endpoint delays nobody else. How a
//! delivery ends is recorded before the stage hears of it: delivered in the delivery
//! log; failed for good in the dead-letter topic, then in the delivery log.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use rand::rngs::SmallRng;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::FutureProducer,
};
use relec_plumbing::config::NotifierConfig;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::topic;
use crate::{
    Outbound, Subscriptions,
    breaker::{Breaker, Gate},
    channels::{self, Channels},
    deliveries::{Entry, Keys, State},
    dlq::DeadLetter,
    events::NotifierMetrics,
    retry::{self, Delivery, Outcome, RetryPolicy},
};

/// The longest pause between two tries to write a delivery's end to Kafka.
const WRITE_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How a delivery task ended, for the stage's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: String,
    /// Delivered or dead-lettered, and recorded; false when shutdown interrupted it (it
    /// is still pending in the delivery log and the next run sends it again).
    pub ended: bool,
}

/// One endpoint's share of the deliveries.
#[derive(Debug)]
struct Endpoint {
    permits: Semaphore,
    breaker: Mutex<Breaker>,
}

/// Runs deliveries; shared by their tasks.
pub struct Deliverer {
    channels: Channels,
    subscriptions: watch::Receiver<Arc<Subscriptions>>,
    policy: RetryPolicy,
    concurrency: usize,
    breaker_failures: u32,
    breaker_open_for: Duration,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    producer: FutureProducer,
    deliveries_topic: String,
    dlq_topic: String,
    metrics: NotifierMetrics,
    /// Told of each delivered notification (nobody may be listening).
    delivered: broadcast::Sender<Arc<Outbound>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("policy", &self.policy)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &NotifierConfig,
        channels: Channels,
        subscriptions: watch::Receiver<Arc<Subscriptions>>,
        producer: FutureProducer,
        deliveries_topic: &str,
        dlq_topic: &str,
        metrics: NotifierMetrics,
        delivered: broadcast::Sender<Arc<Outbound>>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            channels,
            subscriptions,
            policy: RetryPolicy::from(&config.retry),
            concurrency: config.endpoint_concurrency.max(1),
            breaker_failures: config.breaker_failures,
            breaker_open_for: config.breaker_open_for,
            endpoints: Mutex::default(),
            producer,
            deliveries_topic: deliveries_topic.to_owned(),
            dlq_topic: dlq_topic.to_owned(),
            metrics,
            delivered,
            shutdown,
        }
    }

    /// Starts delivering `outbound` in a task of its own; `done` hears how it ended.
    pub fn spawn(self: &Arc<Self>, id: String, outbound: Outbound, done: mpsc::Sender<Finished>) {
        let this = self.clone();
        tokio::spawn(async move {
            let ended = this.run(&id, &outbound).await;
            let _ = done.send(Finished { id, ended }).await;
        });
    }

    async fn run(&self, id: &str, outbound: &Outbound) -> bool {
        let kind = channels::kind(&outbound.channel);
        let in_flight = self.metrics.in_flight.with_label_values(&[kind]);
        in_flight.inc();
        let mut rng: SmallRng = rand::make_rng();
        let delivery = retry::deliver(&self.policy, &mut rng, &self.shutdown, |attempt| {
            self.attempt(attempt, kind, outbound)
        })
        .await;
        let ended = self.record(id, outbound, &delivery).await;
        in_flight.dec();
        ended
    }

    async fn attempt(&self, attempt: u32, kind: &str, outbound: &Outbound) -> Outcome {
        if attempt > 1 {
            self.metrics.retries.with_label_values(&[kind]).inc();
        }
        let subscriptions = self.subscriptions.borrow().clone();
        let Some(name) = Channels::endpoint(&subscriptions, &outbound.channel) else {
            return Outcome::permanent(format!(
                "channel {} is no longer in the subscriptions",
                outbound.channel
            ));
        };
        let endpoint = self.endpoint(&name);
        if let Gate::Open(rest) = lock(&endpoint.breaker).check(Instant::now()) {
            return Outcome::Retry {
                after: Some(rest),
                reason: format!(
                    "circuit open: the endpoint failed {} times in a row",
                    self.breaker_failures
                ),
            };
        }
        let Ok(_permit) = endpoint.permits.acquire().await else {
            return Outcome::retry("endpoint closed");
        };
        let outcome = (self.channels)
            .attempt(&subscriptions, outbound, SystemTime::now())
            .await;
        let mut breaker = lock(&endpoint.breaker);
        match &outcome {
            Outcome::Retry { .. } => {
                if breaker.failure(Instant::now()) {
                    self.metrics
                        .breaker_opened(kind, &name, self.breaker_open_for);
                }
            }
            Outcome::Delivered | Outcome::Permanent { .. } => breaker.success(),
        }
        outcome
    }

    fn endpoint(&self, name: &str) -> Arc<Endpoint> {
        lock(&self.endpoints)
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Endpoint {
                    permits: Semaphore::new(self.concurrency),
                    breaker: Mutex::new(Breaker::new(self.breaker_failures, self.breaker_open_for)),
                })
            })
            .clone()
    }

    /// Records how the delivery ended; true once recorded.
    async fn record(&self, id: &str, outbound: &Outbound, delivery: &Delivery) -> bool {
        let kind = channels::kind(&outbound.channel);
        let now = now_ms();
        let key = &outbound.notification.idempotency_key;
        match delivery {
            Delivery::Delivered { attempts } => {
                let newest = (outbound.notification.alerts.iter())
                    .map(|a| a.generated_at)
                    .max();
                let latency =
                    newest.map(|t| Duration::from_millis(now.saturating_sub(t).max(0) as u64));
                self.metrics.delivered(kind, id, *attempts, latency);
                if self.delivered.receiver_count() > 0 {
                    let _ = self.delivered.send(Arc::new(outbound.clone()));
                }
                let entry = Entry::ended(State::Delivered, &outbound.channel, key, *attempts, now);
                self.log(id, &entry).await
            }
            Delivery::Failed {
                attempts,
                permanent,
                reason,
            } => {
                let letter = DeadLetter::new(id, outbound, reason, *attempts, *permanent, now)
                    .with_format(&self.subscriptions.borrow());
                let headers = letter.headers();
                let written = self
                    .write(&self.dlq_topic, id, &letter.to_json(), headers)
                    .await;
                if !written {
                    return false;
                }
                self.metrics
                    .dead_lettered(kind, id, *attempts, *permanent, reason);
                let entry =
                    Entry::ended(State::DeadLettered, &outbound.channel, key, *attempts, now);
                self.log(id, &entry).await
            }
            Delivery::Interrupted { attempts } => {
                tracing::info!(
                    delivery = id,
                    attempts,
                    "delivery interrupted by shutdown; the next run sends it again"
                );
                false
            }
        }
    }

    async fn log(&self, id: &str, entry: &Entry) -> bool {
        let key = Keys::delivery(id);
        self.write(
            &self.deliveries_topic,
            &key,
            &entry.to_json(),
            OwnedHeaders::new(),
        )
        .await
    }

    /// Writes one record, trying again until it is acknowledged or shutdown comes.
    async fn write(&self, topic: &str, key: &str, value: &[u8], headers: OwnedHeaders) -> bool {
        let mut wait = Duration::from_millis(100);
        loop {
            match topic::write(&self.producer, topic, key, Some(value), headers.clone()).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(topic, key, error = %e, retry_in = ?wait, "cannot record a delivery's end; retrying");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(WRITE_BACKOFF_CAP);
        }
    }
}

/// Header helper for the dead-letter records.
pub(crate) fn header(headers: OwnedHeaders, key: &str, value: &str) -> OwnedHeaders {
    headers.insert(Header {
        key,
        value: Some(value),
    })
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
