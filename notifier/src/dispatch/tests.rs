//! Tests of the aggregation groups: when notifications go out, what they carry, and what
//! the notification log remembers, on a clock the tests drive.

use std::collections::BTreeSet;

use relec_schemas::Tlp;

use super::*;
use crate::{
    subscriptions::{Channel, RouteConfig},
    testkit::{alert, handled, resolved},
    tlp::Clearance,
};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// The defaults: group_wait 30s, group_interval 5m, repeat_interval 4h.
const WAIT: i64 = 30 * SECOND;
const INTERVAL: i64 = 5 * MINUTE;

fn routes(extra: &str) -> RouteTree {
    let config: RouteConfig = toml::from_str(&format!(
        "receiver = \"ncps\"\ngroup_by = [\"rule\"]\n{extra}"
    ))
    .expect("route");
    RouteTree::new(&config)
}

fn channel(subscriber: &str) -> ChannelId {
    ChannelId {
        subscriber: subscriber.to_owned(),
        channel: Channel::Email,
    }
}

/// Recipients by subscriber id and clearance; muted alerts by fingerprint.
#[derive(Default)]
struct Everyone {
    recipients: Vec<Recipient>,
    muted: BTreeSet<String>,
}

impl Everyone {
    fn one() -> Self {
        Self::default().with("tur-ncp", Clearance::AMBER_STRICT, false)
    }

    fn with(mut self, subscriber: &str, clearance: Clearance, named_for_red: bool) -> Self {
        self.recipients.push(Recipient {
            channel: channel(subscriber),
            access: Access {
                clearance,
                named_for_red,
            },
        });
        self
    }
}

impl Audience for Everyone {
    fn muted(&self, alert: &Alert) -> bool {
        self.muted.contains(&alert.fingerprint)
    }

    fn recipients(&self, _route_id: &str, _receiver: &str) -> Vec<Recipient> {
        self.recipients.clone()
    }
}

/// Fingerprint and status of each alert in a notification.
fn summary(d: &Outbound) -> Vec<(String, AlertStatus)> {
    (d.notification.alerts.iter())
        .map(|a| (a.fingerprint.clone(), a.status))
        .collect()
}

fn firing(fps: &[&str]) -> Vec<(String, AlertStatus)> {
    fps.iter()
        .map(|f| (f.to_string(), AlertStatus::Firing))
        .collect()
}

#[test]
fn fifty_alerts_within_group_wait_make_one_notification() {
    let routes = routes("");
    let mut d = Dispatcher::new();
    for i in 0..50 {
        let mut a = alert(&format!("fp{i:02}"), &[("route", &format!("R{i}"))]);
        a.starts_at = i;
        d.insert(&routes, &a, i * 500);
    }
    assert_eq!(d.len(), 1, "one rule, one group");
    assert_eq!(d.next_due(), Some(WAIT));
    assert!(d.due(WAIT - 1, &Everyone::one()).is_empty());

    let sent = d.due(WAIT, &Everyone::one());
    assert_eq!(sent.len(), 1);
    let n = &sent[0].notification;
    assert_eq!(n.alerts.len(), 50);
    assert_eq!(n.status, AlertStatus::Firing);
    assert_eq!(n.subscriber, "tur-ncp");
    assert_eq!(n.receiver, "ncps");
    assert_eq!(n.group_key, "{}:{rule=\"route_spike\"}");
    assert_eq!(n.group_labels["rule"], "route_spike");
    assert_eq!(d.next_due(), Some(WAIT + INTERVAL));
}

