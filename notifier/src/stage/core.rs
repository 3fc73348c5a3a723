//! The stage's one loop: it consumes alert records, feeds the router, flushes the groups
//! that are due, checkpoints, hands each new delivery to its task, and commits offsets
//! as deliveries end. Everything that decides (router, ledger) lives in this one task;
//! only the deliveries run beside it.
//!
//! Order of a flush that sends something: the router's new state and the pending
//! deliveries are checkpointed in one transaction *before* any delivery starts, so a
//! crash at any point after restarts them with the same idempotency keys (at most the
//! in-flight ones repeat), and never loses one the router already counts as sent.
//! Checkpoints commit in the background, one at a time, while the loop goes on reading
//! and routing: what the flushes meanwhile produce waits for the next checkpoint, which
//! starts as soon as the running one has committed, so a burst shares transactions and
//! one alert waits for at most the end of the running transaction and its own.
//! Offsets commit at the lower of the ledger's lowest unfinished record and the
//! checkpoint's position: an alert's offset is committed only once every delivery it
//! caused has ended, and never past what a checkpoint holds.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaResult,
    message::BorrowedMessage,
};
use relec_schemas::{Alert, Decoder};
use tokio::{
    sync::{mpsc, watch},
    task::{JoinError, JoinHandle},
};
use tokio_util::sync::CancellationToken;

use super::{
    deliver::{Deliverer, Finished, now_ms},
    silences::SilenceBook,
    state::{Restored, StateWriter},
};
use crate::{
    Error, Outbound, Router, Subscriptions,
    deliveries::{Entry, Keys, Position, delivery_id},
    events::NotifierMetrics,
    ledger::Ledger,
};

/// How often routing state is checkpointed (when it changed) and offsets committed.
/// Flushes that send something checkpoint at once, whatever this says.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// Deliveries in flight beyond which the stage stops consuming until some end: with a
/// dead endpoint, alerts wait in Kafka rather than in memory.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// Alert records taken in at most before the loop looks at due flushes again.
const MAX_BATCH: usize = 1_000;
/// How often ended deliveries older than the horizon are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// With nothing due, how long the loop sleeps before looking again.
const IDLE: Duration = Duration::from_secs(3600);

