//! The rules stage's consume-process-produce loop, on its own thread. One consumer reads
//! `relec.incidents` and the repartition topic in one group; transactional producers (two,
//! taking turns, one transaction at a time) write re-keyed incidents, alerts and changelog
//! records. Records of the repartition topic are queued per shard and processed on other
//! threads while this one reads on ([`Lanes`]), shards side by side on the machine's cores
//! (each shard's in the order read).
//! An instance that owns every partition skips that topic ([`Path::Direct`]): its copies
//! are queued straight away.
//! Every `commit_interval` (further apart over a backlog, where commits are slow: see
//! [`spacing`]), or as soon as the input is read to its end when the
//! transaction holds something urgent, the changed state is checkpointed and the whole
//! transaction (outputs, state, offsets of both topics) commits at once, so after a crash
//! or a rebalance the input is read again exactly from where the committed state and
//! alerts left off.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use prometheus::{
    IntCounter, IntGaugeVec,
    local::{LocalHistogram, LocalIntCounter},
};
use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance},
    error::KafkaError,
    message::{BorrowedMessage, Header, Headers, OwnedHeaders},
    producer::{BaseProducer, BaseRecord, Producer, PurgeConfig},
    statistics::Statistics,
    types::RDKafkaErrorCode,
};
use relec_plumbing::kafka::{Kafka, learn_brokers, polled, rejected};
use relec_schemas::{Alert, AlertStatus, Decoder, Encoder, IncidentEvent, validate::validate};
use rhai::Engine;
use tokio::{runtime::Handle, sync::watch};
use tokio_util::sync::CancellationToken;

use crate::{
    checkpoint::Record,
    dims::Interner,
    error::Error,
    events::RulesMetrics,
    processor::{Key, Output, Processor, Settings, each_route},
    reload::RuleSet,
    rule::{Rule, Trigger},
};

use super::{
    frame::{self, FRAME_HEADER, FRAME_VERSION, Pending},
    lanes::{Job, Lanes},
    restore::{Sizes, restore},
    sources::{Marker, Sources},
};

/// Header of the watermark markers the router writes to every repartition partition.
pub const WATERMARK_HEADER: &str = "relec.watermark";

/// How long one poll waits for a record before the loop looks at commits and reloads.
const POLL: Duration = Duration::from_millis(20);
/// Records taken at most, of those fetched already, before the loop looks again.
const READ_RUN: usize = 256;
/// Bytes queued over all shards before they are handed to other threads: enough to keep
/// every thread busy for a while, little enough that an alert waits a few milliseconds at
/// most. Whatever is queued is processed at once when the input is read to its end.
const BATCH_BYTES: usize = 1 << 20;
/// Bytes queued for shards away on the lanes past which the reading thread waits for them
/// rather than reads on: memory stays bounded when the lanes fall behind.
const MAX_QUEUED_BYTES: usize = 4 * BATCH_BYTES;
/// How long a transaction call may take before the worker gives up and starts over.
pub(crate) const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Notes rebalances for the loop, and turns librdkafka's statistics into the lag gauge.
pub(crate) struct Context {
    rebalanced: AtomicBool,
    lag: IntGaugeVec,
}

impl Context {
    pub(crate) fn new(lag: IntGaugeVec) -> Self {
        Self {
            rebalanced: AtomicBool::new(false),
            lag,
        }
    }
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            let mut total = 0;
            for p in t.partitions.values() {
                // librdkafka's own consumer_lag counts from the committed offset, which a
                // consumer committing through a producer's transactions never learns: the
                // lag is measured from what was handed to the stage instead.
                if p.partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                let position = [p.app_offset, p.next_offset, p.lo_offset]
                    .into_iter()
                    .find(|o| *o >= 0)
                    .unwrap_or(0);
                let lag = (end - position).max(0);
                total += lag;
            }
            self.lag.with_label_values(&[topic]).set(total);
        }
    }
}

impl ConsumerContext for Context {
    /// Revoked partitions are resumed while they are still assigned: librdkafka keeps a
    /// partition's pause through a reassignment, so one paused to catch up (see
    /// [`Worker::start_catching_up`]) would never be read again, and resuming it after
    /// the new assignment may fetch from where it stood rather than the committed offset.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance
            && let Err(e) = consumer.resume(revoked)
        {
            tracing::warn!(error = %e, "revoked partitions could not be resumed");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::SeqCst);
    }
}

/// Topic names the worker reads and writes.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    pub incidents: String,
    pub repartition: String,
    pub changelog: String,
    pub alerts: String,
    pub rejected: String,
}

/// The state of one repartition partition.
pub(crate) struct Shard {
    processor: Processor,
    /// Checkpointed size of each changelog entry, for the state-size gauge.
    sizes: Sizes,
    /// Changed since the last commit: an abort makes it stale.
    touched: bool,
}

impl Shard {
    /// The changed state as changelog records; the state-size gauge follows.
    pub(crate) fn checkpoint(&mut self) -> Result<Vec<Record>, Error> {
        let records = self.processor.checkpoint()?;
        for (key, value) in &records {
            self.sizes.set(key, value.as_deref());
        }
        Ok(records)
    }
}

