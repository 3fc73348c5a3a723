//! The notifier stage on Kafka (`relec notify`): consumes `relec.alerts` (read_committed,
//! consumer group `notifier.group`, offsets committed by hand), routes each alert
//! transition, and delivers by email and webhook, at least once.
//!
//! Data flow: `relec.alerts` → router (groups, silences, inhibition, TLP) → deliveries
//! (retries, per-endpoint limits and breakers) → NCP inboxes and endpoints; failures →
//! `relec.notifications.dlq`. `relec.notifier.deliveries` holds the delivery log and the
//! routing checkpoint (see `state.rs`), `relec.notifier.silences` the silences.
//!
//! One instance per consumer group: aggregation groups span the partitions of the alerts
//! topic, so they must all be read in one place (as one Alertmanager does). A second
//! instance fences off the first's checkpoint writer, and the first stops.

mod admin;
mod core;
pub(crate) mod deliver;
pub mod reload;
pub mod silences;
mod state;
pub mod topic;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use prometheus::Registry;
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
};
use relec_plumbing::{Config, kafka::Kafka, telemetry::Health};
use relec_schemas::{Alert, Decoder};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub use self::core::{CHECKPOINT_INTERVAL, MAX_IN_FLIGHT};
use self::core::{Core, Start};
use crate::{
    Error, Outbound, Subscriptions, channels::Channels, deliveries::Keys, events::NotifierMetrics,
};
pub use admin::listed;
use deliver::{Deliverer, now_ms};
use reload::{ReloadHandle, Reloader};
use silences::{SilenceBook, SilenceStore};
use state::{StateWriter, restore};

/// The stage, built and ready to run.
pub struct NotifierStage {
    config: Config,
    kafka: Kafka,
    reloader: Reloader,
    subscriptions: watch::Receiver<Arc<Subscriptions>>,
    book: SilenceBook,
    store: SilenceStore,
    channels: Channels,
    metrics: NotifierMetrics,
    delivered: broadcast::Sender<Arc<Outbound>>,
}

/// Delivered notifications held for a slow [`NotifierStage::delivered`] receiver.
pub const DELIVERED_BACKLOG: usize = 1024;

impl std::fmt::Debug for NotifierStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierStage")
            .field("group", &self.config.notifier.group)
            .finish_non_exhaustive()
    }
}

impl NotifierStage {
    /// Loads the subscriptions (a bad file is an error here: there is no previous one to
    /// keep), sets up the channels, checks the topics, registers the metrics.
    pub async fn build(config: &Config, kafka: &Kafka, registry: &Registry) -> Result<Self, Error> {
        let metrics = NotifierMetrics::register(registry)?;
        let n = &config.notifier;
        let reloader = Reloader::new(
            n.subscriptions.clone(),
            n.reload_interval,
            true,
            metrics.reloads.clone(),
        )?;
        let subscriptions = reloader.subscribe();
        tracing::info!(
            path = %n.subscriptions.display(),
            subscribers = subscriptions.borrow().subscribers().len(),
            "subscriptions loaded"
        );
        let t = &config.topics;
        if kafka.is_embedded() {
            kafka.create_topics(t).await?;
        }
        let names = [
            t.alerts.name.as_str(),
            t.notifications_dlq.name.as_str(),
            t.notifier_deliveries.name.as_str(),
            t.notifier_silences.name.as_str(),
        ];
        let described = kafka.describe_topics(&names).await?;
        if let Some(missing) = described.iter().find(|d| !d.exists) {
            return Err(relec_plumbing::Error::Topic {
                topic: missing.name.clone(),
                reason: "does not exist; create it with `relec topics create`".into(),
            }
            .into());
        }
        let channels = Channels::new(n)?;
        if let Some(outbox) = channels.outbox() {
            tracing::info!(dir = %outbox.dir().display(), "notifications are written to the outbox, not sent");
        }
        Ok(Self {
            config: config.clone(),
            kafka: kafka.clone(),
            reloader,
            subscriptions,
            book: SilenceBook::default(),
            store: SilenceStore::new(kafka, &t.notifier_silences.name)?,
            channels,
            metrics,
            delivered: broadcast::channel(DELIVERED_BACKLOG).0,
        })
    }

    /// Every notification delivered from now on (written, with an outbox), for whoever
    /// shows them as they go out, such as `relec run`'s console. A receiver that falls
    /// more than [`DELIVERED_BACKLOG`] behind misses the oldest.
    pub fn delivered(&self) -> broadcast::Receiver<Arc<Outbound>> {
        self.delivered.subscribe()
    }

