//! The `alertmanager` webhook body: Prometheus Alertmanager's webhook JSON (version 4), so
//! tools built for Alertmanager receivers take relec's notifications unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use relec_schemas::{Alert, AlertStatus};
use serde::Serialize;

use super::WebhookOptions;
use crate::{Notification, email::severity_name};

/// Go's zero time: what Alertmanager sends as `endsAt` of an alert still firing.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    receiver: &'a str,
    status: &'static str,
    alerts: Vec<AlertBody<'a>>,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertBody<'a> {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

pub fn body(
    notification: &Notification,
    options: &WebhookOptions,
) -> Result<Vec<u8>, serde_json::Error> {
    let alerts: Vec<AlertBody> = notification
        .alerts
        .iter()
        .map(|alert| AlertBody {
            status: status(alert.status),
            labels: labels(alert),
            annotations: &alert.annotations,
            starts_at: time(alert.starts_at),
            ends_at: alert.ends_at.map_or_else(|| ZERO_TIME.to_owned(), time),
            generator_url: &options.external_url,
            fingerprint: &alert.fingerprint,
        })
        .collect();
    let common_labels = common(alerts.iter().map(|a| &a.labels));
    let common_annotations = common(alerts.iter().map(|a| a.annotations));
    serde_json::to_vec_pretty(&Body {
        receiver: &notification.receiver,
        status: status(notification.status),
        alerts,
        group_labels: &notification.group_labels,
        common_labels,
        common_annotations,
        external_url: &options.external_url,
        version: "4",
        group_key: &notification.group_key,
        // Every alert of the group is sent: relec has no max_alerts.
        truncated_alerts: 0,
    })
}

fn status(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// The alert's labels plus the two that Alertmanager templates and receivers count on:
/// `alertname` (the rule) and `severity`, unless the rule set them itself.
fn labels(alert: &Alert) -> BTreeMap<String, String> {
    let mut labels = alert.labels.clone();
    labels
        .entry("alertname".into())
        .or_insert_with(|| alert.rule_id.clone());
    labels
        .entry("severity".into())
        .or_insert_with(|| severity_name(alert.severity).to_lowercase());
    labels
}

/// The pairs every map has, with the same value.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut common = first.clone();
    for map in maps {
        common.retain(|k, v| map.get(k) == Some(v));
    }
    common
}

/// RFC 3339 in UTC, as Go's encoding/json writes a time.Time.
fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ZERO_TIME.to_owned())
}
