//! `relec run`'s console, after the notifier: each early warning as it is delivered, and a
//! summary line every few seconds read from the stages' own metrics (the same numbers
//! Prometheus scrapes).

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use prometheus::{
    Registry,
    proto::{MetricFamily, MetricType},
};
use relec_notifier::Outbound;
use relec_schemas::{Alert, AlertStatus};
use tokio::{sync::broadcast, time::Instant};
use tokio_util::sync::CancellationToken;

/// Deliveries of one alert transition to its several channels arrive within moments of
/// each other; they are shown as one line once this long has passed since the first.
const GATHER: Duration = Duration::from_millis(300);
/// Alert transitions remembered as shown; beyond that, the memory starts afresh.
const SHOWN_CAPACITY: usize = 100_000;

/// The registries of the three stages.
#[derive(Debug, Clone)]
pub struct Registries {
    pub ingest: Registry,
    pub rules: Registry,
    pub notifier: Registry,
}

/// What the summary line and the idle check read, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub accepted: f64,
    pub processed: f64,
    pub transitions: f64,
    pub watermark: f64,
    pub lag: f64,
    pub pending: f64,
    pub firing: f64,
    pub email: f64,
    pub webhook: f64,
    pub failed: f64,
    pub in_flight: f64,
    pub unfinished: f64,
}

impl Snapshot {
    pub fn take(r: &Registries) -> Self {
        let (ingest, rules, notifier) = (r.ingest.gather(), r.rules.gather(), r.notifier.gather());
        let delivered = |channel| {
            sum(
                &notifier,
                "relec_notifier_notifications_total",
                &[("channel", channel), ("outcome", "delivered")],
            )
        };
        let failed = |outcome| {
            sum(
                &notifier,
                "relec_notifier_notifications_total",
                &[("outcome", outcome)],
            )
        };
        Self {
            accepted: sum(&ingest, "relec_ingest_events_accepted_total", &[]),
            processed: sum(
                &rules,
                "relec_rules_events_total",
                &[("outcome", "processed")],
            ),
            transitions: sum(&rules, "relec_rules_alert_transitions_total", &[]),
            watermark: sum(&rules, "relec_rules_watermark_seconds", &[]),
            lag: sum(&rules, "relec_rules_consumer_lag", &[]),
            pending: sum(&rules, "relec_rules_alerts", &[("state", "pending")]),
            firing: sum(&rules, "relec_rules_alerts", &[("state", "firing")]),
            email: delivered("email"),
            webhook: delivered("webhook"),
            failed: failed("permanent") + failed("exhausted"),
            in_flight: sum(&notifier, "relec_notifier_deliveries_in_flight", &[]),
            unfinished: sum(&notifier, "relec_notifier_alerts_unfinished", &[]),
        }
    }

    /// Nothing moves and nothing waits: what `--until-idle` looks for, over some seconds.
    pub fn settled(&self, before: &Self) -> bool {
        let moving = (self.accepted, self.processed, self.transitions);
        moving == (before.accepted, before.processed, before.transitions)
            && self.email + self.webhook == before.email + before.webhook
            && self.lag == 0.0
            && self.in_flight == 0.0
            && self.unfinished == 0.0
    }

    pub fn line(&self, before: &Self, elapsed: Duration, since: Duration) -> String {
        let rate = (self.accepted - before.accepted) / since.as_secs_f64().max(1e-3);
        let event_time = if self.watermark > 0.0 {
            day(self.watermark as i64 * 1000)
        } else {
            "-".to_owned()
        };
        let secs = elapsed.as_secs();
        format!(
            "── {}:{:02}  event time {event_time} · {rate:.0} events/s ({} accepted) · alerts: \
             {} pending, {} firing · deliveries: {} ({} email, {} webhook), {} failed",
            secs / 60,
            secs % 60,
            self.accepted,
            self.pending,
            self.firing,
            self.email + self.webhook,
            self.email,
            self.webhook,
            self.failed,
        )
    }
}

/// The rules stage's event time, in Unix milliseconds (0 before it has any).
pub fn event_time_ms(rules: &Registry) -> i64 {
    (sum(&rules.gather(), "relec_rules_watermark_seconds", &[]) * 1000.0) as i64
}

