//! The rules stage on Kafka (`relec rules`): the rules directory hot-reloaded, the
//! admin endpoints, and the worker thread that consumes, evaluates and commits exactly
//! once, started again from the last commit whenever a transaction fails.
//!
//! Data flow: `relec.incidents` → (route: a copy per group key) → (one processor per
//! partition of the key space) → `relec.alerts`, with each processor's state in
//! `relec.rules.changelog`. Copies travel through `relec.rules.repartition`, unless one
//! instance owns every partition. Every hop commits in transactions with its input offsets.

mod frame;
mod lanes;
mod restore;
mod sources;
mod worker;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use prometheus::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use relec_plumbing::{Config, kafka::Kafka};
use relec_schemas::Alert;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use worker::WATERMARK_HEADER;

use crate::{
    error::Error,
    events::RulesMetrics,
    processor::Settings,
    reload::{self, ReloadHandle, ReloadMetrics, Reloader, RuleSet, Status},
    sandbox::{Limits, engine},
};
use worker::{Context, Topics, Worker};

/// The pause before a failed worker starts again; it doubles while failures repeat, up
/// to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The stage, built and ready to run.
pub struct RulesStage {
    config: Config,
    kafka: Kafka,
    reloader: Reloader,
    rules: watch::Receiver<RuleSet>,
    engine: Arc<rhai::Engine>,
    metrics: RulesMetrics,
    alerts: Arc<relec_schemas::Encoder<Alert>>,
    /// Partitions of the repartition topic, and of the incidents topic.
    partitions: (i32, i32),
}

impl std::fmt::Debug for RulesStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesStage")
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl RulesStage {
    /// Loads the rules (a refused file is logged and left out; the others run), checks
    /// the topics, and registers the metrics.
    pub async fn build(config: &Config, kafka: &Kafka, registry: &Registry) -> Result<Self, Error> {
        let r = &config.rules;
        let limits = Limits {
            max_operations: r.limits.max_operations,
            max_call_levels: r.limits.max_call_levels,
            max_string_size: r.limits.max_string_size,
            max_array_size: r.limits.max_array_size,
            max_map_size: r.limits.max_map_size,
            time_budget: r.limits.time_budget,
        };
        let engine = Arc::new(engine(&limits));
        let (reloader, outcome) = Reloader::new(
            engine.clone(),
            r.dir.clone(),
            reload::Settings {
                poll_interval: r.reload_interval,
                sighup: true,
            },
            ReloadMetrics::register(registry)?,
        );
        let rules = reloader.subscribe();
        let live = rules.borrow().rules.len();
        tracing::info!(dir = %r.dir.display(), rules = live, refused = outcome.refused.len(), "rules loaded");
        if live == 0 {
            tracing::warn!(dir = %r.dir.display(), "no rule loaded: no alert will be raised until one is added");
        }

        let t = &config.topics;
        if kafka.is_embedded() {
            kafka.create_topics(t).await?;
        }
        let names = [
            t.incidents.name.as_str(),
            t.rules_repartition.name.as_str(),
            t.rules_changelog.name.as_str(),
            t.alerts.name.as_str(),
        ];
        let described = kafka.describe_topics(&names).await?;
        if let Some(missing) = described.iter().find(|d| !d.exists) {
            return Err(relec_plumbing::Error::Topic {
                topic: missing.name.clone(),
                reason: "does not exist; create it with `relec topics create`".into(),
            }
            .into());
        }
        let (repartition, changelog) = (&described[1], &described[2]);
        if repartition.partitions != changelog.partitions {
            return Err(relec_plumbing::Error::Topic {
                topic: changelog.name.clone(),
                reason: format!(
                    "has {} partitions; it needs as many as {} ({})",
                    changelog.partitions, repartition.name, repartition.partitions
                ),
            }
            .into());
        }
        let alerts = kafka
            .encoder::<Alert>(&t.alerts.name, kafka.wire_format())
            .await?;
        Ok(Self {
            config: config.clone(),
            kafka: kafka.clone(),
            reloader,
            rules,
            engine,
            metrics: RulesMetrics::register(registry)?,
            alerts: Arc::new(alerts),
            partitions: (
                repartition.partitions as i32,
                described[0].partitions as i32,
            ),
        })
    }

    /// `POST /admin/rules/reload` (reload now, answer what changed) and `GET /admin/rules`
    /// (the live rules and versions), for the telemetry listener.
    pub fn admin(&self) -> Router {
        Router::new()
            .route("/admin/rules/reload", post(reload_now))
            .route("/admin/rules", get(live_rules))
            .with_state(Admin {
                handle: self.reloader.handle(),
                rules: self.rules.clone(),
            })
    }

    /// Runs until `shutdown`; a failed transaction restarts the worker from the last
    /// commit after a pause that grows while failures repeat.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let reloader = tokio::spawn(self.reloader.run(shutdown.clone()));
        let this = Arc::new((
            self.config,
            self.kafka,
            self.rules,
            self.engine,
            self.metrics,
            self.alerts,
            self.partitions,
        ));
        let token = shutdown.clone();
        let result = tokio::task::spawn_blocking(move || {
            let (config, kafka, rules, engine, metrics, alerts, partitions) = &*this;
            let runtime = tokio::runtime::Handle::current();
            let mut pause = FIRST_PAUSE;
            loop {
                let started = Instant::now();
                let attempt = (|| -> Result<(), Error> {
                    let consumer = consumer(kafka, config, metrics)?;
                    let id = format!("{}.{}", config.rules.group, config.rules.instance_name());
                    let producers = [
                        kafka.eager().transactional_producer("rules", &Kafka::turn_id(&id, 0))?,
                        kafka.eager().transactional_producer("rules", &Kafka::turn_id(&id, 1))?,
                    ];
                    let mut worker = Worker::new(
                        kafka.clone(),
                        producers,
                        topics(config),
                        *partitions,
                        rules.clone(),
                        engine.clone(),
                        settings(config),
                        alerts.clone(),
                        metrics.clone(),
                        &config.rules,
                        config.ingest.clock_skew,
                        runtime.clone(),
                    );
                    let result = worker.run(&consumer, &token);
                    consumer.unsubscribe();
                    result
                })();
                match attempt {
                    Ok(()) => return Ok(()),
                    Err(e) if token.is_cancelled() => return Err(e),
                    Err(e) => {
                        // A worker that ran a while failed afresh (a broker restart
                        // hours later), not again.
                        if started.elapsed() > MAX_PAUSE {
                            pause = FIRST_PAUSE;
                        }
                        tracing::error!(error = %e, retry_in = ?pause, "rules worker stopped; starting again from the last commit");
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                }
            }
        })
        .await
        .map_err(|e| Error::Worker(e.to_string()))?;
        shutdown.cancel();
        let _ = reloader.await;
        result
    }
}