/// What is queued for a shard, in the order it came: a record of the repartition topic,
/// or copies this instance routed to a shard of its own.
pub(crate) enum Input {
    Frame { offset: i64, payload: Vec<u8> },
    Marker(Marker),
    Copies(Pending),
}

/// How copies reach this instance's shards.
#[derive(Debug, PartialEq)]
enum Path {
    /// Through the repartition topic, in order with the copies of other instances and
    /// everyone's watermark markers.
    Log,
    /// Straight to their shard's queue, and markers are applied at each commit: this
    /// instance owns every partition of both topics and has read the repartition topic
    /// through, so nothing else writes there and nothing there is left to come after.
    Direct,
    /// It owns every partition, and reads the repartition topic through (each partition
    /// to the offset given) with the incidents paused; after [`CATCH_UP`] without getting
    /// there it settles for [`Path::Log`].
    CatchingUp {
        since: Instant,
        ends: BTreeMap<i32, i64>,
    },
}

/// How long a sole owner waits to read the repartition topic through before it takes
/// [`Path::Direct`] (an open transaction of a departed instance holds the end back).
const CATCH_UP: Duration = Duration::from_secs(30);

pub(crate) struct Worker {
    pub kafka: Kafka,
    /// Transactions take turns on these ([`Kafka::turn_id`]; one commit in ten of a live
    /// stream waited for the markers of the one before on a single producer).
    producers: [BaseProducer; 2],
    /// The one with the open transaction.
    turn: usize,
    pub topics: Topics,
    /// Partitions of the repartition (and changelog) topic.
    pub partitions: i32,
    pub rules: watch::Receiver<RuleSet>,
    pub engine: Arc<Engine>,
    pub settings: Settings,
    pub decoder: Decoder<IncidentEvent>,
    pub alerts: Arc<Encoder<Alert>>,
    pub metrics: RulesMetrics,
    pub runtime: Handle,
    pub skew: Duration,
    pub commit_interval: Duration,
    /// `rules.max_commit_share`: see [`spacing`].
    max_commit_share: f64,
    /// How long after the last commit the next one is due by the interval.
    commit_spacing: Duration,
    pub advance_idle_after: Option<Duration>,
    live: Vec<Arc<Rule>>,
    shards: BTreeMap<i32, Shard>,
    /// Records read for each shard and not yet processed (see [`Worker::drain`]), and
    /// their frames' size.
    queued: BTreeMap<i32, Vec<Input>>,
    queued_bytes: usize,
    /// Threads shards are processed on (see [`Worker::launch`]), and the partitions of
    /// the shards there.
    lanes: Lanes,
    away: BTreeSet<i32>,
    /// Changelog records of the shards checkpointed for the commit in progress.
    records: Vec<(i32, Record)>,
    /// Copies routed but not yet written, by repartition partition.
    frames: BTreeMap<i32, Pending>,
    /// Group keys, each built once, with their repartition partition.
    keys: Interner<i32>,
    /// The keys of the incident being routed (kept for its capacity).
    routed: Vec<(Key, i32)>,
    /// Event time at the router: what each assigned input partition vouches for.
    sources: Sources,
    /// Partitions of the incidents topic.
    inputs: i32,
    path: Path,
    /// Incident partitions paused while the repartition topic is read through.
    paused: Option<TopicPartitionList>,
    /// Asks where changelog partitions end before a restore (see [`restore`]); made once.
    probe: Option<BaseConsumer>,
    last_input: Instant,
    /// Something was consumed or produced since the last commit.
    pending: bool,
    /// Something in the open transaction is urgent (an alert transition, or an incident an
    /// immediate rule takes): it commits as soon as the input is read up to its end.
    urgent: bool,
    last_commit: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kafka: Kafka,
        producers: [BaseProducer; 2],
        topics: Topics,
        (partitions, sources): (i32, i32),
        rules: watch::Receiver<RuleSet>,
        engine: Arc<Engine>,
        settings: Settings,
        alerts: Arc<Encoder<Alert>>,
        metrics: RulesMetrics,
        config: &relec_plumbing::config::RulesConfig,
        skew: Duration,
        runtime: Handle,
    ) -> Self {
        let decoder = Decoder::new(kafka.registry().cloned());
        let live = rules.borrow().rules.to_vec();
        let lanes = Lanes::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            &metrics,
        );
        Self {
            kafka,
            producers,
            turn: 0,
            topics,
            partitions,
            rules,
            engine,
            settings,
            decoder,
            alerts,
            metrics,
            runtime,
            skew,
            commit_interval: config.commit_interval,
            max_commit_share: config.max_commit_share,
            commit_spacing: config.commit_interval,
            advance_idle_after: config.advance_idle_after,
            live,
            shards: BTreeMap::new(),
            queued: BTreeMap::new(),
            queued_bytes: 0,
            lanes,
            away: BTreeSet::new(),
            records: Vec::new(),
            frames: BTreeMap::new(),
            keys: Interner::default(),
            routed: Vec::new(),
            sources: Sources::new(sources),
            inputs: sources,
            path: Path::Log,
            paused: None,
            probe: None,
            last_input: Instant::now(),
            pending: false,
            urgent: false,
            last_commit: Instant::now(),
        }
    }

    /// Runs until `shutdown`, then commits what was done. An error means the transaction
    /// was aborted (or the producer fenced): the caller starts a new worker, which picks
    /// up from the last commit.
    pub(crate) fn run(
        &mut self,
        consumer: &BaseConsumer<Context>,
        shutdown: &CancellationToken,
    ) -> Result<(), Error> {
        for producer in &self.producers {
            polled::init_transactions(producer, &self.topics.alerts, TXN_TIMEOUT)?;
        }
        self.producer().begin_transaction()?;
        let result = self.work(consumer, shutdown);
        if result.is_err() {
            self.metrics.aborts.inc();
            let _ = self.abort();
        }
        result
    }

    /// The producer of the open transaction.
    fn producer(&self) -> &BaseProducer {
        &self.producers[self.turn]
    }

    /// Aborts the open transaction. What is still queued is dropped first and the
    /// delivery reports of what was in flight are served: librdkafka's abort waits for
    /// them, and nothing else polls this producer meanwhile.
    fn abort(&self) -> Result<(), Error> {
        self.producer()
            .purge(PurgeConfig::default().queue().inflight());
        polled::await_acks(self.producer(), Instant::now() + TXN_TIMEOUT);
        Ok(self.producer().abort_transaction(TXN_TIMEOUT)?)
    }

    fn work(
        &mut self,
        consumer: &BaseConsumer<Context>,
        shutdown: &CancellationToken,
    ) -> Result<(), Error> {
        loop {
            if shutdown.is_cancelled() {
                return self.commit(consumer);
            }
            self.reload()?;
            // A run of records already fetched is taken before the loop looks at commits,
            // reloads and the other producer: that housekeeping per record was about a
            // twentieth of this thread's time.
            let mut caught_up = false;
            for taken in 0..READ_RUN {
                // With something urgent in the transaction, only what is there already is
                // taken: nothing there means the input is read to its end, and it commits
                // now. Otherwise only the run's first poll waits, and a run ends at the
                // first record not fetched yet.
                let wait = if self.urgent || taken > 0 {
                    Duration::ZERO
                } else {
                    POLL
                };
                let message = consumer.poll(wait);
                if message.is_none() && taken > 0 && !self.urgent {
                    break;
                }
                caught_up = self.take(consumer, message)?;
                if caught_up {
                    break;
                }
            }
            if caught_up {
                self.drain()?;
            }
            self.catch_up(consumer)?;
            // The other producer has nothing in flight: its commit waited for every
            // acknowledgement.
            self.producer().poll(Duration::ZERO);
            self.advance_idle();
            if self.last_commit.elapsed() >= self.commit_spacing || (self.urgent && caught_up) {
                self.commit(consumer)?;
            }
        }
    }

    /// One poll's outcome: a record routed or queued, or an error. True if the input is
    /// read to its end (nothing came, or a partition's end was reached).
    fn take(
        &mut self,
        consumer: &BaseConsumer<Context>,
        message: Option<Result<BorrowedMessage<'_>, KafkaError>>,
    ) -> Result<bool, Error> {
        let caught_up = matches!(message, None | Some(Err(KafkaError::PartitionEOF(_))));
        if consumer.context().rebalanced.swap(false, Ordering::SeqCst) {
            self.rebalanced(consumer)?;
        }
        match message {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            // Every broker gone: librdkafka fails the open transaction only when its
            // records time out (30 s), however soon the broker is back. Given up now,
            // the worker starts again from the last commit as soon as it is.
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) => {
                return Err(e.into());
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            Some(Ok(m)) => {
                self.pending = true;
                if m.topic() == self.topics.incidents {
                    self.route(&m)?;
                } else if m.topic() == self.topics.repartition {
                    self.enqueue(&m)?;
                }
            }
        }
        if !caught_up && self.queued_bytes >= BATCH_BYTES {
            self.launch()?;
        }
        Ok(caught_up)
    }

    /// Takes up a new rule set from the reloader (what was read before it is processed
    /// with the rules it was read under).
    fn reload(&mut self) -> Result<(), Error> {
        if !self.rules.has_changed().unwrap_or(false) {
            return Ok(());
        }
        self.drain()?;
        let set = self.rules.borrow_and_update().clone();
        self.live = set.rules.to_vec();
        for shard in self.shards.values_mut() {
            shard.processor.set_rules(self.live.clone());
        }
        tracing::info!(
            generation = set.generation,
            rules = self.live.len(),
            "rule set taken up"
        );
        Ok(())
    }

    /// An incident from `relec.incidents`: a copy to the partition of each group key the
    /// rules need, gathered into that partition's next frame (undecodable or invalid ones
    /// are counted, copied to the rejected topic in the same transaction, and passed over).
    fn route(&mut self, m: &BorrowedMessage<'_>) -> Result<(), Error> {
        let now = Instant::now();
        self.last_input = now;
        self.metrics.incidents.inc();
        let payload = m.payload().unwrap_or_default();
        let event = match self.decode(payload) {
            Ok(e) => e,
            Err(e) => return self.reject(m, "decode", &e.to_string()),
        };
        // Checked against when the record was written, so a replay decides the same.
        let written = m.timestamp().to_millis().unwrap_or(i64::MAX);
        let problems = validate(&event, written, self.skew);
        if !problems.is_empty() {
            let detail: Vec<String> = (problems.iter())
                .map(|p| format!("{}: {}", p.pointer, p.reason))
                .collect();
            return self.reject(m, "invalid", &detail.join("; "));
        }
        (self.sources).record(m.partition(), event.reported_at, now);
        let event = Arc::new(event);
        self.urgent = self.urgent
            || (self.live.iter()).any(|r| r.trigger == Trigger::Immediate && r.matches(&event));
        let (keys, partitions) = (&mut self.keys, self.partitions);
        let mut routed = std::mem::take(&mut self.routed);
        let mut failed = None;
        each_route(&self.live, &event, &mut |labels| match keys
            .get(labels, |key| frame::partition_of(key, partitions))
        {
            Ok(key) => routed.push(key),
            Err(e) => failed = Some(e),
        });
        if let Some(e) = failed {
            return Err(e);
        }
        for (key, partition) in routed.drain(..) {
            if self.path == Path::Direct {
                self.queue_local(partition, key, &event, payload.len());
                continue;
            }
            // Read although paused: the topic now gets new copies, it cannot be read through.
            if matches!(self.path, Path::CatchingUp { .. }) {
                self.path = Path::Log;
            }
            let pending = self.frames.entry(partition).or_default();
            pending.push(key, &event, payload.len());
            if pending.full() {
                self.write_frame(partition)?;
            }
        }
        self.routed = routed;
        Ok(())
    }

    /// Queues a copy for its shard, to be processed without a trip through the repartition
    /// topic ([`Path::Direct`]): its state commits in the same transaction as the offset of
    /// the incident it came from, which is all the trip would have bought.
    fn queue_local(&mut self, partition: i32, key: Key, event: &Arc<IncidentEvent>, size: usize) {
        let inputs = self.queued.entry(partition).or_default();
        if !matches!(inputs.last(), Some(Input::Copies(_))) {
            inputs.push(Input::Copies(Pending::default()));
        }
        if let Some(Input::Copies(pending)) = inputs.last_mut() {
            self.queued_bytes += pending.push(key, event, size);
        }
    }

    /// Writes the copies gathered for `partition` as one frame record.
    fn write_frame(&mut self, partition: i32) -> Result<(), Error> {
        let Some(pending) = self.frames.get_mut(&partition) else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        let payload = pending.take()?;
        let headers = OwnedHeaders::new().insert(Header {
            key: FRAME_HEADER,
            value: Some(FRAME_VERSION),
        });
        self.send(
            BaseRecord::<[u8], [u8]>::to(&self.topics.repartition)
                .partition(partition)
                .payload(payload.as_slice())
                .headers(headers),
        )
    }

    /// An incident that does not decode or validate: counted, and kept as it arrived in
    /// the rejected topic for an operator (in this transaction, so once).
    fn reject(&self, m: &BorrowedMessage<'_>, reason: &str, detail: &str) -> Result<(), Error> {
        self.skip(m, detail);
        let headers = rejected::headers(reason, detail, m.topic(), m.partition(), m.offset());
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topics.rejected)
            .payload(m.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        self.send(record)
    }

    fn skip(&self, m: &BorrowedMessage<'_>, reason: &str) {
        skip(&self.metrics, m.partition(), m.offset(), reason);
    }

    /// A frame of routed incidents or a watermark marker on one repartition partition,
    /// queued for its shard.
    fn enqueue(&mut self, m: &BorrowedMessage<'_>) -> Result<(), Error> {
        let partition = m.partition();
        if !self.shards.contains_key(&partition) && !self.away.contains(&partition) {
            // Only a rebalance changes what is assigned, and it was handled: give up this
            // transaction and start again from the last commit rather than guess.
            return Err(Error::NotAssigned(partition));
        }
        let header = |name: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value))
        };
        let input = if let Some(value) = header(WATERMARK_HEADER) {
            let Ok(marker) = serde_json::from_slice::<Marker>(value) else {
                self.skip(m, "unreadable watermark marker");
                return Ok(());
            };
            Input::Marker(marker)
        } else if header(FRAME_HEADER) != Some(FRAME_VERSION) {
            self.skip(m, "not a frame of this build's format");
            return Ok(());
        } else {
            let payload = m.payload().unwrap_or_default().to_vec();
            self.queued_bytes += payload.len();
            Input::Frame {
                offset: m.offset(),
                payload,
            }
        };
        self.queued.entry(partition).or_default().push(input);
        Ok(())
    }

    /// Processes everything queued and writes the transitions: every shard is back here
    /// afterwards.
    fn drain(&mut self) -> Result<(), Error> {
        loop {
            self.launch()?;
            self.settle()?;
            if self.queued.is_empty() {
                return Ok(());
            }
        }
    }

    /// Hands the records queued for each shard that is here to the lanes, while this thread
    /// reads on; a shard away keeps its records queued until it is back. With much queued
    /// for shards away, waits for them instead of reading on.
    fn launch(&mut self) -> Result<(), Error> {
        self.collect(false)?;
        self.dispatch();
        while self.queued_bytes >= MAX_QUEUED_BYTES && !self.away.is_empty() {
            self.collect(true)?;
            self.dispatch();
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let ready: Vec<i32> = (self.queued.keys())
            .filter(|p| self.shards.contains_key(p))
            .copied()
            .collect();
        for partition in ready {
            let (Some(inputs), Some(shard)) = (
                self.queued.remove(&partition),
                self.shards.remove(&partition),
            ) else {
                continue;
            };
            self.queued_bytes = self.queued_bytes.saturating_sub(size(&inputs));
            self.away.insert(partition);
            self.lanes.send(Job {
                partition,
                shard,
                inputs,
                checkpoint: false,
            });
        }
    }

    /// Takes back the shards that are done (waiting for one if `wait`) and writes their
    /// transitions, each shard's in order.
    fn collect(&mut self, mut wait: bool) -> Result<(), Error> {
        while let Some(done) = self.lanes.back(wait) {
            wait = false;
            self.away.remove(&done.partition);
            self.shards.insert(done.partition, done.shard);
            let records = done.records?;
            self.records
                .extend(records.into_iter().map(|r| (done.partition, r)));
            for out in done.outputs {
                self.emit(out)?;
            }
        }
        Ok(())
    }

    /// Waits until every shard is back from the lanes.
    fn settle(&mut self) -> Result<(), Error> {
        while !self.away.is_empty() {
            self.collect(true)?;
        }
        Ok(())
    }

    /// Checkpoints the shards changed since the last commit, side by side on the lanes,
    /// into [`Worker::records`]. Every shard is here before and after.
    fn checkpoint(&mut self) -> Result<(), Error> {
        let touched: Vec<i32> = (self.shards.iter())
            .filter(|(_, shard)| shard.touched)
            .map(|(p, _)| *p)
            .collect();
        for partition in touched {
            if let Some(shard) = self.shards.remove(&partition) {
                self.away.insert(partition);
                self.lanes.send(Job {
                    partition,
                    shard,
                    inputs: Vec::new(),
                    checkpoint: true,
                });
            }
        }
        self.settle()
    }

    /// Queues the router's new watermark markers for every shard ([`Path::Direct`]):
    /// where a shard would have read them, after every copy routed before them. What they
    /// close goes into the open transaction. (This instance owns every partition.)
    fn queue_markers(&mut self) {
        let markers = self.sources.markers();
        if markers.is_empty() {
            return;
        }
        self.pending = true;
        for partition in 0..self.partitions {
            let queue = self.queued.entry(partition).or_default();
            queue.extend(markers.iter().map(|m| Input::Marker(*m)));
        }
    }

    /// Writes a processor's transitions (its evaluations and errors were counted where it
    /// ran: [`count`]).
    fn emit(&mut self, out: Output) -> Result<(), Error> {
        self.urgent |= !out.transitions.is_empty();
        for alert in &out.transitions {
            let status = match alert.status {
                AlertStatus::Firing => "firing",
                AlertStatus::Resolved => "resolved",
            };
            self.metrics.transitions.with_label_values(&[status]).inc();
            tracing::info!(rule = %alert.rule_id, fingerprint = %alert.fingerprint, status, labels = ?alert.labels, "alert transition");
            let payload = self.alerts.encode(alert)?;
            self.send(
                BaseRecord::to(&self.topics.alerts)
                    .key(alert.fingerprint.as_bytes())
                    .payload(payload.as_slice()),
            )?;
        }
        Ok(())
    }

    fn decode(&self, payload: &[u8]) -> Result<IncidentEvent, relec_schemas::Error> {
        if payload.first() == Some(&0xC3) {
            self.decoder.decode_single_object(payload)
        } else {
            self.runtime.block_on(self.decoder.decode(payload))
        }
    }

    /// With no input for `advance_idle_after`, event time follows the wall clock.
    fn advance_idle(&mut self) {
        let Some(idle) = self.advance_idle_after else {
            return;
        };
        if self.last_input.elapsed() < idle {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.sources.follow_clock(now);
    }

    /// Asks the broker about the input partitions whose idleness is in question: read to
    /// their end (or empty), or not.
    fn find_idle(&mut self, consumer: &BaseConsumer<Context>) {
        let asked = Instant::now();
        let check = self.sources.to_check(asked);
        if check.is_empty() {
            return;
        }
        let Ok(positions) = consumer.position() else {
            return;
        };
        let offset = |list: &TopicPartitionList, p: i32| {
            list.find_partition(&self.topics.incidents, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
        };
        // librdkafka knows a position only once a record has been consumed there: until
        // then (after a start or a rebalance) the group's committed offset is where reading
        // stands.
        let mut unknown = TopicPartitionList::new();
        for &p in check.iter().filter(|&&p| offset(&positions, p).is_none()) {
            unknown.add_partition(&self.topics.incidents, p);
        }
        let committed = match unknown.count() {
            0 => TopicPartitionList::new(),
            _ => (consumer.committed_offsets(unknown, Duration::from_secs(1))).unwrap_or_default(),
        };
        for p in check {
            let Ok((low, high)) =
                consumer.fetch_watermarks(&self.topics.incidents, p, Duration::from_secs(1))
            else {
                continue;
            };
            let position = offset(&positions, p).or_else(|| offset(&committed, p));
            let at_end = low == high || position.is_some_and(|o| o >= high);
            self.sources.checked(p, at_end, asked);
        }
    }

    /// Checkpoints the changed state, marks the partitions with the router's watermark,
    /// and commits it all with the consumed offsets.
    fn commit(&mut self, consumer: &BaseConsumer<Context>) -> Result<(), Error> {
        self.find_idle(consumer);
        // Nothing is routed while catching up: markers wait for the path to be chosen. On
        // the direct path they are queued for the shards, where they would have read them.
        let markers = match self.path {
            Path::Log => self.sources.markers(),
            Path::CatchingUp { .. } | Path::Direct => Vec::new(),
        };
        if self.path == Path::Direct {
            self.queue_markers();
        }
        // Nothing read since the last commit: nothing queued or away either.
        if !self.pending && markers.is_empty() {
            self.last_commit = Instant::now();
            self.commit_spacing = self.commit_interval;
            return Ok(());
        }
        let direct = self.path == Path::Direct;
        self.drain()?;
        let started = Instant::now();
        self.checkpoint()?;
        // Each shard's records in its own order (they came back in one piece); the order
        // between partitions means nothing.
        let records = std::mem::take(&mut self.records);
        for (partition, (key, value)) in &records {
            let record = BaseRecord::to(&self.topics.changelog)
                .key(key.as_slice())
                .partition(*partition);
            self.send(match value {
                Some(v) => record.payload(v.as_slice()),
                None => record,
            })?;
        }
        let partitions: Vec<i32> = self.frames.keys().copied().collect();
        for partition in partitions {
            self.write_frame(partition)?;
        }
        for marker in markers.into_iter().filter(|_| !direct) {
            let value = serde_json::to_vec(&marker)?;
            for partition in 0..self.partitions {
                let headers = OwnedHeaders::new().insert(Header {
                    key: WATERMARK_HEADER,
                    value: Some(&value),
                });
                self.send(
                    BaseRecord::<[u8], [u8]>::to(&self.topics.repartition)
                        .partition(partition)
                        .headers(headers),
                )?;
            }
        }
        let mut offsets = TopicPartitionList::new();
        for e in consumer.position()?.elements() {
            if let Offset::Offset(o) = e.offset() {
                offsets.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o))?;
            }
        }
        // commit_transaction flushes, but rdkafka's flush polls in steps of up to 100 ms;
        // waiting for the acknowledgements first saves most of that.
        polled::await_acks(self.producer(), Instant::now() + TXN_TIMEOUT);
        let group = consumer.group_metadata().ok_or(Error::NotAssigned(-1))?;
        self.producer()
            .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
        self.producer().commit_transaction(TXN_TIMEOUT)?;
        self.turn = (self.turn + 1) % self.producers.len();
        self.producer().begin_transaction()?;
        self.pending = false;
        self.urgent = false;
        for shard in self.shards.values_mut() {
            shard.touched = false;
        }
        self.last_commit = Instant::now();
        let took = started.elapsed();
        self.commit_spacing = spacing(took, self.commit_interval, self.max_commit_share);
        self.metrics.commits.inc();
        self.metrics.commit_seconds.observe(took.as_secs_f64());
        self.gauges();
        Ok(())
    }

    fn gauges(&self) {
        let m = &self.metrics;
        let (mut keys, mut bytes, mut pending, mut firing) = (0, 0, 0, 0);
        let mut watermark = i64::MIN;
        for shard in self.shards.values() {
            keys += shard.processor.keys();
            bytes += shard.sizes.total();
            let (p, f) = shard.processor.alert_counts();
            pending += p;
            firing += f;
            watermark = watermark.max(shard.processor.watermark());
        }
        m.state_keys.set(keys as i64);
        m.state_bytes.set(bytes as i64);
        m.alerts.with_label_values(&["pending"]).set(pending as i64);
        m.alerts.with_label_values(&["firing"]).set(firing as i64);
        m.partitions.set(self.shards.len() as i64);
        if watermark > 0 {
            m.watermark.set(watermark / 1000);
        }
    }

    /// After a rebalance: what was not committed is given up (the input is read again
    /// from the committed offsets: with the eager assignment the stage's consumer uses,
    /// every partition is revoked and assigned again at its committed offset), shards no
    /// longer assigned are dropped, and newly assigned ones, or ones changed since the
    /// commit, are read back from the changelog.
    fn rebalanced(&mut self, consumer: &BaseConsumer<Context>) -> Result<(), Error> {
        self.settle()?;
        self.path = Path::Log;
        // Resumed as they were revoked (see [`Context::pre_rebalance`]).
        self.paused = None;
        if self.pending {
            self.metrics.aborts.inc();
            self.abort()?;
            self.producer().begin_transaction()?;
            self.pending = false;
            self.urgent = false;
            self.frames.clear();
            self.queued.clear();
            self.queued_bytes = 0;
            self.sources.restart(Instant::now());
        }
        let assignment = consumer.assignment()?;
        tracing::info!(
            partitions = ?assignment
                .elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>(),
            "partitions assigned"
        );
        let inputs: Vec<i32> = assignment
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topics.incidents)
            .map(|e| e.partition())
            .collect();
        self.sources.assign(&inputs, Instant::now());
        let assigned: Vec<i32> = assignment
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topics.repartition)
            .map(|e| e.partition())
            .collect();
        let owns_all =
            inputs.len() == self.inputs as usize && assigned.len() == self.partitions as usize;
        self.shards
            .retain(|p, shard| assigned.contains(p) && !shard.touched);
        let missing: Vec<i32> = assigned
            .into_iter()
            .filter(|p| !self.shards.contains_key(p))
            .collect();
        if !missing.is_empty() {
            let started = Instant::now();
            if self.probe.is_none() {
                self.probe = Some(self.probe_changelog()?);
            }
            let probe = self.probe.as_ref().expect("made above");
            let restored = restore(&self.kafka, probe, &self.topics.changelog, &missing, || {
                Processor::new(self.engine.clone(), self.live.clone(), self.settings)
            })?;
            for (partition, (processor, sizes)) in restored {
                self.shards.insert(
                    partition,
                    Shard {
                        processor,
                        sizes,
                        touched: false,
                    },
                );
            }
            self.metrics.restores.inc_by(missing.len() as u64);
            self.metrics
                .restore_seconds
                .observe(started.elapsed().as_secs_f64());
            tracing::info!(partitions = ?missing, took = ?started.elapsed(), "state restored from the changelog");
        }
        if owns_all {
            self.start_catching_up(consumer, &inputs)?;
        }
        self.gauges();
        Ok(())
    }

    /// A client that asks where changelog partitions begin and end. It reads uncommitted:
    /// its high watermark counts the records of a transaction still open, or committed
    /// with its markers not yet written, where a read_committed client's end is the last
    /// stable offset, held at the first record of that transaction (such a partition
    /// would look empty, and its state be lost).
    fn probe_changelog(&self) -> Result<BaseConsumer, Error> {
        let probe: BaseConsumer = (self.kafka.client_config("rules-probe"))
            .set("isolation.level", "read_uncommitted")
            .create()?;
        // Leaders it does not know yet it would ask for again only after 500 ms.
        learn_brokers(probe.client(), &self.topics.changelog, TXN_TIMEOUT)?;
        Ok(probe)
    }

    /// As the only instance: pauses the incidents and notes how far the repartition topic
    /// must be read before copies can skip it. Stays on [`Path::Log`] if the broker cannot
    /// say.
    fn start_catching_up(
        &mut self,
        consumer: &BaseConsumer<Context>,
        inputs: &[i32],
    ) -> Result<(), Error> {
        let topic = &self.topics.repartition;
        let mut list = TopicPartitionList::new();
        for p in 0..self.partitions {
            list.add_partition(topic, p);
        }
        let Ok(committed) = consumer.committed_offsets(list, Duration::from_secs(5)) else {
            return Ok(());
        };
        let mut ends = BTreeMap::new();
        for p in 0..self.partitions {
            let Ok((low, high)) = consumer.fetch_watermarks(topic, p, Duration::from_secs(5))
            else {
                return Ok(());
            };
            let from = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.max(low),
                _ => low,
            };
            // Every transaction ends with a control record, which the reader does not
            // always step over: read through once past the last record before it.
            if high - 1 > from {
                ends.insert(p, high - 1);
            }
        }
        let mut paused = TopicPartitionList::new();
        for &p in inputs {
            paused.add_partition(&self.topics.incidents, p);
        }
        consumer.pause(&paused)?;
        self.paused = Some(paused);
        self.path = Path::CatchingUp {
            since: Instant::now(),
            ends,
        };
        self.catch_up(consumer)
    }

    /// Moves from [`Path::CatchingUp`] once the repartition topic is read through (or
    /// given up on), and resumes the incidents.
    fn catch_up(&mut self, consumer: &BaseConsumer<Context>) -> Result<(), Error> {
        if let Path::CatchingUp { since, ends } = &self.path {
            if since.elapsed() > CATCH_UP {
                tracing::warn!(waited = ?CATCH_UP, "the repartition topic was not read through: copies keep going through it");
                self.path = Path::Log;
            } else {
                let positions = consumer.position()?;
                let through = ends.iter().all(|(&p, &end)| {
                    positions
                        .find_partition(&self.topics.repartition, p)
                        .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= end))
                });
                if !through {
                    return Ok(());
                }
                self.drain()?;
                self.path = Path::Direct;
                tracing::info!(
                    "this instance owns every partition: copies go straight to their shards"
                );
            }
        }
        if let Some(paused) = self.paused.take() {
            consumer.resume(&paused)?;
        }
        Ok(())
    }

    /// Enqueues a record, waiting while the producer's queue is full.
    fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<(), Error> {
        Ok(polled::send(
            self.producer(),
            record,
            Instant::now() + TXN_TIMEOUT,
        )?)
    }
}