/// The sum of `name`'s series whose labels include `labels`.
fn sum(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = families.iter().find(|f| f.name() == name) else {
        return 0.0;
    };
    family
        .get_metric()
        .iter()
        .filter(|m| {
            labels
                .iter()
                .all(|(k, v)| (m.get_label().iter()).any(|l| l.name() == *k && l.value() == *v))
        })
        .map(|m| match family.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            MetricType::GAUGE => m.get_gauge().get_value(),
            _ => 0.0,
        })
        .sum()
}

/// One alert transition being delivered, gathered over its channels.
struct Gathering {
    alert: Alert,
    since: Instant,
    channels: Vec<String>,
}

/// Prints delivered early warnings and a summary every `every` until `shutdown`.
pub async fn show(
    mut delivered: broadcast::Receiver<Arc<Outbound>>,
    registries: Registries,
    every: Duration,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut gathering: BTreeMap<String, Gathering> = BTreeMap::new();
    let mut shown: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(GATHER);
    let mut summary = tokio::time::interval_at(started + every, every);
    let (mut before, mut before_at) = (Snapshot::take(&registries), started);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            received = delivered.recv() => match received {
                Ok(outbound) => gather(&outbound, &mut gathering, &shown),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    println!("   ({missed} deliveries not shown: the console fell behind)");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let ready: Vec<String> = (gathering.iter())
                    .filter(|(_, g)| g.since.elapsed() >= GATHER)
                    .map(|(key, _)| key.clone())
                    .collect();
                if shown.len() > SHOWN_CAPACITY {
                    shown.clear();
                }
                for key in ready {
                    let g = gathering.remove(&key).expect("listed above");
                    println!("{}", warning(&g.alert, &g.channels));
                    shown.insert(key);
                }
            }
            _ = summary.tick() => {
                let now = Snapshot::take(&registries);
                println!("{}", now.line(&before, started.elapsed(), before_at.elapsed()));
                (before, before_at) = (now, Instant::now());
            }
        }
    }
    for g in gathering.into_values() {
        println!("{}", warning(&g.alert, &g.channels));
    }
}

fn gather(
    outbound: &Outbound,
    gathering: &mut BTreeMap<String, Gathering>,
    shown: &HashSet<String>,
) {
    for alert in &outbound.notification.alerts {
        let key = format!(
            "{}/{:?}/{}/{:?}",
            alert.fingerprint, alert.status, alert.starts_at, alert.ends_at
        );
        if shown.contains(&key) {
            continue;
        }
        let g = gathering.entry(key).or_insert_with(|| Gathering {
            alert: alert.clone(),
            since: Instant::now(),
            channels: Vec::new(),
        });
        g.channels.push(outbound.channel.to_string());
    }
}

/// `2025-11-06  FIRING    high      route_spike  AFG-IRN-NIMROZ: ... → afg-ncp/email, ...`
fn warning(alert: &Alert, channels: &[String]) -> String {
    let (status, at) = match alert.status {
        AlertStatus::Firing => ("FIRING", alert.starts_at),
        AlertStatus::Resolved => ("resolved", alert.ends_at.unwrap_or(alert.starts_at)),
    };
    let what = alert
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| {
            let labels: Vec<String> = (alert.labels.iter())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.join(" ")
        });
    format!(
        "{}  {status:<8}  {:<8}  {:<22}  {what}  → {}",
        day(at),
        format!("{:?}", alert.severity).to_lowercase(),
        alert.rule_id,
        channels.join(", ")
    )
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use prometheus::{IntCounterVec, IntGauge, Opts};

    use super::*;

    #[test]
    fn sums_pick_series_by_label() {
        let registry = Registry::new();
        let counter = IntCounterVec::new(
            Opts::new("relec_notifier_notifications_total", "test"),
            &["channel", "outcome"],
        )
        .expect("metric");
        counter.with_label_values(&["email", "delivered"]).inc_by(3);
        counter
            .with_label_values(&["webhook", "delivered"])
            .inc_by(2);
        counter.with_label_values(&["email", "permanent"]).inc();
        let gauge = IntGauge::new("relec_notifier_alerts_unfinished", "test").expect("metric");
        gauge.set(4);
        registry.register(Box::new(counter)).expect("register");
        registry.register(Box::new(gauge)).expect("register");
        let r = Registries {
            ingest: Registry::new(),
            rules: Registry::new(),
            notifier: registry,
        };
        let s = Snapshot::take(&r);
        assert_eq!(
            (s.email, s.webhook, s.failed, s.unfinished),
            (3.0, 2.0, 1.0, 4.0)
        );
        assert_eq!(s.accepted, 0.0, "a registry without the metric reads 0");
    }
}
