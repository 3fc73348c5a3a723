//! The three webhook bodies (native JSON, OASIS CAP 1.2 XML, Alertmanager JSON v4) as
//! golden files, and checks that each is what its consumers expect: CAP parsed back with
//! its required elements, order and code values; Alertmanager's field set and times.
//! `UPDATE_GOLDEN=1 cargo test -p relec-notifier --test webhook_formats` rewrites them.

mod common;

use quick_xml::{Reader, XmlVersion, events::Event};
use relec_notifier::{
    subscriptions::WebhookFormat,
    webhook::{CAP_NAMESPACE, WebhookOptions, body},
};
use relec_schemas::{AlertStatus, Tlp};
use serde_json::Value;

fn options() -> WebhookOptions {
    WebhookOptions {
        cap_sender: "relec@relec.example".into(),
        external_url: "https://relec.example/alerts".into(),
    }
}

fn render(format: WebhookFormat, notification: &relec_notifier::Notification) -> String {
    let (bytes, _) = body(format, notification, &options()).expect("renders");
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn bodies_match_the_golden_files() {
    let notification = common::sample();
    common::assert_golden(
        "webhook/native.json",
        &render(WebhookFormat::Native, &notification),
    );
    common::assert_golden(
        "webhook/cap.xml",
        &render(WebhookFormat::Cap, &notification),
    );
    common::assert_golden(
        "webhook/alertmanager.json",
        &render(WebhookFormat::Alertmanager, &notification),
    );
}

#[test]
fn content_types_and_determinism() {
    let notification = common::sample();
    for (format, content_type) in [
        (WebhookFormat::Native, "application/json"),
        (WebhookFormat::Alertmanager, "application/json"),
        (WebhookFormat::Cap, "application/xml; charset=utf-8"),
    ] {
        let first = body(format, &notification, &options()).expect("renders");
        assert_eq!(first.1, content_type);
        // A retry sends the same bytes, so a receiver can compare repeats.
        assert_eq!(
            first,
            body(format, &notification, &options()).expect("renders")
        );
    }
}

#[test]
fn native_carries_the_alert_records_unchanged() {
    let notification = common::sample();
    let json: Value =
        serde_json::from_str(&render(WebhookFormat::Native, &notification)).expect("JSON");
    assert_eq!(json["id"], notification.idempotency_key.as_str());
    assert_eq!(json["tlp"], "TLP:AMBER");
    assert_eq!(json["status"], "FIRING");
    let alerts: Vec<relec_schemas::Alert> =
        serde_json::from_value(json["alerts"].clone()).expect("Alert records");
    assert_eq!(alerts, notification.alerts);
}

#[test]
fn alertmanager_v4_has_every_field_receivers_read() {
    let notification = common::sample();
    let json: Value =
        serde_json::from_str(&render(WebhookFormat::Alertmanager, &notification)).expect("JSON");
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ];
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["version"], "4");
    assert_eq!(json["status"], "firing");
    assert_eq!(json["receiver"], "ncp-routes");
    assert_eq!(json["groupKey"], notification.group_key.as_str());
    assert_eq!(json["truncatedAlerts"], 0);
    assert_eq!(
        json["commonLabels"],
        serde_json::json!({ "route": "IRN-TUR-VAN" })
    );
    let alerts = json["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 3);
    let spike = &alerts[0];
    assert_eq!(spike["status"], "firing");
    assert_eq!(spike["labels"]["alertname"], "route_spike");
    assert_eq!(spike["labels"]["severity"], "high");
    assert_eq!(spike["startsAt"], "2024-05-01T06:00:00Z");
    assert_eq!(spike["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(spike["generatorURL"], "https://relec.example/alerts");
    assert_eq!(spike["fingerprint"], "5f2a9c1e7b3d4a60");
    assert_eq!(alerts[2]["status"], "resolved");
    assert_eq!(alerts[2]["endsAt"], "2024-04-30T18:00:00Z");
}

/// A parsed XML element, enough to check a CAP message.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn text_of(&self, name: &str) -> &str {
        self.child(name)
            .map(|c| c.text.as_str())
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }
}

fn parse_xml(xml: &str) -> Node {
    // Not trimmed: entity references split text into events, and trimming each piece
    // would eat the spaces next to them. Containers just collect the indentation.
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(Node {
                name: e.name().as_ref().to_owned(),
                attributes: e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let value = a.normalized_value(XmlVersion::Implicit1_0).expect("value");
                        (a.key.as_ref().to_owned(), value.into_owned())
                    })
                    .collect(),
                ..Node::default()
            }),
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let entity = format!("&{};", &*r);
                let text = quick_xml::escape::unescape(&entity).expect("known entity");
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().unwrap()
}

/// CAP 1.2's `dateTime` form: `2002-05-24T16:49:00-07:00`, no fractions, no `Z`.
fn is_cap_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 25
        && text.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 | 22 => c == ':',
            19 => c == '+' || c == '-',
            _ => c.is_ascii_digit(),
        })
}

/// The elements of `node` in document order, among the names CAP's schema sequences.
fn order<'a>(node: &'a Node, sequence: &[&str]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = node.children.iter().map(|c| c.name.as_str()).collect();
    seen.dedup();
    assert!(
        seen.iter().all(|n| sequence.contains(n)),
        "{seen:?} has an element CAP does not define here"
    );
    let positions: Vec<usize> = seen
        .iter()
        .map(|n| sequence.iter().position(|s| s == n).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of CAP order: {seen:?}"
    );
    seen
}

