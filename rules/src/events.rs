//! What the rules stage tells operators: its metrics, registered together, each written
//! where the event it counts happens.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// What happened to an incident the stage consumed.
pub const OUTCOMES: [&str; 4] = ["processed", "duplicate", "late", "skipped"];

#[derive(Debug, Clone)]
pub struct RulesMetrics {
    /// Incidents read from the input topic, before routing (rejected ones too).
    pub incidents: IntCounter,
    /// Routed copies of incidents, by outcome (`skipped`: undecodable or invalid).
    pub events: IntCounterVec,
    /// How far behind the watermark each event's report arrived.
    pub lateness: Histogram,
    pub evaluations: IntCounterVec,
    pub rule_errors: IntCounterVec,
    pub evaluation_seconds: HistogramVec,
    pub transitions: IntCounterVec,
    pub alerts: IntGaugeVec,
    pub state_keys: IntGauge,
    pub state_bytes: IntGauge,
    pub watermark: IntGauge,
    pub lag: IntGaugeVec,
    pub commits: IntCounter,
    pub commit_seconds: Histogram,
    pub aborts: IntCounter,
    pub restores: IntCounter,
    pub restore_seconds: Histogram,
    pub partitions: IntGauge,
}

impl RulesMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        };
        let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help));
        let counter = |name: &str, help: &str| IntCounter::with_opts(Opts::new(name, help));
        let m = Self {
            incidents: counter(
                "relec_rules_incidents_total",
                "Incidents read from the input topic by the router, before they are routed (undecodable and invalid ones too).",
            )?,
            events: IntCounterVec::new(
                Opts::new(
                    "relec_rules_events_total",
                    "Incident copies consumed (one per group key), by outcome: processed, duplicate, late (its day was evaluated already), skipped (undecodable or invalid).",
                ),
                &["outcome"],
            )?,
            lateness: seconds(
                "relec_rules_event_lateness_seconds",
                "How far behind the partition's watermark an incident's report arrived.",
                vec![
                    0.0,
                    60.0,
                    600.0,
                    3600.0,
                    6.0 * 3600.0,
                    86_400.0,
                    7.0 * 86_400.0,
                ],
            )?,
            evaluations: IntCounterVec::new(
                Opts::new(
                    "relec_rules_evaluations_total",
                    "Rule evaluations, by rule.",
                ),
                &["rule"],
            )?,
            rule_errors: IntCounterVec::new(
                Opts::new(
                    "relec_rules_rule_errors_total",
                    "Rule evaluations that threw or hit a cap, by rule and kind; the rule backs off.",
                ),
                &["rule", "kind"],
            )?,
            evaluation_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "relec_rules_evaluation_duration_seconds",
                    "Time of one rule evaluation, by rule.",
                )
                .buckets(vec![
                    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1,
                ]),
                &["rule"],
            )?,
            transitions: IntCounterVec::new(
                Opts::new(
                    "relec_rules_alert_transitions_total",
                    "Alert transitions written to the alerts topic, by status.",
                ),
                &["status"],
            )?,
            alerts: IntGaugeVec::new(
                Opts::new(
                    "relec_rules_alerts",
                    "Alerts held by this instance, by state (pending, firing).",
                ),
                &["state"],
            )?,
            state_keys: gauge(
                "relec_rules_state_keys",
                "Group keys whose windowed state this instance holds.",
            )?,
            state_bytes: gauge(
                "relec_rules_state_bytes",
                "Size of this instance's state as checkpointed to the changelog.",
            )?,
            watermark: gauge(
                "relec_rules_watermark_seconds",
                "Event time this instance has reached: the latest report time seen, Unix seconds.",
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "relec_rules_consumer_lag",
                    "Records not yet consumed on this instance's partitions, by topic.",
                ),
                &["topic"],
            )?,
            commits: counter(
                "relec_rules_commits_total",
                "Transactions committed (alerts, state and offsets together).",
            )?,
            commit_seconds: seconds(
                "relec_rules_commit_duration_seconds",
                "Time to checkpoint and commit one transaction.",
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ],
            )?,
            aborts: counter(
                "relec_rules_aborts_total",
                "Transactions aborted (rebalance, broker error); their input is processed again.",
            )?,
            restores: counter(
                "relec_rules_restores_total",
                "Partitions whose state was read back from the changelog.",
            )?,
            restore_seconds: seconds(
                "relec_rules_restore_duration_seconds",
                "Time to read one partition's state back from the changelog.",
                vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0],
            )?,
            partitions: gauge(
                "relec_rules_partitions",
                "Repartition partitions (state shards) this instance owns.",
            )?,
        };
        for outcome in OUTCOMES {
            m.events.with_label_values(&[outcome]);
        }
        for status in ["firing", "resolved"] {
            m.transitions.with_label_values(&[status]);
        }
        for state in ["pending", "firing"] {
            m.alerts.with_label_values(&[state]);
        }
        registry.register(Box::new(m.incidents.clone()))?;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.lateness.clone()))?;
        registry.register(Box::new(m.evaluations.clone()))?;
        registry.register(Box::new(m.rule_errors.clone()))?;
        registry.register(Box::new(m.evaluation_seconds.clone()))?;
        registry.register(Box::new(m.transitions.clone()))?;
        registry.register(Box::new(m.alerts.clone()))?;
        registry.register(Box::new(m.state_keys.clone()))?;
        registry.register(Box::new(m.state_bytes.clone()))?;
        registry.register(Box::new(m.watermark.clone()))?;
        registry.register(Box::new(m.lag.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.commit_seconds.clone()))?;
        registry.register(Box::new(m.aborts.clone()))?;
        registry.register(Box::new(m.restores.clone()))?;
        registry.register(Box::new(m.restore_seconds.clone()))?;
        registry.register(Box::new(m.partitions.clone()))?;
        Ok(m)
    }
}