    /// The admin routes for the telemetry listener.
    pub fn admin(&self) -> axum::Router {
        admin::router(self.reload_handle(), self.book.clone(), self.store.clone())
    }

    pub fn reload_handle(&self) -> ReloadHandle {
        self.reloader.handle()
    }

    /// Runs until `shutdown`: restores the checkpoint, follows the silences, consumes and
    /// delivers. Readiness: `notifier` once consuming, `silences` once they are read.
    pub async fn run(self, health: &Health, shutdown: CancellationToken) -> Result<(), Error> {
        let ready = health.component("notifier");
        let silences_ready = health.component("silences");
        let config = &self.config;
        let (n, t) = (&config.notifier, &config.topics);
        let reloader = tokio::spawn(self.reloader.run(shutdown.clone()));
        let follower = tokio::spawn(silences::follow(
            self.kafka.clone(),
            t.notifier_silences.name.clone(),
            self.book.clone(),
            silences_ready,
            shutdown.clone(),
        ));

        // The checkpoint stands between an alert and its deliveries, and a delivery's
        // recorded end between it and the alert's commit: neither has a batch to fill.
        let eager = self.kafka.eager();
        let result = async {
            // Fencing first: a former instance's open transaction would hold the read up.
            let mut state = StateWriter::new(&eager, &t.notifier_deliveries.name, &n.group);
            state.start().await?;
            let keys = Keys::new(&n.group, &t.alerts.name);
            let horizon_ms = t
                .notifications_dlq
                .retention
                .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX));
            let restored = restore(
                &self.kafka,
                &t.notifier_deliveries.name,
                &keys,
                now_ms(),
                horizon_ms,
            )
            .await?;
            tracing::info!(
                groups = restored.router.groups(),
                pending = restored.pending.len(),
                delivered = restored.ended.len(),
                "checkpoint restored"
            );
            let committed = committed_offsets(&self.kafka, &n.group, &t.alerts.name).await?;
            let producer = eager.producer("notifier")?;
            let deliverer = Arc::new(Deliverer::new(
                n,
                self.channels.clone(),
                self.subscriptions.clone(),
                producer,
                &t.notifier_deliveries.name,
                &t.notifications_dlq.name,
                self.metrics.clone(),
                self.delivered.clone(),
                shutdown.clone(),
            ));
            let core = Core::new(
                t.alerts.name.clone(),
                keys,
                Start {
                    restored,
                    committed,
                },
                self.subscriptions.clone(),
                self.book.clone(),
                Decoder::<Alert>::new(self.kafka.registry().cloned()),
                state,
                deliverer,
                self.metrics.clone(),
                horizon_ms,
            );
            let consumer: StreamConsumer = self
                .kafka
                .consumer_config("notifier", &n.group)
                .set("fetch.wait.max.ms", "10")
                .create()?;
            consumer.subscribe(&[&t.alerts.name])?;
            ready.set(true);
            tracing::info!(topic = t.alerts.name, group = n.group, "notifier consuming");
            let result = core
                .run(&consumer, &shutdown, config.shutdown.drain_deadline)
                .await;
            consumer.unsubscribe();
            result
        }
        .await;
        ready.set(false);
        shutdown.cancel();
        let _ = reloader.await;
        match follower.await {
            Ok(Err(e)) => tracing::error!(error = %e, "silences follower stopped"),
            Err(e) => tracing::error!(error = %e, "silences follower failed"),
            Ok(Ok(())) => {}
        }
        result
    }
}

/// The group's committed offsets on `topic`, by partition (none where it has none).
async fn committed_offsets(
    kafka: &Kafka,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, Error> {
    // Asking for a group's offsets does not join it.
    let consumer: BaseConsumer = kafka
        .client_config("notifier-offsets")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(30);
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions: Vec<i32> = (metadata.topics().iter())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut wanted = TopicPartitionList::new();
        for &p in &partitions {
            wanted.add_partition(&topic, p);
        }
        let committed = consumer.committed_offsets(wanted, timeout)?;
        let mut out = BTreeMap::new();
        for &p in &partitions {
            if let Some(Offset::Offset(o)) = committed.find_partition(&topic, p).map(|e| e.offset())
            {
                out.insert(p, o);
            }
        }
        drop(committed);
        Ok(out)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}