/// How long after a commit that took `took` the next is due by the interval: `interval`,
/// or longer when commits are slow, so that they take at most `share` of the time (a
/// backlog's commits rewrite much of the state; at the interval they would keep the loop
/// from reading about a quarter of the time), but at most ten intervals. Urgent
/// transactions still commit as soon as the input is read to its end.
fn spacing(took: Duration, interval: Duration, share: f64) -> Duration {
    let busy = took.mul_f64((1.0 - share) / share);
    busy.clamp(interval, interval * 10)
}

/// Bytes of queued records, as counted against [`BATCH_BYTES`].
fn size(inputs: &[Input]) -> usize {
    (inputs.iter())
        .map(|i| match i {
            Input::Frame { payload, .. } => payload.len(),
            Input::Marker(_) => 1,
            Input::Copies(pending) => pending.bytes(),
        })
        .sum()
}

/// Processes one shard's queued records in order: a marker moves its event time, a
/// frame's copies go through its processor. Only outputs with something to write are kept.
pub(crate) fn process(
    partition: i32,
    shard: &mut Shard,
    inputs: Vec<Input>,
    metrics: &RulesMetrics,
) -> Vec<Output> {
    let mut tally = Tally::new(metrics);
    let mut outputs = Vec::new();
    let mut keep = |out: Output, tally: &mut Tally| {
        tally.count(&out);
        if !out.transitions.is_empty() {
            outputs.push(out);
        }
    };
    shard.touched = true;
    for input in inputs {
        let copies = match input {
            Input::Marker(marker) => {
                let out = shard.processor.advance_source(
                    marker.source,
                    marker.of,
                    marker.watermark,
                    marker.idle,
                );
                keep(out, &mut tally);
                continue;
            }
            Input::Copies(pending) => pending.into_copies(),
            Input::Frame { offset, payload } => match frame::decode(&payload) {
                Ok(copies) => copies,
                Err(e) => {
                    skip(metrics, partition, offset, &format!("frame: {e}"));
                    continue;
                }
            },
        };
        for (event, keys) in copies.iter() {
            for key in keys {
                let behind = shard
                    .processor
                    .watermark()
                    .saturating_sub(event.reported_at);
                let out = shard.processor.process_keyed(key, event);
                tally.lateness.observe(behind.max(0) as f64 / 1000.0);
                // Counted at once: the copies counted so far are how far the shard has got.
                if out.duplicate {
                    tally.duplicate.inc();
                } else if out.late {
                    tracing::info!(event_id = %event.event_id, behind_ms = behind, "late incident: its report day was evaluated already; it counts from the next day on");
                    tally.late.inc();
                } else {
                    tally.processed.inc();
                }
                keep(out, &mut tally);
            }
        }
    }
    tally.flush();
    outputs
}

