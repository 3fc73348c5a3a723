//! The `cap` webhook body: OASIS Common Alerting Protocol 1.2 XML, the exchange format of
//! early-warning systems. One `<alert>` per notification, one `<info>` per alert in it.
//!
//! Mapping: the TLP marking becomes `<scope>Restricted</scope>` with the marking as
//! `<restriction>` (TLP:CLEAR, which limits nothing, is `Public`). A group whose alerts
//! have all resolved is a `Cancel`; one that still fires but has resolved alerts is an
//! `Update`; otherwise an `Alert`. The notification carries no record of the messages sent
//! before, so `<references>` is left out; receivers correlate by the `group_key`
//! parameter, which is the same in every message about one group.

use std::io;

use chrono::{DateTime, SecondsFormat};
use quick_xml::{
    Writer,
    events::{BytesDecl, BytesText, Event},
};
use relec_schemas::{Alert, AlertStatus, Severity, Tlp};
use sha2::{Digest, Sha256};

use super::WebhookOptions;
use crate::{
    Notification,
    email::{severity_name, tlp_marking},
};

pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// `<senderName>` of every `<info>`.
const SENDER_NAME: &str = "RELEC early-warning system";
/// CAP asks headlines to stay under 160 characters, for SMS-like displays.
const HEADLINE_CHARS: usize = 160;

type XmlWriter = Writer<Vec<u8>>;

pub fn body(notification: &Notification, options: &WebhookOptions) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("alert")
        .with_attribute(("xmlns", NAMESPACE))
        .write_inner_content(|w| {
            element(w, "identifier", &identifier(notification))?;
            element(w, "sender", &options.cap_sender)?;
            element(w, "sent", &sent(notification))?;
            element(w, "status", "Actual")?;
            let msg_type = msg_type(notification);
            element(w, "msgType", msg_type)?;
            if notification.handling == Tlp::Clear {
                element(w, "scope", "Public")?;
            } else {
                element(w, "scope", "Restricted")?;
                element(w, "restriction", tlp_marking(notification.handling))?;
            }
            if msg_type == "Cancel" {
                element(w, "note", "All alerts of the group have resolved.")?;
            }
            for alert in &notification.alerts {
                info(w, notification, alert, options)?;
            }
            Ok(())
        })?;
    Ok(w.into_inner())
}