#[test]
fn later_flushes_send_only_when_something_changed() {
    let routes = routes("");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    d.insert(&routes, &alert("a", &[]), 0);
    assert_eq!(d.due(WAIT, &everyone).len(), 1);

    // Nothing new: the next flushes send nothing.
    assert!(d.due(WAIT + INTERVAL, &everyone).is_empty());
    // The same transition again (a replay) is no news either.
    d.insert(&routes, &alert("a", &[]), WAIT + INTERVAL + 1);
    assert!(d.due(WAIT + 2 * INTERVAL, &everyone).is_empty());

    // A new alert waits for the next group_interval, not group_wait, and the group is
    // sent whole.
    d.insert(&routes, &alert("b", &[]), WAIT + 2 * INTERVAL + 1);
    assert_eq!(d.next_due(), Some(WAIT + 3 * INTERVAL));
    let sent = d.due(WAIT + 3 * INTERVAL, &everyone);
    assert_eq!(sent.len(), 1);
    assert_eq!(summary(&sent[0]), firing(&["a", "b"]));
}

#[test]
fn an_unchanged_group_is_repeated_after_repeat_interval() {
    let routes = routes("");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    d.insert(&routes, &alert("a", &[]), 0);
    let first = d.due(WAIT, &everyone).remove(0).notification;

    let mut t = WAIT;
    let mut reminders = Vec::new();
    while t < WAIT + 9 * HOUR {
        t += INTERVAL;
        reminders.extend(d.due(t, &everyone).into_iter().map(|d| (t, d)));
    }
    let times: Vec<i64> = reminders.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [WAIT + 4 * HOUR, WAIT + 8 * HOUR]);
    let keys: BTreeSet<&str> = (reminders.iter())
        .map(|(_, d)| d.notification.idempotency_key.as_str())
        .chain([first.idempotency_key.as_str()])
        .collect();
    assert_eq!(keys.len(), 3, "a reminder is not dropped as a duplicate");
    assert_eq!(reminders[0].1.notification.alerts, first.alerts);
}

#[test]
fn resolved_alerts_are_sent_once_with_send_resolved_then_leave_the_group() {
    let routes = routes("");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    let (a, b) = (alert("a", &[]), alert("b", &[]));
    d.insert(&routes, &a, 0);
    d.insert(&routes, &b, 0);
    assert_eq!(summary(&d.due(WAIT, &everyone)[0]), firing(&["a", "b"]));

    d.insert(&routes, &resolved(&b, MINUTE), MINUTE);
    let sent = d.due(WAIT + INTERVAL, &everyone);
    assert_eq!(
        summary(&sent[0]),
        [
            ("a".to_owned(), AlertStatus::Firing),
            ("b".to_owned(), AlertStatus::Resolved)
        ]
    );
    assert_eq!(sent[0].notification.status, AlertStatus::Firing);
    assert!(
        d.due(WAIT + 2 * INTERVAL, &everyone).is_empty(),
        "b is gone"
    );

    d.insert(&routes, &resolved(&a, 20 * MINUTE), 20 * MINUTE);
    let sent = d.due(WAIT + 3 * INTERVAL, &everyone);
    assert_eq!(summary(&sent[0]), [("a".to_owned(), AlertStatus::Resolved)]);
    assert_eq!(sent[0].notification.status, AlertStatus::Resolved);
    assert!(d.is_empty(), "an empty group closes");
    assert_eq!(d.next_due(), None);
}

#[test]
fn without_send_resolved_resolutions_are_not_sent() {
    let routes = routes("send_resolved = false");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    let (a, b) = (alert("a", &[]), alert("b", &[]));
    d.insert(&routes, &a, 0);
    d.insert(&routes, &b, 0);
    assert_eq!(d.due(WAIT, &everyone).len(), 1);

    d.insert(&routes, &resolved(&b, MINUTE), MINUTE);
    assert!(d.due(WAIT + INTERVAL, &everyone).is_empty());
    // A firing notice never carries resolved alerts either.
    d.insert(&routes, &alert("c", &[]), WAIT + INTERVAL + 1);
    let sent = d.due(WAIT + 2 * INTERVAL, &everyone);
    assert_eq!(summary(&sent[0]), firing(&["a", "c"]));

    d.insert(&routes, &resolved(&a, HOUR), HOUR);
    d.insert(&routes, &resolved(&alert("c", &[]), HOUR), HOUR);
    assert!(d.due(HOUR + INTERVAL, &everyone).is_empty());
    assert!(d.is_empty());
}

