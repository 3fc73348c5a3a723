//! Test helpers for the routing core: alerts and alert transitions built in one line.

use std::collections::BTreeMap;

use relec_schemas::{Alert, AlertStatus, Severity, Tlp};

/// A firing GREEN `high` alert of rule `route_spike` with these labels, started at 0.
pub fn alert(fingerprint: &str, labels: &[(&str, &str)]) -> Alert {
    Alert {
        fingerprint: fingerprint.to_owned(),
        rule_id: "route_spike".to_owned(),
        rule_version: "1".to_owned(),
        status: AlertStatus::Firing,
        severity: Severity::High,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: BTreeMap::new(),
        starts_at: 0,
        ends_at: None,
        window_start: 0,
        window_end: 0,
        value: 1.0,
        threshold: None,
        handling: Tlp::Green,
        countries: vec!["TUR".to_owned()],
        evidence: Vec::new(),
        generated_at: 0,
    }
}

/// The resolved transition of `alert`, generated at `at`.
pub fn resolved(alert: &Alert, at: i64) -> Alert {
    Alert {
        status: AlertStatus::Resolved,
        ends_at: Some(at),
        generated_at: at,
        ..alert.clone()
    }
}

/// `alert` with another handling code.
pub fn handled(mut alert: Alert, handling: Tlp) -> Alert {
    alert.handling = handling;
    alert
}