fn topics(config: &Config) -> Topics {
    let t = &config.topics;
    Topics {
        incidents: t.incidents.name.clone(),
        repartition: t.rules_repartition.name.clone(),
        changelog: t.rules_changelog.name.clone(),
        alerts: t.alerts.name.clone(),
        rejected: t.incidents_rejected.name.clone(),
    }
}

/// The processor settings the config asks for.
pub fn settings(config: &Config) -> Settings {
    Settings {
        lateness_ms: config.rules.lateness.as_millis() as i64,
        horizon_days: (config.rules.horizon.as_secs() / 86_400) as i64,
    }
}

fn consumer(
    kafka: &Kafka,
    config: &Config,
    metrics: &RulesMetrics,
) -> Result<BaseConsumer<Context>, Error> {
    let mut c = kafka.consumer_config("rules", &config.rules.group);
    // The repartitioned copies become readable only when the transaction that wrote them
    // commits; a broker holding an empty fetch for the default 500 ms would stall each hop.
    c.set("statistics.interval.ms", "1000")
        .set("fetch.wait.max.ms", "10")
        // Eager assignment: a rebalance revokes every partition and assigns it again at its
        // committed offset, which is what an aborted transaction needs (a cooperative
        // protocol would leave kept partitions past what was committed).
        .set("partition.assignment.strategy", "range,roundrobin");
    let consumer: BaseConsumer<Context> =
        c.create_with_context(Context::new(metrics.lag.clone()))?;
    let t = &config.topics;
    consumer.subscribe(&[&t.incidents.name, &t.rules_repartition.name])?;
    Ok(consumer)
}

#[derive(Clone)]
struct Admin {
    handle: ReloadHandle,
    rules: watch::Receiver<RuleSet>,
}

async fn reload_now(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.handle.reload().await {
        Some(outcome) => {
            let status = if outcome.status == Status::Refused {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(serde_json::to_value(outcome).unwrap_or_default()),
            )
                .into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "the stage is stopping\n").into_response(),
    }
}

async fn live_rules(State(admin): State<Admin>) -> impl IntoResponse {
    let set = admin.rules.borrow().clone();
    let rules: Vec<serde_json::Value> = set
        .rules
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "version": r.version, "title": r.title,
                "path": r.path.display().to_string(),
            })
        })
        .collect();
    Json(serde_json::json!({ "generation": set.generation, "rules": rules }))
}
