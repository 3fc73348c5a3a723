//! Tests of the routing core as the stage uses it: a subscriptions file, silences and
//! alerts in; per-channel notifications out.

use relec_schemas::{AlertStatus, Tlp};

use super::*;
use crate::{
    Silence,
    testkit::{alert, handled, resolved},
};

const WAIT: i64 = 30_000;
const INTERVAL: i64 = 300_000;

const SUBSCRIPTIONS: &str = r#"
[[subscribers]]
id = "tur-ncp"
country = "TUR"
clearance = "AMBER_STRICT"
[subscribers.email]
addresses = ["ncp@egm.gov.tr.example"]
locale = "tr"
[[subscribers.webhooks]]
name = "soc"
url = "https://soc.egm.gov.tr.example/relec"
secret = "0123456789abcdef0123456789abcdef"

[[subscribers]]
id = "irn-ncp"
country = "IRN"
clearance = "GREEN"
[subscribers.email]
addresses = ["ncp@police.ir.example"]
locale = "fa"

[[subscribers]]
id = "pak-ncp"
country = "PAK"
clearance = "AMBER"
[subscribers.email]
addresses = ["ncp@fia.gov.pk.example"]
locale = "ur"

[[receivers]]
name = "desk"
channels = ["pak-ncp/email"]

[[receivers]]
name = "border"
subscribers = ["tur-ncp", "irn-ncp"]
red_recipients = ["tur-ncp"]

[[receivers]]
name = "deaths"
subscribers = ["tur-ncp", "irn-ncp", "pak-ncp"]

[route]
receiver = "desk"
group_by = ["rule", "route"]

[[route.routes]]
receiver = "deaths"
matchers = ['rule="death_or_missing"']
red_recipients = ["irn-ncp"]

[[route.routes]]
receiver = "border"
matchers = ['route=~"IRN-TUR.*"']

[[inhibit_rules]]
source_matchers = ['rule="route_spike"']
target_matchers = ['rule="route_shift"']
equal = ["route"]
"#;

fn subscriptions() -> Subscriptions {
    Subscriptions::from_toml(SUBSCRIPTIONS).expect("test subscriptions parse")
}

fn on_route(fp: &str, rule: &str, route: &str) -> Alert {
    let mut a = alert(fp, &[("route", route)]);
    a.rule_id = rule.to_owned();
    a
}

/// (channel, fingerprints) of each delivery, sorted by channel.
fn delivered(deliveries: &[Outbound]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = (deliveries.iter())
        .map(|d| {
            let fps = (d.notification.alerts.iter())
                .map(|a| a.fingerprint.clone())
                .collect();
            (d.channel.to_string(), fps)
        })
        .collect();
    out.sort();
    out
}

fn pairs(expected: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    (expected.iter())
        .map(|(c, fps)| (c.to_string(), fps.iter().map(|f| f.to_string()).collect()))
        .collect()
}

#[test]
fn each_channel_of_each_recipient_gets_its_notification() {
    let subs = subscriptions();
    let mut router = Router::new();
    router.receive(&subs, &on_route("a", "route_spike", "IRN-TUR-VAN"), 0);
    router.receive(&subs, &on_route("b", "route_spike", "PAK-IRN-TAFTAN"), 0);
    assert_eq!(router.next_due(), Some(WAIT));
    let sent = router.due(&subs, &Silences::default(), WAIT);
    assert_eq!(
        delivered(&sent),
        pairs(&[
            ("irn-ncp/email", &["a"]),
            ("pak-ncp/email", &["b"]),
            ("tur-ncp/email", &["a"]),
            ("tur-ncp/webhook/soc", &["a"]),
        ])
    );
    let keys: std::collections::BTreeSet<&str> = (sent.iter())
        .map(|d| d.notification.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 4, "one key per channel");
}

#[test]
fn tlp_cuts_each_recipient_to_its_clearance_and_red_to_named_ones() {
    let subs = subscriptions();
    let mut router = Router::new();
    for (fp, tlp) in [
        ("green", Tlp::Green),
        ("amber", Tlp::Amber),
        ("strict", Tlp::AmberStrict),
        ("red", Tlp::Red),
    ] {
        let a = handled(on_route(fp, "route_spike", "IRN-TUR-VAN"), tlp);
        router.receive(&subs, &a, 0);
    }
    let sent = router.due(&subs, &Silences::default(), WAIT);
    assert_eq!(
        delivered(&sent),
        pairs(&[
            ("irn-ncp/email", &["green"]),
            // tur-ncp is named for RED by the border receiver.
            ("tur-ncp/email", &["amber", "green", "red", "strict"]),
            ("tur-ncp/webhook/soc", &["amber", "green", "red", "strict"]),
        ])
    );
    let marking = |channel: &str| {
        (sent.iter())
            .find(|d| d.channel.to_string() == channel)
            .map(|d| d.notification.handling)
    };
    assert_eq!(marking("irn-ncp/email"), Some(Tlp::Green));
    assert_eq!(marking("tur-ncp/email"), Some(Tlp::Red));
}

#[test]
fn a_route_can_name_red_recipients_its_receiver_does_not() {
    let subs = subscriptions();
    let mut router = Router::new();
    let death = handled(on_route("d", "death_or_missing", "IRN-TUR-VAN"), Tlp::Red);
    router.receive(&subs, &death, 0);
    let sent = router.due(&subs, &Silences::default(), WAIT);
    // The deaths route names irn-ncp only; the border receiver's naming of tur-ncp does
    // not apply, as the alert took the deaths route.
    assert_eq!(delivered(&sent), pairs(&[("irn-ncp/email", &["d"])]));
}