#[test]
fn an_alert_that_fires_and_resolves_within_group_wait_is_still_announced() {
    // Even without send_resolved: the firing is the news, and nobody was told of it.
    for extra in ["", "send_resolved = false"] {
        let routes = routes(extra);
        let everyone = Everyone::one();
        let mut d = Dispatcher::new();
        let a = alert("a", &[]);
        d.insert(&routes, &a, 0);
        d.insert(&routes, &resolved(&a, 10 * SECOND), 10 * SECOND);
        let sent = d.due(WAIT, &everyone);
        assert_eq!(sent.len(), 1, "{extra}");
        assert_eq!(summary(&sent[0]), vec![("a".into(), AlertStatus::Resolved)]);
        assert_eq!(sent[0].notification.status, AlertStatus::Resolved);
        assert!(d.is_empty(), "the resolved alert leaves the group");
        assert!(d.due(WAIT + INTERVAL, &everyone).is_empty(), "once");
        // A resolved alert alone opens no group.
        d.insert(&routes, &resolved(&a, MINUTE), MINUTE);
        assert!(d.is_empty());
    }
}

#[test]
fn a_fire_and_resolve_between_later_flushes_is_announced_once() {
    let routes = routes("send_resolved = false");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    let (a, b) = (alert("a", &[]), alert("b", &[]));
    d.insert(&routes, &a, 0);
    assert_eq!(d.due(WAIT, &everyone).len(), 1);
    // b fires and resolves between two flushes; a keeps firing.
    d.insert(&routes, &b, MINUTE);
    d.insert(&routes, &resolved(&b, 2 * MINUTE), 2 * MINUTE);
    let sent = d.due(WAIT + INTERVAL, &everyone);
    assert_eq!(
        summary(&sent[0]),
        vec![
            ("a".into(), AlertStatus::Firing),
            ("b".into(), AlertStatus::Resolved)
        ]
    );
    assert!(d.due(WAIT + 2 * INTERVAL, &everyone).is_empty());
    // A replayed firing of an announced alert, resolved before the next flush, is not
    // news again to a channel that was told it fired: with send_resolved off, silence.
    d.insert(&routes, &a, WAIT + 2 * INTERVAL + 1);
    d.insert(&routes, &resolved(&a, HOUR), HOUR);
    assert!(d.due(HOUR + INTERVAL, &everyone).is_empty());
    assert!(d.is_empty());
}

#[test]
fn an_older_transition_does_not_overwrite_a_newer_one() {
    let routes = routes("");
    let everyone = Everyone::one();
    let mut d = Dispatcher::new();
    let a = alert("a", &[]);
    let mut b = alert("b", &[]);
    b.generated_at = 10;
    d.insert(&routes, &a, 0);
    d.insert(&routes, &b, 0);
    d.due(WAIT, &everyone);
    d.insert(&routes, &resolved(&b, 20), 40 * SECOND);
    // The firing transition of b comes again (a replay after a restart).
    d.insert(&routes, &b, 41 * SECOND);
    let sent = d.due(WAIT + INTERVAL, &everyone);
    assert_eq!(
        summary(&sent[0])[1],
        ("b".to_owned(), AlertStatus::Resolved)
    );
}

#[test]
fn muted_alerts_are_left_out_until_unmuted() {
    let routes = routes("");
    let mut audience = Everyone::one();
    audience.muted.insert("b".to_owned());
    let mut d = Dispatcher::new();
    d.insert(&routes, &alert("a", &[]), 0);
    d.insert(&routes, &alert("b", &[]), 0);
    assert_eq!(summary(&d.due(WAIT, &audience)[0]), firing(&["a"]));

    audience.muted.insert("a".to_owned());
    assert!(d.due(WAIT + INTERVAL, &audience).is_empty(), "all muted");

    audience.muted.clear();
    let sent = d.due(WAIT + 2 * INTERVAL, &audience);
    assert_eq!(summary(&sent[0]), firing(&["a", "b"]), "b is news now");
}

