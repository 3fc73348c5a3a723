//! Email rendering: a notification and a locale in, the subject and the text and HTML
//! parts out; and from those the multipart/alternative message that goes over SMTP.

use std::{collections::BTreeMap, time::SystemTime};

use chrono::DateTime;
use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{HeaderName, HeaderValue},
    },
};
use minijinja::value::{Serde, Value};
use relec_schemas::{Alert, AlertStatus, Severity, Tlp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    Error,
    templates::{BODY_HTML, BODY_TEXT, SUBJECT, Templates},
};
use crate::Notification;

/// A notification rendered in one locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, TLP marking first.
    pub subject: String,
    pub text: String,
    pub html: String,
    /// BCP 47 tag of the language it is written in, for Content-Language.
    pub lang: String,
}

/// The TLP 2.0 label, as it must appear in subject and body: `TLP:AMBER+STRICT`, not
/// the `AMBER_STRICT` of our schemas.
pub fn tlp_marking(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "TLP:CLEAR",
        Tlp::Green => "TLP:GREEN",
        Tlp::Amber => "TLP:AMBER",
        Tlp::AmberStrict => "TLP:AMBER+STRICT",
        Tlp::Red => "TLP:RED",
    }
}

/// TLP 2.0 prescribes the label's colours (on a black background) so it reads the same
/// in every organisation.
fn tlp_style(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => {
            "background-color: #000000; color: #FFFFFF; padding: 1px 6px; font-weight: bold;"
        }
        Tlp::Green => {
            "background-color: #000000; color: #33FF00; padding: 1px 6px; font-weight: bold;"
        }
        Tlp::Amber | Tlp::AmberStrict => {
            "background-color: #000000; color: #FFC000; padding: 1px 6px; font-weight: bold;"
        }
        Tlp::Red => {
            "background-color: #000000; color: #FF2B2B; padding: 1px 6px; font-weight: bold;"
        }
    }
}

pub(crate) fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFO",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// What the templates see. The field names are the template variables, listed for
/// operators at the top of `templates/email/body.txt`.
#[derive(Serialize)]
struct Context<'a> {
    lang: &'a str,
    dir: &'static str,
    /// The locale's fixed strings: `t.firing`, `t.route`...
    t: &'a BTreeMap<String, String>,
    tlp: &'static str,
    tlp_style: &'static str,
    status: &'static str,
    status_text: &'a str,
    /// The highest severity among the alerts.
    severity: &'static str,
    /// The rule ids of the alerts, comma separated.
    rules: String,
    /// The group's label values (a route, an agency), comma separated.
    target: String,
    count: usize,
    /// "alert" or "alerts", in the locale.
    alert_word: &'a str,
    receiver: &'a str,
    alerts: Vec<AlertView<'a>>,
    /// The rendered subject (empty while the subject itself renders).
    subject: String,
}

#[derive(Serialize)]
struct AlertView<'a> {
    status: &'static str,
    status_text: &'a str,
    severity: &'static str,
    rule: &'a str,
    summary: Option<&'a str>,
    value: String,
    threshold: Option<String>,
    window: String,
    started: String,
    ended: Option<String>,
    countries: String,
    /// Every label but `rule`, named in the locale where it has a name for it.
    labels: Vec<LabelView<'a>>,
    evidence: String,
    tlp: &'static str,
    tlp_style: &'static str,
}

#[derive(Serialize)]
struct LabelView<'a> {
    name: &'a str,
    label: &'a str,
    value: &'a str,
}