pub struct Core {
    pub topic: String,
    pub keys: Keys,
    pub router: Router,
    pub ledger: Ledger,
    pub subscriptions: watch::Receiver<Arc<Subscriptions>>,
    pub silences: SilenceBook,
    pub decoder: Decoder<Alert>,
    /// The checkpoint writer; away in the task of the checkpoint committing.
    state: Option<StateWriter>,
    /// The checkpoint committing now, if any.
    committing: Option<Committing>,
    pub deliverer: Arc<Deliverer>,
    pub metrics: NotifierMetrics,
    /// Delivery ends older than this are forgotten (and deleted at the next start).
    pub horizon_ms: Option<i64>,
    /// Deliveries handed out (or about to be) and not ended.
    in_flight: HashSet<String>,
    /// Deliveries that ended, with when: never started again.
    ended: HashMap<String, i64>,
    done_tx: mpsc::Sender<Finished>,
    done_rx: mpsc::Receiver<Finished>,
    /// Checkpoint records not committed yet, by key (`None`: a tombstone).
    unsaved: BTreeMap<String, Option<Vec<u8>>>,
    /// New deliveries waiting for the checkpoint that records them as pending.
    awaiting: Vec<(String, Outbound)>,
    /// Per partition, the next offset the router has not taken in.
    positions: BTreeMap<i32, i64>,
    /// The positions of the last committed checkpoint, and its position records.
    saved: BTreeMap<i32, i64>,
    saved_values: BTreeMap<i32, Vec<u8>>,
    /// Records below these offsets are in the restored checkpoint already.
    covered: BTreeMap<i32, i64>,
    /// Offsets last committed for the group.
    committed: BTreeMap<i32, i64>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// Records of one checkpoint, in the order they are written.
type Records = Arc<Vec<(String, Option<Vec<u8>>)>>;

/// A checkpoint committing in the background, and what waits for it.
struct Committing {
    task: JoinHandle<(StateWriter, Result<(), Error>)>,
    records: Records,
    /// Deliveries recorded as pending in it: they start once it has committed.
    deliveries: Vec<(String, Outbound)>,
    /// The read positions it holds, and their records.
    positions: BTreeMap<i32, i64>,
    values: BTreeMap<i32, Vec<u8>>,
    started: Instant,
}

/// What the core starts from.
#[derive(Debug)]
pub struct Start {
    pub restored: Restored,
    /// The group's committed offsets on the alerts topic.
    pub committed: BTreeMap<i32, i64>,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: String,
        keys: Keys,
        start: Start,
        subscriptions: watch::Receiver<Arc<Subscriptions>>,
        silences: SilenceBook,
        decoder: Decoder<Alert>,
        state: StateWriter,
        deliverer: Arc<Deliverer>,
        metrics: NotifierMetrics,
        horizon_ms: Option<i64>,
    ) -> Self {
        let Start {
            restored,
            committed,
        } = start;
        let mut ledger = Ledger::new();
        // The unfinished records a restored checkpoint covers hold their partition's
        // commit where they did, until what they were waiting for is over. A delivery
        // that ended after that checkpoint (its end is in the log) is over already.
        let pending: HashSet<&str> = (restored.pending.iter())
            .map(|(id, _)| id.as_str())
            .collect();
        for (&p, position) in &restored.positions {
            if let Some(held) = &position.held {
                let mut held = held.clone();
                held.deliveries.retain(|id| pending.contains(id.as_str()));
                ledger.restore(p, &held);
            }
        }
        let positions: BTreeMap<i32, i64> = (restored.positions.iter())
            .map(|(&p, position)| (p, position.offset))
            .collect();
        let saved_values = (restored.positions.iter())
            .map(|(&p, position)| (p, serde_json::to_vec(position).expect("serialises")))
            .collect();
        let (done_tx, done_rx) = mpsc::channel(MAX_IN_FLIGHT);
        let unsaved = (restored.expired.iter())
            .map(|key| (key.clone(), None))
            .collect();
        let mut core = Self {
            topic,
            keys,
            router: restored.router,
            ledger,
            subscriptions,
            silences,
            decoder,
            state: Some(state),
            committing: None,
            deliverer,
            metrics,
            horizon_ms,
            in_flight: HashSet::new(),
            ended: restored.ended,
            done_tx,
            done_rx,
            unsaved,
            awaiting: Vec::new(),
            positions: positions.clone(),
            saved: positions.clone(),
            saved_values,
            covered: positions,
            committed,
        };
        if !restored.pending.is_empty() {
            tracing::info!(
                deliveries = restored.pending.len(),
                "sending again the deliveries pending at the last checkpoint"
            );
        }
        // Already recorded as pending: they start at once, with their idempotency keys.
        for (id, outbound) in restored.pending {
            core.in_flight.insert(id.clone());
            core.deliverer.spawn(id, outbound, core.done_tx.clone());
        }
        core
    }

