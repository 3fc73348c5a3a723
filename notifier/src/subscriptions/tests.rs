//! Tests of the subscriptions file: the shipped example parses, and every mistake is
//! reported with the key path an operator would look for.

use super::*;
use crate::{
    matcher::Labels,
    route::{DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL},
};

const EXAMPLE: &str = include_str!("../../../deploy/subscriptions.example.toml");

/// The example's secrets come from files and variables that only exist where it is
/// deployed; here they become inline strings, so the rest is parsed exactly as written.
fn example() -> Subscriptions {
    let secrets = regex::Regex::new(r#"\{\s*(env|file)\s*=\s*"[^"]*"\s*\}"#).expect("regex");
    let text = secrets.replace_all(EXAMPLE, r#""example-secret-0123456789abcdef""#);
    match Subscriptions::from_toml(&text) {
        Ok(s) => s,
        Err(e) => panic!("the example does not parse:\n{e}"),
    }
}

/// The problems reported for `text`, one `path: message` per line.
fn problems(text: &str) -> String {
    match Subscriptions::from_toml(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(Error::Subscriptions(problems)) => problems.to_string(),
        Err(e) => panic!("expected problems, got {e}"),
    }
}

fn assert_reports(text: &str, expected: &[&str]) {
    let report = problems(text);
    for line in expected {
        assert!(
            report.lines().any(|l| l.trim() == *line),
            "{line:?} is missing from the report:\n{report}"
        );
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_example_parses() {
    let s = example();
    assert_eq!(s.subscribers().len(), 7);
    let countries: Vec<&str> = s.subscribers().iter().map(|s| s.country.as_str()).collect();
    for relec in ["AFG", "BGD", "IRN", "IRQ", "PAK", "TUR"] {
        assert!(
            countries.contains(&relec),
            "{relec} has no NCP in the example"
        );
    }
    let irn = s.subscriber("irn-ncp").expect("irn-ncp");
    assert_eq!(irn.clearance, Clearance::AMBER_STRICT);
    assert_eq!(irn.email.as_ref().expect("email").locale, "fa");
    assert_eq!(irn.webhooks[0].format, WebhookFormat::Cap);
    let tur_hook: ChannelId = "tur-ncp/webhook/alertmanager".parse().expect("channel");
    let hook = s.webhook(&tur_hook).expect("webhook");
    assert_eq!(hook.timeout, Duration::from_secs(5));
    assert_eq!(hook.headers["X-Scope-OrgID"], "relec");
    assert_eq!(s.inhibit_rules().len(), 1);
}

#[test]
fn the_example_routes_as_its_comments_say() {
    let s = example();
    let receivers = |pairs: &[(&str, &str)]| -> Vec<String> {
        s.routes()
            .matching(&labels(pairs))
            .into_iter()
            .map(|r| r.receiver.clone())
            .collect()
    };
    assert_eq!(
        receivers(&[("rule", "death_or_missing"), ("route", "IRN-TUR-VAN")]),
        ["all-ncps", "iran-turkey-border"]
    );
    assert_eq!(
        receivers(&[
            ("rule", "route_spike"),
            ("route", "IRN-TUR-VAN"),
            ("category", "SMUGGLING"),
            ("severity", "high"),
        ]),
        ["turkey-webhook", "iran-turkey-border"]
    );
    assert_eq!(
        receivers(&[("rule", "route_spike"), ("route", "PAK-IRN-TAFTAN")]),
        ["afghanistan-iran-pakistan"]
    );
    assert_eq!(
        receivers(&[("rule", "route_spike"), ("route", "BGD-IND")]),
        ["regional-desk"]
    );
    let silence = s
        .routes()
        .matching(&labels(&[("rule", "reporting_silence")]));
    assert!(!silence[0].send_resolved);
    assert_eq!(silence[0].repeat_interval, Duration::from_secs(24 * 3600));
    assert_eq!(silence[0].group_wait, Duration::from_secs(30), "inherited");
}

#[test]
fn receivers_expand_to_channels() {
    let s = example();
    let channels: Vec<String> = s
        .channels("afghanistan-iran-pakistan")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        channels,
        ["afg-ncp/email", "irn-ncp/email", "pak-ncp/email"]
    );
    let border: Vec<String> = s
        .channels("iran-turkey-border")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        border,
        [
            "irn-ncp/email",
            "irn-ncp/webhook/situation-room",
            "tur-ncp/email",
            "tur-ncp/webhook/alertmanager",
        ]
    );
    assert!(s.channels("no-such-receiver").is_empty());
}

#[test]
fn debug_never_shows_a_webhook_secret() {
    let s = example();
    let printed = format!("{s:?}");
    assert!(!printed.contains("example-secret"), "{printed}");
    assert!(printed.contains("<redacted>"));
}

const MINIMAL: &str = r#"
[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@egm.gov.tr.example"]

[[receivers]]
name = "tur"
subscribers = ["tur-ncp"]

[route]
receiver = "tur"
"#;

#[test]
fn a_minimal_file_gets_the_defaults() {
    let s = Subscriptions::from_toml(MINIMAL).expect("parses");
    let root = s.routes().root();
    assert_eq!(root.group_wait, DEFAULT_GROUP_WAIT);
    assert_eq!(root.group_interval, DEFAULT_GROUP_INTERVAL);
    assert_eq!(root.repeat_interval, DEFAULT_REPEAT_INTERVAL);
    assert!(root.send_resolved);
    let email = s.subscribers()[0].email.as_ref().expect("email");
    assert_eq!(email.locale, DEFAULT_LOCALE);
}

#[test]
fn meaning_problems_are_all_reported_with_their_paths() {
    let text = r#"
[[subscribers]]
id = "tur-ncp"
country = "TRK"
clearance = "GREEN"
[subscribers.email]
addresses = ["not-an-address"]
locale = "Turkish"

[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "GREEN"

[[subscribers]]
id = "irn ncp"
country = "IRN"
clearance = "AMBER"
[[subscribers.webhooks]]
name = "soc"
url = "ftp://ews.example/hook"
secret = "short"
timeout = "0s"
headers = { "Webhook-Signature" = "forged", "bad header" = "x" }
[[subscribers.webhooks]]
name = "soc"
url = "https://ews.example/hook"
secret = "0123456789abcdef0123"

[[receivers]]
name = "border"
subscribers = ["tur-ncp", "pak-ncp"]
channels = ["tur-ncp/webhook/none"]
red_recipients = ["afg-ncp"]

[[receivers]]
name = "empty"

[route]
matchers = ['severity="high"']
repeat_interval = "1m"

[[route.routes]]
receiver = "nobody"
group_by = ["route", "...", "route", "bad-label"]
group_interval = "0s"

[[route.routes]]
receiver = "border"
red_recipients = ["irn ncp"]

[[inhibit_rules]]
source_matchers = ['rule="route_spike"']
target_matchers = []
equal = ["route", "not a label"]
"#;
    assert_reports(
        text,
        &[
            r#"subscribers[0].country: "TRK" is not an ISO 3166-1 alpha-3 code (e.g. TUR)"#,
            r#"subscribers[0].email.addresses[0]: "not-an-address" is not an email address"#,
            r#"subscribers[0].email.locale: "Turkish" is not a language tag such as "fa" or "tr""#,
            r#"subscribers[1].id: "tur-ncp" appears twice"#,
            "subscribers[1]: no channel: give it [subscribers.email] or [[subscribers.webhooks]]",
            "subscribers[2].id: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            "subscribers[2].webhooks[0].url: not an http(s) URL",
            "subscribers[2].webhooks[0].secret: shorter than 16 bytes: too weak to sign with",
            "subscribers[2].webhooks[0].timeout: must be more than 0",
            r#"subscribers[2].webhooks[0].headers."Webhook-Signature": set by the webhook channel itself"#,
            r#"subscribers[2].webhooks[0].headers."bad header": not a valid header name"#,
            r#"subscribers[2].webhooks[1].name: "soc" appears twice"#,
            r#"receivers[0].subscribers[1]: no subscriber has id "pak-ncp""#,
            r#"receivers[0].channels[0]: subscriber "tur-ncp" has no channel tur-ncp/webhook/none"#,
            r#"receivers[0].red_recipients[0]: "afg-ncp" is not among this receiver's subscribers or channels"#,
            "receivers[1]: reaches nobody: list subscribers or channels",
            "route.receiver: the root route needs a receiver, for alerts no other route takes",
            "route.matchers: the root route takes every alert: it has no matchers",
            "route.repeat_interval: 1m is shorter than group_interval (5m); reminders cannot come more often",
            r#"route.routes[0].receiver: no receiver is named "nobody""#,
            r#"route.routes[0].group_by: "..." means every label and stands alone"#,
            r#"route.routes[0].group_by[2]: "route" appears twice"#,
            r#"route.routes[0].group_by[3]: "bad-label" is not a label name"#,
            "route.routes[0].group_interval: must be more than 0",
            r#"route.routes[1].red_recipients[0]: "irn ncp" is not among the subscribers of receiver "border""#,
            "inhibit_rules[0].target_matchers: list at least one: without, every alert could be muted",
            r#"inhibit_rules[0].equal[1]: "not a label" is not a label name"#,
        ],
    );
}

#[test]
fn type_problems_in_several_entries_are_reported_together() {
    let text = r#"
[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "RED"

[[subscribers]]
id = "irn-ncp"
country = "IRN"
clearance = "AMBER"
[[subscribers.webhooks]]
name = "soc"
url = "https://ews.example/hook"
secret = "0123456789abcdef0123"
format = "xml"

[[receivers]]
name = "all"
subscribers = ["tur-ncp"]
channels = ["tur-ncp/sms"]

[route]
receiver = "all"
group_wait = "soon"

[extra]
"#;
    let report = problems(text);
    for (path, message) in [
        ("subscribers[0].clearance", "RED is never a clearance"),
        ("subscribers[1].webhooks[0].format", "unknown variant `xml`"),
        ("receivers[0].channels[0]", "is not a channel"),
        ("route.group_wait", "soon"),
        ("extra", "unknown section"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.trim().starts_with(&format!("{path}: ")) && l.contains(message)),
            "{path}: {message} is missing from:\n{report}"
        );
    }
}

#[test]
fn a_bad_matcher_is_reported_where_it_is() {
    let text = format!(
        "{MINIMAL}\n[[route.routes]]\nmatchers = ['country=\"TUR\"', 'severity=~\"(high\"']\n"
    );
    let report = problems(&text);
    assert!(
        report.contains("route.routes[0].matchers[1]: invalid matcher")
            && report.contains("not a valid regular expression"),
        "{report}"
    );
}

#[test]
fn unknown_keys_and_syntax_errors_say_where() {
    let typo = MINIMAL.replace("receiver = \"tur\"", "reciever = \"tur\"");
    let report = problems(&typo);
    assert!(
        report.contains("route.reciever: unknown field `reciever`"),
        "{report}"
    );

    let report = problems("[route\nreceiver = 1");
    assert!(report.trim().starts_with("line 1:"), "{report}");

    let report = problems("subscribers = 3\n[route]\nreceiver = \"x\"");
    assert!(report.contains("subscribers: expected a list"), "{report}");
    let report = problems("");
    assert!(report.contains("route: missing"), "{report}");
}

#[test]
fn red_is_named_on_receivers_and_routes() {
    let text = format!(
        "{MINIMAL}red_recipients = [\"tur-ncp\"]\n\n[[route.routes]]\nmatchers = ['rule=\"x\"']\nred_recipients = [\"tur-ncp\"]\n"
    );
    let s = Subscriptions::from_toml(&text).expect("parses");
    assert_eq!(s.routes().root().red_recipients, ["tur-ncp"]);
    let child = s.routes().matching(&labels(&[("rule", "x")]));
    assert_eq!(child[0].red_recipients, ["tur-ncp"]);
    let grandchildless = s.routes().matching(&labels(&[("rule", "y")]));
    assert_eq!(
        grandchildless[0].id, "{}",
        "the root takes what no child does"
    );
}

#[test]
fn channel_ids_read_as_they_print() {
    for text in ["tur-ncp/email", "irn-ncp/webhook/situation-room"] {
        let id: ChannelId = text.parse().expect("channel id");
        assert_eq!(id.to_string(), text);
    }
    for bad in ["tur-ncp", "tur-ncp/sms", "/email", "a/webhook/b/c"] {
        assert!(bad.parse::<ChannelId>().is_err(), "{bad}");
    }
}