/// Renders `notification` in `locale` (falling back as [`Templates::locale`] does).
pub fn render(
    templates: &Templates,
    notification: &Notification,
    locale: &str,
) -> Result<Rendered, Error> {
    let (_, locale) = templates.locale(locale);
    let status_text = |status| match status {
        AlertStatus::Firing => locale.text("firing"),
        AlertStatus::Resolved => locale.text("resolved"),
    };
    let alerts = &notification.alerts;
    let severity = alerts
        .iter()
        .map(|a| a.severity)
        .max()
        .unwrap_or(Severity::Info);
    let mut rules: Vec<&str> = Vec::new();
    for alert in alerts {
        if !rules.contains(&alert.rule_id.as_str()) {
            rules.push(&alert.rule_id);
        }
    }
    let count = alerts.len();

    let mut context = Context {
        lang: &locale.lang,
        dir: locale.direction.as_str(),
        t: &locale.strings,
        tlp: tlp_marking(notification.handling),
        tlp_style: tlp_style(notification.handling),
        status: status_name(notification.status),
        status_text: status_text(notification.status),
        severity: severity_name(severity),
        rules: rules.join(", "),
        target: target(notification),
        count,
        alert_word: locale.text(if count == 1 { "alert" } else { "alerts" }),
        receiver: &notification.receiver,
        alerts: alerts
            .iter()
            .map(|alert| AlertView {
                status: status_name(alert.status),
                status_text: status_text(alert.status),
                severity: severity_name(alert.severity),
                rule: &alert.rule_id,
                summary: alert.annotations.get("summary").map(String::as_str),
                value: number(alert.value),
                threshold: alert.threshold.map(number),
                window: format!("{} – {}", time(alert.window_start), time(alert.window_end)),
                started: time(alert.starts_at),
                ended: alert.ends_at.map(time),
                countries: alert.countries.join(", "),
                labels: labels(alert, &locale.strings),
                evidence: alert.evidence.join(", "),
                tlp: tlp_marking(alert.handling),
                tlp_style: tlp_style(alert.handling),
            })
            .collect(),
        subject: String::new(),
    };

    let subject = templates.render(SUBJECT, &Value::from(Serde(&context)))?;
    // A header is one line: whatever line breaks the template made become spaces.
    context.subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let value = Value::from(Serde(&context));
    Ok(Rendered {
        text: templates.render(BODY_TEXT, &value)?,
        html: templates.render(BODY_HTML, &value)?,
        subject: context.subject,
        lang: locale.lang.clone(),
    })
}

/// The mail for `rendered`: multipart/alternative, text first (the least preferred part
/// comes first, RFC 2046), with UTF-8 headers encoded by lettre (RFC 2047).
pub fn message(
    rendered: &Rendered,
    from: &Mailbox,
    to: &[Mailbox],
    message_id: &str,
    date: SystemTime,
) -> Result<Message, Error> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(&rendered.subject)
        .date(date)
        .message_id(Some(message_id.to_owned()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            rendered.lang.clone(),
        ))
        // RFC 3834: tells autoresponders not to answer a machine.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(Error::Message)
}

/// A Message-ID derived from the idempotency key: a repeat of the same notification to
/// the same channel carries the same id, which mail systems use to drop duplicates.
pub fn message_id(notification: &Notification, domain: &str) -> String {
    let digest = Sha256::digest(notification.idempotency_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<relec.{hex}@{domain}>")
}

fn status_name(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// What the group is about: its label values (a route, an agency), else the first
/// alert's route.
fn target(notification: &Notification) -> String {
    let values: Vec<&str> = notification
        .group_labels
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "rule" | "alertname" | "severity"))
        .map(|(_, value)| value.as_str())
        .collect();
    if values.is_empty() {
        let route = notification
            .alerts
            .first()
            .and_then(|a| a.labels.get("route"));
        return route.cloned().unwrap_or_default();
    }
    values.join(", ")
}

fn labels<'a>(alert: &'a Alert, strings: &'a BTreeMap<String, String>) -> Vec<LabelView<'a>> {
    alert
        .labels
        .iter()
        .filter(|(name, _)| name.as_str() != "rule")
        .map(|(name, value)| LabelView {
            name,
            label: strings.get(name).map_or(name.as_str(), String::as_str),
            value,
        })
        .collect()
}

