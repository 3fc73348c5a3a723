//! What the notifier stage tells operators: its metrics, registered together, and the
//! events that write a log line and move a metric in one call, so the two never drift.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use relec_schemas::{Alert, Tlp};

use crate::subscriptions::ChannelId;

/// Channel kinds, the `channel` label.
pub const CHANNELS: [&str; 2] = ["email", "webhook"];
/// How a delivery ended, the `outcome` label of `relec_notifier_notifications_total`.
pub const OUTCOMES: [&str; 4] = ["delivered", "permanent", "exhausted", "suppressed"];
/// What happened to a consumed alert record.
pub const ALERT_OUTCOMES: [&str; 3] = ["routed", "skipped", "covered"];
/// Results of a subscriptions reload.
pub const RELOAD_RESULTS: [&str; 3] = ["ok", "refused", "unchanged"];

#[derive(Debug, Clone)]
pub struct NotifierMetrics {
    pub alerts: IntCounterVec,
    pub unreachable: IntCounterVec,
    pub notifications: IntCounterVec,
    pub retries: IntCounterVec,
    pub dlq: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub latency: HistogramVec,
    pub breaker_opens: IntCounterVec,
    pub reloads: IntCounterVec,
    pub groups: IntGauge,
    pub silences: IntGauge,
    pub unfinished: IntGauge,
    pub checkpoints: IntCounter,
    pub checkpoint_seconds: Histogram,
}

impl NotifierMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counters = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help));
        let m = Self {
            alerts: counters(
                "relec_notifier_alerts_total",
                "Alert records consumed, by outcome: routed, skipped (does not decode), covered (already in the restored checkpoint).",
                &["outcome"],
            )?,
            unreachable: counters(
                "relec_notifier_alerts_unreachable_total",
                "Alert transitions no recipient may receive: no channel on their routes is cleared for their handling code.",
                &["handling"],
            )?,
            notifications: counters(
                "relec_notifier_notifications_total",
                "Deliveries that ended, by channel and outcome: delivered, permanent (refused for good: dead-lettered), exhausted (attempts used up: dead-lettered), suppressed (delivered before, per the delivery log).",
                &["channel", "outcome"],
            )?,
            retries: counters(
                "relec_notifier_retries_total",
                "Delivery attempts after the first, by channel.",
                &["channel"],
            )?,
            dlq: counters(
                "relec_notifier_dlq_records_total",
                "Records written to the dead-letter topic, by channel.",
                &["channel"],
            )?,
            in_flight: IntGaugeVec::new(
                Opts::new(
                    "relec_notifier_deliveries_in_flight",
                    "Deliveries started and not ended (attempting or waiting to retry), by channel.",
                ),
                &["channel"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "relec_notifier_delivery_latency_seconds",
                    "From the newest alert's generated_at to its notification's delivery, by channel (group_wait included).",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 900.0, 3600.0,
                ]),
                &["channel"],
            )?,
            breaker_opens: counters(
                "relec_notifier_breaker_opens_total",
                "Times an endpoint's circuit breaker opened after failures in a row, by channel.",
                &["channel"],
            )?,
            reloads: counters(
                "relec_notifier_subscription_reloads_total",
                "Loads of the subscriptions file, by result: ok, refused (the previous file stays live), unchanged.",
                &["result"],
            )?,
            groups: gauge(
                "relec_notifier_groups",
                "Aggregation groups open.",
            )?,
            silences: gauge(
                "relec_notifier_silences_active",
                "Silences in force now.",
            )?,
            unfinished: gauge(
                "relec_notifier_alerts_unfinished",
                "Consumed alert records whose notifications have not all ended: their offsets are not committed yet.",
            )?,
            checkpoints: IntCounter::with_opts(Opts::new(
                "relec_notifier_checkpoints_total",
                "Checkpoints of routing state and pending deliveries committed to the delivery log.",
            ))?,
            checkpoint_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "relec_notifier_checkpoint_duration_seconds",
                    "Time to commit one checkpoint transaction.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
            )?,
        };
        for outcome in ALERT_OUTCOMES {
            m.alerts.with_label_values(&[outcome]);
        }
        for tlp in Tlp::ALL {
            m.unreachable.with_label_values(&[tlp.as_str()]);
        }
        for channel in CHANNELS {
            for outcome in OUTCOMES {
                m.notifications.with_label_values(&[channel, outcome]);
            }
            m.retries.with_label_values(&[channel]);
            m.dlq.with_label_values(&[channel]);
            m.in_flight.with_label_values(&[channel]);
            m.breaker_opens.with_label_values(&[channel]);
        }
        for result in RELOAD_RESULTS {
            m.reloads.with_label_values(&[result]);
        }
        registry.register(Box::new(m.alerts.clone()))?;
        registry.register(Box::new(m.unreachable.clone()))?;
        registry.register(Box::new(m.notifications.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.dlq.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.breaker_opens.clone()))?;
        registry.register(Box::new(m.reloads.clone()))?;
        registry.register(Box::new(m.groups.clone()))?;
        registry.register(Box::new(m.silences.clone()))?;
        registry.register(Box::new(m.unfinished.clone()))?;
        registry.register(Box::new(m.checkpoints.clone()))?;
        registry.register(Box::new(m.checkpoint_seconds.clone()))?;
        Ok(m)
    }

    /// Metrics on a private registry, for tools that do not serve them.
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry takes every metric")
    }

    /// An alert transition no recipient may receive.
    pub fn unreachable(&self, alert: &Alert) {
        tracing::warn!(
            fingerprint = alert.fingerprint,
            rule = alert.rule_id,
            handling = alert.handling.as_str(),
            "no subscriber on this alert's routes is cleared for its handling code: nobody receives it"
        );
        self.unreachable
            .with_label_values(&[alert.handling.as_str()])
            .inc();
    }

    /// A delivery arrived.
    pub fn delivered(&self, kind: &str, id: &str, attempts: u32, latency: Option<Duration>) {
        tracing::info!(delivery = id, attempts, "notification delivered");
        self.notifications
            .with_label_values(&[kind, "delivered"])
            .inc();
        if let Some(latency) = latency {
            self.latency
                .with_label_values(&[kind])
                .observe(latency.as_secs_f64());
        }
    }

    /// A delivery failed for good and was dead-lettered.
    pub fn dead_lettered(
        &self,
        kind: &str,
        id: &str,
        attempts: u32,
        permanent: bool,
        reason: &str,
    ) {
        tracing::warn!(
            delivery = id,
            attempts,
            permanent,
            reason,
            "notification failed for good; written to the dead-letter topic"
        );
        let outcome = if permanent { "permanent" } else { "exhausted" };
        self.notifications.with_label_values(&[kind, outcome]).inc();
        self.dlq.with_label_values(&[kind]).inc();
    }

    /// A notification that the delivery log says was delivered (or dead-lettered) before.
    pub fn suppressed(&self, channel: &ChannelId, id: &str) {
        tracing::debug!(delivery = id, "already delivered before; not sent again");
        self.notifications
            .with_label_values(&[crate::channels::kind(channel), "suppressed"])
            .inc();
    }

    /// An endpoint's breaker opened.
    pub fn breaker_opened(&self, kind: &str, endpoint: &str, rest: Duration) {
        tracing::warn!(
            endpoint,
            ?rest,
            "endpoint failed too often in a row; resting it"
        );
        self.breaker_opens.with_label_values(&[kind]).inc();
    }
}