/// What one shard's batch counts: the copies at once, the lateness and the evaluations
/// added to the shared metrics at its end (lanes side by side would otherwise update the
/// same histograms for every copy and every evaluation).
struct Tally<'m> {
    metrics: &'m RulesMetrics,
    processed: IntCounter,
    duplicate: IntCounter,
    late: IntCounter,
    lateness: LocalHistogram,
    /// Evaluations and their durations, by rule.
    rules: HashMap<String, (LocalIntCounter, LocalHistogram)>,
}

impl<'m> Tally<'m> {
    fn new(metrics: &'m RulesMetrics) -> Self {
        let outcome = |o: &str| metrics.events.with_label_values(&[o]);
        Self {
            metrics,
            processed: outcome("processed"),
            duplicate: outcome("duplicate"),
            late: outcome("late"),
            lateness: metrics.lateness.local(),
            rules: HashMap::new(),
        }
    }

    /// Counts a processor's evaluations and errors, and logs the errors.
    fn count(&mut self, out: &Output) {
        for (rule, took) in &out.evaluations {
            let (evaluations, seconds) = match self.rules.get(rule.as_str()) {
                Some(local) => local,
                None => self.rules.entry(rule.clone()).or_insert_with(|| {
                    let m = self.metrics;
                    (
                        m.evaluations.with_label_values(&[rule]).local(),
                        m.evaluation_seconds.with_label_values(&[rule]).local(),
                    )
                }),
            };
            evaluations.inc();
            seconds.observe(took.as_secs_f64());
        }
        for (rule, error) in &out.errors {
            self.metrics
                .rule_errors
                .with_label_values(&[rule, error.kind.as_str()])
                .inc();
            tracing::warn!(rule = %rule, error = %error, "rule evaluation failed; the rule backs off");
        }
    }

    fn flush(self) {
        self.lateness.flush();
        for (evaluations, seconds) in self.rules.values() {
            evaluations.flush();
            seconds.flush();
        }
    }
}

/// A record of the stage's input that is passed over: counted and logged.
fn skip(metrics: &RulesMetrics, partition: i32, offset: i64, reason: &str) {
    metrics.events.with_label_values(&["skipped"]).inc();
    tracing::warn!(
        partition,
        offset,
        reason,
        "incident skipped: it does not decode or validate"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_commits_are_spaced_to_their_share_and_at_most_ten_intervals() {
        let ms = Duration::from_millis;
        // A live stream's small commits keep the interval.
        assert_eq!(spacing(ms(3), ms(100), 0.1), ms(100));
        // 33 ms at a tenth: 297 ms of reading to each commit.
        assert_eq!(spacing(ms(33), ms(100), 0.1), ms(297));
        assert_eq!(spacing(ms(500), ms(100), 0.1), ms(1000));
        // 1: by the interval whatever the commits take.
        assert_eq!(spacing(ms(500), ms(100), 1.0), ms(100));
    }
}