/// Milliseconds since the epoch as `2024-05-01 12:00 UTC`: minutes are as precise as an
/// early warning needs, and every recipient reads the same zone.
fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Counts without a decimal point, fractions with at most two decimals.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.is_finite() {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        value.to_string()
    }
}

/// A typical notification, rendered in every locale while templates load to prove they work.
pub(crate) fn probe() -> Notification {
    let alert = Alert {
        fingerprint: "probe".into(),
        rule_id: "route_spike".into(),
        rule_version: "1".into(),
        status: AlertStatus::Firing,
        severity: Severity::High,
        labels: [("route".into(), "IRN-TUR-VAN".into())].into(),
        annotations: [(
            "summary".into(),
            "IRN-TUR-VAN: 412 persons in 7 days".into(),
        )]
        .into(),
        starts_at: 1_714_564_800_000,
        ends_at: Some(1_714_651_200_000),
        window_start: 1_713_960_000_000,
        window_end: 1_714_564_800_000,
        value: 412.0,
        threshold: Some(150.5),
        handling: Tlp::Amber,
        countries: vec!["IRN".into(), "TUR".into()],
        evidence: vec!["ev-1".into()],
        generated_at: 1_714_564_800_000,
    };
    Notification {
        subscriber: "probe".into(),
        receiver: "probe".into(),
        group_key: "probe".into(),
        group_labels: [("route".into(), "IRN-TUR-VAN".into())].into(),
        status: AlertStatus::Firing,
        alerts: vec![alert],
        handling: Tlp::Amber,
        idempotency_key: "probe".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(number(412.0), "412");
        assert_eq!(number(150.5), "150.5");
        assert_eq!(number(2.0 / 3.0), "0.67");
        assert_eq!(number(-3.0), "-3");
    }

    #[test]
    fn subject_has_tlp_severity_rule_route_status_and_count() {
        let rendered = render(&Templates::built_in(), &probe(), "en").expect("renders");
        assert_eq!(
            rendered.subject,
            "TLP:AMBER [HIGH] route_spike: IRN-TUR-VAN — firing (1 alert)"
        );
    }

    #[test]
    fn html_escapes_what_the_alert_says() {
        let mut notification = probe();
        notification.alerts[0]
            .annotations
            .insert("summary".into(), "<script>x</script> & co".into());
        let rendered = render(&Templates::built_in(), &notification, "en").expect("renders");
        assert!(
            rendered
                .html
                .contains("&lt;script&gt;x&lt;&#x2f;script&gt; &amp; co")
        );
        assert!(
            rendered.text.contains("<script>x</script> & co"),
            "text is not escaped"
        );
    }

    #[test]
    fn rtl_locales_set_the_direction() {
        let templates = Templates::built_in();
        for (id, dir) in [("fa", "rtl"), ("ur", "rtl"), ("bn", "ltr"), ("tr", "ltr")] {
            let rendered = render(&templates, &probe(), id).expect("renders");
            assert!(rendered.html.contains(&format!("dir=\"{dir}\"")), "{id}");
        }
    }

    #[test]
    fn the_strictest_marking_is_spelt_as_tlp_2_0_says() {
        let mut notification = probe();
        notification.handling = Tlp::AmberStrict;
        let rendered = render(&Templates::built_in(), &notification, "en").expect("renders");
        assert!(rendered.subject.starts_with("TLP:AMBER+STRICT "));
        assert!(rendered.text.starts_with("TLP:AMBER+STRICT\n"));
    }

    #[test]
    fn message_ids_follow_the_idempotency_key() {
        let mut notification = probe();
        let first = message_id(&notification, "relec.example");
        assert_eq!(first, message_id(&notification, "relec.example"));
        assert!(first.starts_with("<relec.") && first.ends_with("@relec.example>"));
        notification.idempotency_key.push('x');
        assert_ne!(first, message_id(&notification, "relec.example"));
    }
}