#[test]
fn silenced_alerts_are_not_sent_while_the_silence_lasts() {
    let subs = subscriptions();
    let mut silences = Silences::default();
    let silence = Silence::new(
        vec![r#"route=~"IRN-TUR.*""#.parse().expect("matcher")],
        0,
        WAIT + INTERVAL,
        "ops",
        "feed maintenance",
    )
    .expect("valid");
    let id = silence.id;
    silences.upsert(silence);
    let mut router = Router::new();
    router.receive(&subs, &on_route("a", "route_spike", "IRN-TUR-VAN"), 0);
    assert!(router.due(&subs, &silences, WAIT).is_empty());
    assert!(silences.expire(&id, WAIT + 1).is_some());
    let sent = router.due(&subs, &silences, WAIT + INTERVAL);
    assert_eq!(sent.len(), 3, "sent once the silence is expired");
}

#[test]
fn a_firing_source_inhibits_targets_with_equal_labels() {
    let subs = subscriptions();
    let mut router = Router::new();
    let spike = on_route("spike", "route_spike", "PAK-IRN-TAFTAN");
    router.receive(&subs, &spike, 0);
    router.receive(
        &subs,
        &on_route("shift", "route_shift", "PAK-IRN-TAFTAN"),
        0,
    );
    router.receive(
        &subs,
        &on_route("other", "route_shift", "AFG-IRN-NIMROZ"),
        0,
    );
    let sent = router.due(&subs, &Silences::default(), WAIT);
    assert_eq!(
        delivered(&sent),
        pairs(&[("pak-ncp/email", &["other"]), ("pak-ncp/email", &["spike"])])
    );

    // Once the source resolves, the target is news.
    router.receive(&subs, &resolved(&spike, 60_000), 60_000);
    let sent = router.due(&subs, &Silences::default(), WAIT + INTERVAL);
    let statuses: Vec<(String, AlertStatus)> = (sent.iter())
        .flat_map(|d| d.notification.alerts.iter())
        .map(|a| (a.fingerprint.clone(), a.status))
        .collect();
    assert!(
        statuses.contains(&("shift".to_owned(), AlertStatus::Firing)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("spike".to_owned(), AlertStatus::Resolved)),
        "{statuses:?}"
    );
}

#[test]
fn the_router_state_persists_as_json() {
    let subs = subscriptions();
    let mut router = Router::new();
    router.receive(&subs, &on_route("a", "route_spike", "IRN-TUR-VAN"), 0);
    let json = serde_json::to_vec(&router).expect("serialises");
    let mut restored: Router = serde_json::from_slice(&json).expect("deserialises");
    let silences = Silences::default();
    assert_eq!(
        restored.due(&subs, &silences, WAIT),
        router.due(&subs, &silences, WAIT)
    );
    assert_eq!(restored.groups(), 1);
}

#[test]
fn receive_says_which_groups_and_whether_anyone_may_hear() {
    let subs = subscriptions();
    let mut router = Router::new();
    let received = router.receive(&subs, &on_route("a", "route_spike", "IRN-TUR-VAN"), 5);
    assert_eq!(received.joined.len(), 1);
    assert_eq!(received.joined[0].flush_at, 5 + WAIT);
    assert!(received.reachable);
    // A second alert of the group flushes with it.
    let second = router.receive(&subs, &on_route("b", "route_spike", "IRN-TUR-VAN"), 9);
    assert_eq!(second.joined, received.joined);

    // RED on the border route: only tur-ncp is named there, so someone hears it.
    let red = handled(on_route("r", "route_spike", "IRN-TUR-VAN"), Tlp::Red);
    assert!(router.receive(&subs, &red, 10).reachable);
    // RED on the desk route names nobody: nobody ever receives it.
    let red = handled(on_route("r2", "route_spike", "PAK-IRN-TAFTAN"), Tlp::Red);
    assert!(!router.receive(&subs, &red, 10).reachable);

    // A resolved alert nobody was told about joins no group.
    let stray = resolved(&on_route("z", "route_spike", "AFG-PAK"), 20);
    assert!(router.receive(&subs, &stray, 20).joined.is_empty());
}

#[test]
fn changed_groups_are_handed_out_once_and_restore() {
    let subs = subscriptions();
    let mut router = Router::new();
    router.receive(&subs, &on_route("a", "route_spike", "IRN-TUR-VAN"), 0);
    let changed = router.take_changed();
    assert_eq!(changed.len(), 1);
    assert!(router.take_changed().is_empty(), "handed out once");

    let mut restored = Router::new();
    let (key, json) = &changed[0];
    restored
        .restore_group(key, json.as_deref().expect("a live group"))
        .expect("restores");
    assert_eq!(restored, router);
    assert_eq!(restored.flushes(), router.flushes());

    // The flush that empties the group reports it gone.
    router.receive(
        &subs,
        &resolved(&on_route("a", "route_spike", "IRN-TUR-VAN"), 1),
        1,
    );
    let _ = router.due(&subs, &Silences::default(), WAIT);
    let gone = router.take_changed();
    assert_eq!(gone, vec![(key.clone(), None)]);
}