    /// Runs until `shutdown`, then lets deliveries in flight finish within `drain`,
    /// checkpoints and commits a last time.
    pub async fn run(
        mut self,
        consumer: &StreamConsumer,
        shutdown: &CancellationToken,
        drain: Duration,
    ) -> Result<(), Error> {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        loop {
            let due = self
                .router
                .next_due()
                .map(|at| Duration::from_millis((at - now_ms()).max(0) as u64));
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                joined = committed(&mut self.committing), if self.committing.is_some() => {
                    self.committed(joined, true)?;
                }
                Some(done) = self.done_rx.recv() => {
                    self.finished(done);
                    // All that ended meanwhile, so a stream of ends does not starve the
                    // branches below.
                    while let Ok(done) = self.done_rx.try_recv() {
                        self.finished(done);
                    }
                }
                () = tokio::time::sleep(due.unwrap_or(IDLE)), if due.is_some() => self.flush(),
                // Before the consumer, so a busy topic does not hold checkpoints back.
                _ = tick.tick() => {
                    self.start_checkpoint();
                    self.commit(consumer, CommitMode::Async);
                    self.gauges();
                    if last_prune.elapsed() >= PRUNE_INTERVAL {
                        self.prune();
                        last_prune = Instant::now();
                    }
                }
                m = consumer.recv(), if self.in_flight.len() < MAX_IN_FLIGHT => {
                    self.consume(m).await;
                    // Take in what else is there already, so one flush (and one checkpoint)
                    // serves a burst instead of one per alert.
                    for _ in 1..MAX_BATCH {
                        match consumer.recv().now_or_never() {
                            Some(m) => self.consume(m).await,
                            None => break,
                        }
                    }
                }
            }
        }
        // The checkpoint committing ends (bounded by the transaction timeout); what it
        // recorded as pending is not started now but by the next run.
        if self.committing.is_some() {
            let joined = committed(&mut self.committing).await;
            self.committed(joined, false)?;
        }
        // Deliveries that never started wait in the next checkpoint as pending (their
        // records are unsaved still), for the next run.
        for (id, _) in std::mem::take(&mut self.awaiting) {
            self.in_flight.remove(&id);
        }
        // Deliveries see the same shutdown: waits between retries end at once, attempts
        // under way finish (each channel bounds its own).
        let deadline = tokio::time::Instant::now() + drain;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => self.finished(done),
                _ => break,
            }
        }
        if !self.in_flight.is_empty() {
            tracing::warn!(
                deliveries = self.in_flight.len(),
                "deliveries still in flight at the drain deadline; the next run sends them again"
            );
        }
        self.start_checkpoint();
        if self.committing.is_some() {
            let joined = committed(&mut self.committing).await;
            self.committed(joined, false)?;
        }
        self.commit(consumer, CommitMode::Sync);
        Ok(())
    }

    async fn consume(&mut self, message: KafkaResult<BorrowedMessage<'_>>) {
        let m = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, topic = self.topic, "consumer error; going on");
                return;
            }
        };
        let (partition, offset) = (m.partition(), m.offset());
        let covered = (self.covered.get(&partition).copied())
            .max(self.ledger.next(partition))
            .unwrap_or(i64::MIN);
        if offset < covered {
            self.ledger.skipped(partition, offset);
            self.metrics.alerts.with_label_values(&["covered"]).inc();
            return;
        }
        let payload = m.payload().unwrap_or_default().to_vec();
        drop(m);
        match self.decoder.decode(&payload).await {
            Err(e) => {
                tracing::warn!(partition, offset, error = %e, "alert record does not decode; skipped");
                self.metrics.alerts.with_label_values(&["skipped"]).inc();
                self.ledger.skipped(partition, offset);
            }
            Ok(alert) => {
                let subscriptions = self.subscriptions.borrow().clone();
                let received = self.router.receive(&subscriptions, &alert, now_ms());
                if !received.reachable {
                    self.metrics.unreachable(&alert);
                }
                tracing::debug!(
                    partition,
                    offset,
                    fingerprint = alert.fingerprint,
                    groups = received.joined.len(),
                    "alert routed"
                );
                self.ledger.received(partition, offset, &received.joined);
                self.metrics.alerts.with_label_values(&["routed"]).inc();
            }
        }
        self.positions.insert(partition, offset + 1);
    }

    /// Flushes the groups due now; what they produce starts once a checkpoint holds it.
    fn flush(&mut self) {
        let now = now_ms();
        let subscriptions = self.subscriptions.borrow().clone();
        let silences = self.silences.snapshot();
        let outbounds = self.router.due(&subscriptions, &silences, now);
        let mut produced: HashMap<String, Vec<String>> = HashMap::new();
        for outbound in outbounds {
            let id = delivery_id(&outbound.channel, &outbound.notification.idempotency_key);
            if self.ended.contains_key(&id) {
                self.metrics.suppressed(&outbound.channel, &id);
                continue;
            }
            (produced
                .entry(outbound.notification.group_key.clone())
                .or_default())
            .push(id.clone());
            // The same transitions to the same channel from another group are one delivery.
            if !self.in_flight.insert(id.clone()) {
                continue;
            }
            let entry = Entry::pending(&outbound, now);
            self.unsaved
                .insert(Keys::delivery(&id), Some(entry.to_json()));
            self.awaiting.push((id, outbound));
        }
        self.ledger.flushed(now, &produced);
        if !self.awaiting.is_empty() {
            self.start_checkpoint();
        }
    }

    /// Starts committing what changed since the last checkpoint, in one transaction in the
    /// background, unless a checkpoint is committing already (then the next one starts
    /// when it has). [`Core::committed`] hears how it went.
    fn start_checkpoint(&mut self) {
        if self.committing.is_some() {
            return;
        }
        let Some(mut writer) = self.state.take() else {
            return;
        };
        for (group_key, json) in self.router.take_changed() {
            self.unsaved.insert(self.keys.group(&group_key), json);
        }
        let positions = self.positions.clone();
        let mut values = BTreeMap::new();
        for (&p, &offset) in &positions {
            let position = Position {
                offset,
                held: self.ledger.held(p),
            };
            let value = serde_json::to_vec(&position).expect("serialises");
            if self.saved_values.get(&p) != Some(&value) {
                self.unsaved
                    .insert(self.keys.position(p), Some(value.clone()));
            }
            values.insert(p, value);
        }
        if self.unsaved.is_empty() {
            self.state = Some(writer);
            return;
        }
        let records: Records = Arc::new(std::mem::take(&mut self.unsaved).into_iter().collect());
        let task = tokio::spawn({
            let records = records.clone();
            async move {
                let result = writer.commit(records).await;
                (writer, result)
            }
        });
        self.committing = Some(Committing {
            task,
            records,
            deliveries: std::mem::take(&mut self.awaiting),
            positions,
            values,
            started: Instant::now(),
        });
    }

    /// The checkpoint that was committing has ended. Committed: its deliveries start (with
    /// `start`; at shutdown they wait for the next run) and the next checkpoint starts if
    /// deliveries wait for one. Failed: nothing of it is visible, its records and
    /// deliveries go back to wait for the next tick; only being fenced off by another
    /// instance stops the stage.
    fn committed(
        &mut self,
        joined: Result<(StateWriter, Result<(), Error>), JoinError>,
        start: bool,
    ) -> Result<(), Error> {
        let Some(c) = self.committing.take() else {
            return Ok(());
        };
        let (writer, result) = joined.map_err(|e| Error::Task(e.to_string()))?;
        self.state = Some(writer);
        match result {
            Ok(()) => {
                self.metrics.checkpoints.inc();
                self.metrics
                    .checkpoint_seconds
                    .observe(c.started.elapsed().as_secs_f64());
                self.saved = c.positions;
                self.saved_values = c.values;
                for (id, outbound) in c.deliveries {
                    if start {
                        self.deliverer.spawn(id, outbound, self.done_tx.clone());
                    } else {
                        self.in_flight.remove(&id);
                    }
                }
                if start && !self.awaiting.is_empty() {
                    self.start_checkpoint();
                }
            }
            Err(e @ Error::Fenced { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed; deliveries wait for the next one");
                // What changed since it started is newer than what it held.
                let records = Arc::try_unwrap(c.records).unwrap_or_else(|shared| (*shared).clone());
                for (key, value) in records {
                    self.unsaved.entry(key).or_insert(value);
                }
                let mut deliveries = c.deliveries;
                deliveries.append(&mut self.awaiting);
                self.awaiting = deliveries;
            }
        }
        Ok(())
    }

    fn finished(&mut self, done: Finished) {
        self.in_flight.remove(&done.id);
        if done.ended {
            self.ended.insert(done.id.clone(), now_ms());
            self.ledger.ended(&done.id);
        }
    }

    /// Commits, per partition, the lower of the ledger's committable offset and the
    /// checkpoint's position.
    fn commit(&mut self, consumer: &StreamConsumer, mode: CommitMode) {
        let mut offsets = TopicPartitionList::new();
        let mut wanted = Vec::new();
        for (p, committable) in self.ledger.committable() {
            let Some(&saved) = self.saved.get(&p) else {
                continue;
            };
            let offset = committable.min(saved);
            if self.committed.get(&p) == Some(&offset) {
                continue;
            }
            if offsets
                .add_partition_offset(&self.topic, p, Offset::Offset(offset))
                .is_ok()
            {
                wanted.push((p, offset));
            }
        }
        if wanted.is_empty() {
            return;
        }
        match consumer.commit(&offsets, mode) {
            Ok(()) => self.committed.extend(wanted),
            Err(e) => tracing::warn!(error = %e, "offset commit failed; retrying at the next tick"),
        }
    }

    fn gauges(&self) {
        self.metrics.groups.set(self.router.groups() as i64);
        self.metrics.unfinished.set(self.ledger.unfinished() as i64);
        self.metrics
            .silences
            .set(self.silences.active(now_ms()) as i64);
    }

    fn prune(&mut self) {
        if let Some(horizon) = self.horizon_ms {
            let oldest = now_ms() - horizon;
            self.ended.retain(|_, at| *at >= oldest);
        }
    }
}

/// Waits for the checkpoint committing, if any (else forever: the branch is off then).
async fn committed(
    committing: &mut Option<Committing>,
) -> Result<(StateWriter, Result<(), Error>), JoinError> {
    match committing {
        Some(c) => (&mut c.task).await,
        None => std::future::pending().await,
    }
}