fn check_cap(xml: &str, alerts: usize) -> Node {
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let alert = parse_xml(xml);
    assert_eq!(alert.name, "alert");
    assert_eq!(
        alert.attributes,
        [("xmlns".to_owned(), CAP_NAMESPACE.to_owned())]
    );
    order(
        &alert,
        &[
            "identifier",
            "sender",
            "sent",
            "status",
            "msgType",
            "source",
            "scope",
            "restriction",
            "addresses",
            "code",
            "note",
            "references",
            "incidents",
            "info",
        ],
    );
    for required in ["identifier", "sender", "sent", "status", "msgType", "scope"] {
        assert!(!alert.text_of(required).is_empty(), "{required}");
    }
    assert!(!alert.text_of("identifier").contains([' ', ',', '<', '&']));
    assert!(
        is_cap_time(alert.text_of("sent")),
        "{}",
        alert.text_of("sent")
    );
    assert_eq!(alert.text_of("status"), "Actual");
    assert!(["Alert", "Update", "Cancel"].contains(&alert.text_of("msgType")));
    match alert.text_of("scope") {
        "Restricted" => assert!(alert.text_of("restriction").starts_with("TLP:")),
        "Public" => assert!(alert.child("restriction").is_none()),
        other => panic!("scope {other}"),
    }

    assert_eq!(alert.all("info").count(), alerts);
    for info in alert.all("info") {
        order(
            info,
            &[
                "language",
                "category",
                "event",
                "responseType",
                "urgency",
                "severity",
                "certainty",
                "audience",
                "eventCode",
                "effective",
                "onset",
                "expires",
                "senderName",
                "headline",
                "description",
                "instruction",
                "web",
                "contact",
                "parameter",
                "resource",
                "area",
            ],
        );
        assert_eq!(info.text_of("category"), "Security");
        assert!(!info.text_of("event").is_empty());
        let one_of = |name, values: &[&str]| {
            let value = info.text_of(name);
            assert!(values.contains(&value), "{name} = {value}");
        };
        one_of(
            "urgency",
            &["Immediate", "Expected", "Future", "Past", "Unknown"],
        );
        one_of(
            "severity",
            &["Extreme", "Severe", "Moderate", "Minor", "Unknown"],
        );
        one_of(
            "certainty",
            &["Observed", "Likely", "Possible", "Unlikely", "Unknown"],
        );
        one_of("responseType", &["Monitor", "AllClear"]);
        for time in ["onset", "expires"] {
            if let Some(t) = info.child(time) {
                assert!(is_cap_time(&t.text), "{time} = {}", t.text);
            }
        }
        assert!(info.text_of("headline").chars().count() <= 160);
        for parameter in info.all("parameter") {
            assert!(!parameter.text_of("valueName").is_empty());
            parameter.text_of("value");
        }
        for area in info.all("area") {
            assert!(!area.text_of("areaDesc").is_empty());
        }
    }
    alert
}

#[test]
fn cap_has_the_required_elements_in_order() {
    let notification = common::sample();
    let alert = check_cap(&render(WebhookFormat::Cap, &notification), 3);
    assert_eq!(alert.text_of("sender"), "relec@relec.example");
    assert_eq!(alert.text_of("sent"), "2024-05-01T06:00:00+00:00");
    assert_eq!(alert.text_of("restriction"), "TLP:AMBER");
    // Firing, with one alert of the group resolved: an update.
    assert_eq!(alert.text_of("msgType"), "Update");

    let infos: Vec<&Node> = alert.all("info").collect();
    assert_eq!(infos[0].text_of("event"), "route_spike");
    assert_eq!(
        (
            infos[0].text_of("urgency"),
            infos[0].text_of("severity"),
            infos[0].text_of("certainty")
        ),
        ("Expected", "Severe", "Observed")
    );
    assert_eq!(
        infos[0].text_of("headline"),
        "[HIGH] route_spike: IRN-TUR-VAN"
    );
    assert_eq!(infos[1].text_of("urgency"), "Immediate");
    assert_eq!(infos[2].text_of("urgency"), "Past");
    assert_eq!(infos[2].text_of("responseType"), "AllClear");
    let parameters: Vec<(&str, &str)> = infos[0]
        .all("parameter")
        .map(|p| (p.text_of("valueName"), p.text_of("value")))
        .collect();
    assert!(parameters.contains(&("route", "IRN-TUR-VAN")));
    assert!(parameters.contains(&("tlp", "TLP:AMBER")));
    let area = infos[0].child("area").expect("area");
    assert_eq!(area.text_of("areaDesc"), "IRN, TUR");
    assert_eq!(area.all("geocode").count(), 2);
}

#[test]
fn cap_cancels_a_resolved_group_and_escapes_text() {
    let mut notification = common::sample();
    notification.status = AlertStatus::Resolved;
    notification.handling = Tlp::Clear;
    for alert in &mut notification.alerts {
        alert.status = AlertStatus::Resolved;
        alert.ends_at = Some(common::FIRED_AT);
    }
    let hostile = "<script>alert(1)</script> & \"quotes\" ]]> ئاگاداری";
    notification.alerts[0]
        .annotations
        .insert("summary".into(), hostile.into());
    notification.alerts[0]
        .labels
        .insert("note".into(), "a < b & c".into());

    let xml = render(WebhookFormat::Cap, &notification);
    assert!(!xml.contains("<script>"));
    let alert = check_cap(&xml, 3);
    assert_eq!(alert.text_of("msgType"), "Cancel");
    assert_eq!(alert.text_of("scope"), "Public");
    assert!(alert.child("note").is_some());
    let info = alert.child("info").expect("info");
    assert!(info.text_of("description").starts_with(hostile));
    assert!(
        info.all("parameter")
            .any(|p| p.text_of("valueName") == "note" && p.text_of("value") == "a < b & c")
    );
}