fn info(
    w: &mut XmlWriter,
    notification: &Notification,
    alert: &Alert,
    options: &WebhookOptions,
) -> io::Result<()> {
    let over = resolved(alert);
    w.create_element("info").write_inner_content(|w| {
        // The rules write their summaries in English.
        element(w, "language", "en-US")?;
        element(w, "category", "Security")?;
        element(w, "event", &alert.rule_id)?;
        element(w, "responseType", if over { "AllClear" } else { "Monitor" })?;
        element(
            w,
            "urgency",
            if over {
                "Past"
            } else {
                urgency(alert.severity)
            },
        )?;
        element(w, "severity", severity(alert.severity))?;
        element(w, "certainty", certainty(alert.severity))?;
        element(w, "onset", &time(alert.starts_at))?;
        if let Some(ended) = alert.ends_at {
            element(w, "expires", &time(ended))?;
        }
        element(w, "senderName", SENDER_NAME)?;
        element(w, "headline", &headline(alert))?;
        element(w, "description", &description(alert))?;
        if !options.external_url.is_empty() {
            element(w, "web", &options.external_url)?;
        }
        for (name, value) in parameters(notification, alert) {
            w.create_element("parameter").write_inner_content(|w| {
                element(w, "valueName", &name)?;
                element(w, "value", &value)
            })?;
        }
        if !alert.countries.is_empty() {
            w.create_element("area").write_inner_content(|w| {
                element(w, "areaDesc", &alert.countries.join(", "))?;
                for country in &alert.countries {
                    w.create_element("geocode").write_inner_content(|w| {
                        element(w, "valueName", "ISO 3166-1 alpha-3")?;
                        element(w, "value", country)
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// One element with escaped text content.
fn element(w: &mut XmlWriter, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Unique per message and the same on every retry of it: derived from the idempotency
/// key, in the characters CAP allows (no spaces, commas, `<` or `&`).
fn identifier(notification: &Notification) -> String {
    let digest = Sha256::digest(notification.idempotency_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("relec-{hex}")
}

/// When the newest transition in it was generated: a retry of the same message carries
/// the same time, as it is the same message.
fn sent(notification: &Notification) -> String {
    let newest = notification.alerts.iter().map(|a| a.generated_at).max();
    time(newest.unwrap_or_default())
}

fn resolved(alert: &Alert) -> bool {
    alert.status == AlertStatus::Resolved
}

fn msg_type(notification: &Notification) -> &'static str {
    if notification.status == AlertStatus::Resolved {
        "Cancel"
    } else if notification.alerts.iter().any(resolved) {
        "Update"
    } else {
        "Alert"
    }
}

/// How soon a recipient should act: the more severe, the sooner.
fn urgency(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Immediate",
        Severity::High | Severity::Medium => "Expected",
        Severity::Low => "Future",
        Severity::Info => "Unknown",
    }
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Extreme",
        Severity::High => "Severe",
        Severity::Medium => "Moderate",
        Severity::Low => "Minor",
        Severity::Info => "Unknown",
    }
}

/// The rules' severities also grade how sure the signal is: high and critical rules fire
/// on reported events themselves (deaths, spikes far over a floor), lower ones on
/// statistical hints.
fn certainty(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "Observed",
        Severity::Medium => "Likely",
        Severity::Low | Severity::Info => "Possible",
    }
}

fn headline(alert: &Alert) -> String {
    let mut headline = format!("[{}] {}", severity_name(alert.severity), alert.rule_id);
    if let Some(route) = alert.labels.get("route") {
        headline.push_str(": ");
        headline.push_str(route);
    }
    headline.chars().take(HEADLINE_CHARS).collect()
}

fn description(alert: &Alert) -> String {
    let mut text = alert
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| alert.rule_id.clone());
    text.push_str(&format!("\nValue: {}", alert.value));
    if let Some(threshold) = alert.threshold {
        text.push_str(&format!(", threshold: {threshold}"));
    }
    text
}

/// Everything a machine on the other side may want to filter or correlate on.
fn parameters(notification: &Notification, alert: &Alert) -> Vec<(String, String)> {
    let mut parameters: Vec<(String, String)> = alert
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    parameters.extend([
        ("fingerprint".into(), alert.fingerprint.clone()),
        ("rule_version".into(), alert.rule_version.clone()),
        (
            "status".into(),
            if resolved(alert) {
                "resolved"
            } else {
                "firing"
            }
            .into(),
        ),
        ("value".into(), alert.value.to_string()),
        ("window_start".into(), time(alert.window_start)),
        ("window_end".into(), time(alert.window_end)),
        ("tlp".into(), tlp_marking(alert.handling).into()),
        ("group_key".into(), notification.group_key.clone()),
    ]);
    if let Some(threshold) = alert.threshold {
        parameters.push(("threshold".into(), threshold.to_string()));
    }
    if !alert.evidence.is_empty() {
        parameters.push(("evidence".into(), alert.evidence.join(" ")));
    }
    parameters
}

/// CAP's date-time form: seconds, and an explicit offset (a `Z` is not allowed).
fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_an_offset_not_a_z() {
        assert_eq!(time(1_714_543_200_000), "2024-05-01T06:00:00+00:00");
        assert_eq!(time(1_714_543_200_999), "2024-05-01T06:00:00+00:00");
    }

    #[test]
    fn severities_map_onto_cap_scales() {
        assert_eq!(
            (
                urgency(Severity::Critical),
                severity(Severity::Critical),
                certainty(Severity::Critical)
            ),
            ("Immediate", "Extreme", "Observed")
        );
        assert_eq!(
            (
                urgency(Severity::Medium),
                severity(Severity::Medium),
                certainty(Severity::Medium)
            ),
            ("Expected", "Moderate", "Likely")
        );
        assert_eq!(
            (
                urgency(Severity::Info),
                severity(Severity::Info),
                certainty(Severity::Info)
            ),
            ("Unknown", "Unknown", "Possible")
        );
    }
}