#[test]
fn each_recipient_gets_only_what_its_clearance_allows() {
    let routes = routes("");
    let audience = Everyone::default()
        .with("green", Clearance::GREEN, false)
        .with("amber", Clearance::AMBER, false)
        .with("strict", Clearance::AMBER_STRICT, false)
        .with("red", Clearance::GREEN, true);
    let mut d = Dispatcher::new();
    for (fp, tlp) in [
        ("clear", Tlp::Clear),
        ("green", Tlp::Green),
        ("amber", Tlp::Amber),
        ("strict", Tlp::AmberStrict),
        ("red", Tlp::Red),
    ] {
        d.insert(&routes, &handled(alert(fp, &[]), tlp), 0);
    }
    let sent = d.due(WAIT, &audience);
    let got: Vec<(&str, Vec<&str>, Tlp)> = (sent.iter())
        .map(|d| {
            let n = &d.notification;
            let fps = n.alerts.iter().map(|a| a.fingerprint.as_str()).collect();
            (n.subscriber.as_str(), fps, n.handling)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("green", vec!["clear", "green"], Tlp::Green),
            ("amber", vec!["amber", "clear", "green"], Tlp::Amber),
            (
                "strict",
                vec!["amber", "clear", "green", "strict"],
                Tlp::AmberStrict
            ),
            ("red", vec!["clear", "green", "red"], Tlp::Red),
        ]
    );
}

#[test]
fn a_recipient_that_may_see_nothing_gets_nothing_and_is_told_when_it_may() {
    let routes = routes("");
    let audience = Everyone::default().with("green", Clearance::GREEN, false);
    let mut d = Dispatcher::new();
    d.insert(&routes, &handled(alert("amber", &[]), Tlp::Amber), 0);
    assert!(d.due(WAIT, &audience).is_empty());
    d.insert(&routes, &alert("green", &[]), MINUTE);
    let sent = d.due(WAIT + INTERVAL, &audience);
    assert_eq!(summary(&sent[0]), firing(&["green"]));
    assert_eq!(sent[0].notification.handling, Tlp::Green);
}

#[test]
fn idempotency_keys_follow_channel_and_transitions_only() {
    let routes = routes("");
    let two = Everyone::one().with("irn-ncp", Clearance::AMBER, false);
    let run = |order: &[&str]| {
        let mut d = Dispatcher::new();
        for fp in order {
            d.insert(&routes, &alert(fp, &[]), 0);
        }
        d.due(WAIT, &two)
    };
    let (x, y) = (run(&["a", "b", "c"]), run(&["c", "a", "b"]));
    assert_eq!(
        x[0].notification.idempotency_key,
        y[0].notification.idempotency_key
    );
    assert_ne!(
        x[0].notification.idempotency_key,
        x[1].notification.idempotency_key
    );
    assert_eq!(x[0].notification.idempotency_key.len(), 64);
    let z = run(&["a", "b"]);
    assert_ne!(
        x[0].notification.idempotency_key,
        z[0].notification.idempotency_key
    );
}

#[test]
fn routes_that_continue_make_separate_groups() {
    let routes = routes(
        r#"
        [[routes]]
        receiver = "critical"
        matchers = ['severity="high"']
        group_wait = "0s"
        continue = true
        [[routes]]
        receiver = "turkey"
        matchers = ['country="TUR"']
        group_by = ["..."]
        "#,
    );
    let mut d = Dispatcher::new();
    d.insert(&routes, &alert("a", &[("country", "TUR")]), 0);
    assert_eq!(d.len(), 2);
    let now = d.due(0, &Everyone::one());
    assert_eq!(now.len(), 1, "group_wait 0s flushes at once");
    assert_eq!(now[0].notification.receiver, "critical");
    let later = d.due(WAIT, &Everyone::one());
    assert_eq!(later[0].notification.receiver, "turkey");
    assert_eq!(
        later[0].notification.group_key,
        "{}/{country=\"TUR\"}/1:{country=\"TUR\", rule=\"route_spike\", severity=\"high\"}"
    );
}

#[test]
fn state_survives_a_round_trip_through_json() {
    let routes = routes("");
    let everyone = Everyone::one();
    let mut live = Dispatcher::new();
    let a = alert("a", &[]);
    live.insert(&routes, &a, 0);
    live.insert(&routes, &alert("b", &[]), 0);
    live.due(WAIT, &everyone);
    live.insert(&routes, &resolved(&a, MINUTE), MINUTE);

    let json = serde_json::to_string(&live).expect("serialises");
    let mut restored: Dispatcher = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(restored, live);
    for t in [
        WAIT + INTERVAL,
        WAIT + 2 * INTERVAL,
        WAIT + 4 * HOUR + INTERVAL,
    ] {
        assert_eq!(restored.due(t, &everyone), live.due(t, &everyone));
    }
}

#[test]
fn next_due_follows_every_group_through_flushes_and_restores() {
    let routes = routes("");
    let everyone = Everyone::one();
    let of_rule = |fp: &str, rule: &str| Alert {
        rule_id: rule.to_owned(),
        ..alert(fp, &[])
    };
    let mut d = Dispatcher::new();
    let joined = d.insert(&routes, &of_rule("a", "r1"), 0);
    d.insert(&routes, &of_rule("b", "r2"), 10 * SECOND);
    assert_eq!(d.next_due(), Some(WAIT));
    assert_eq!(d.due(WAIT, &everyone).len(), 1, "r1 only");
    assert_eq!(d.next_due(), Some(10 * SECOND + WAIT), "r2 next");
    assert_eq!(d.due(10 * SECOND + WAIT, &everyone).len(), 1, "then r2");
    assert_eq!(d.next_due(), Some(WAIT + INTERVAL), "r1 again");

    // Putting back a group replaces its place in time, leaving no stale one behind.
    let key = &joined[0].group_key;
    let json = (d.take_changed().into_iter())
        .find(|(k, _)| k == key)
        .and_then(|(_, json)| json)
        .expect("r1 changed");
    let mut restored = Dispatcher::new();
    restored.insert(&routes, &of_rule("a", "r1"), 4 * HOUR);
    assert_eq!(restored.next_due(), Some(4 * HOUR + WAIT));
    restored.restore_group(key, &json).expect("restores");
    assert_eq!(restored.next_due(), Some(WAIT + INTERVAL));
    assert!(
        restored.due(WAIT + INTERVAL, &everyone).is_empty(),
        "nothing new"
    );
    assert_eq!(restored.next_due(), Some(WAIT + 2 * INTERVAL));
    assert_eq!(restored.len(), 1);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_burst_within_group_wait_is_one_notification(
            arrivals in proptest::collection::vec((0..50u32, 0..WAIT), 1..60),
        ) {
            let routes = routes("");
            let mut arrivals = arrivals;
            arrivals.sort_by_key(|(_, at)| *at);
            let mut d = Dispatcher::new();
            for (fp, at) in &arrivals {
                d.insert(&routes, &alert(&format!("fp{fp}"), &[]), *at);
            }
            let first = arrivals[0].1;
            prop_assert!(d.due(first + WAIT - 1, &Everyone::one()).is_empty());
            let sent = d.due(first + WAIT, &Everyone::one());
            prop_assert_eq!(sent.len(), 1);
            let distinct: BTreeSet<u32> = arrivals.iter().map(|(fp, _)| *fp).collect();
            prop_assert_eq!(sent[0].notification.alerts.len(), distinct.len());
        }
    }
}
