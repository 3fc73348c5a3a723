//! What the notifier keeps in its compacted topic `relec.notifier.deliveries`: the
//! delivery log (one record per delivery, key `delivery/<id>`: pending while in flight,
//! then how it ended) and the stage's checkpoint of its routing state (one record per
//! aggregation group, key `group/<consumer group>/<group key>`, and one per partition of
//! the alerts topic, key `position/<consumer group>/<topic>/<partition>`: how far the
//! checkpoint has read). Values are JSON; a group that is gone is a tombstone.
//!
//! A delivery's id is its idempotency key and its channel, `<key>@<channel>`: the same
//! transitions to the same channel have the same id, so a delivery that ended is never
//! started again, and the dead-letter topic and `relec notify dlq` name deliveries by it.

use serde::{Deserialize, Serialize};

use crate::{Notification, Outbound, ledger::Held, subscriptions::ChannelId};

const DELIVERY: &str = "delivery/";
const GROUP: &str = "group/";
const POSITION: &str = "position/";

/// The id of the delivery of `notification` to `channel`.
pub fn delivery_id(channel: &ChannelId, idempotency_key: &str) -> String {
    format!("{idempotency_key}@{channel}")
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Handed to its channel and not ended yet: a restarted notifier sends it again (with
    /// the same idempotency key).
    Pending,
    Delivered,
    /// Failed for good; the notification is in the dead-letter topic.
    DeadLettered,
    /// Dead-lettered, then delivered by `relec notify dlq replay`.
    Replayed,
}

impl State {
    /// Delivered or dead-lettered: never started again.
    pub fn has_ended(self) -> bool {
        self != Self::Pending
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::DeadLettered => "dead_lettered",
            Self::Replayed => "replayed",
        }
    }
}

/// One delivery in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub state: State,
    pub channel: ChannelId,
    pub idempotency_key: String,
    /// When it got this state, ms since the epoch.
    pub at: i64,
    /// Attempts made, once it ended.
    #[serde(default)]
    pub attempts: u32,
    /// While pending, the notification itself, so a restart can send it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

impl Entry {
    pub fn pending(outbound: &Outbound, now: i64) -> Self {
        Self {
            state: State::Pending,
            channel: outbound.channel.clone(),
            idempotency_key: outbound.notification.idempotency_key.clone(),
            at: now,
            attempts: 0,
            notification: Some(outbound.notification.clone()),
        }
    }

    pub fn ended(
        state: State,
        channel: &ChannelId,
        idempotency_key: &str,
        attempts: u32,
        now: i64,
    ) -> Self {
        Self {
            state,
            channel: channel.clone(),
            idempotency_key: idempotency_key.to_owned(),
            at: now,
            attempts,
            notification: None,
        }
    }

    pub fn id(&self) -> String {
        delivery_id(&self.channel, &self.idempotency_key)
    }

    /// The pending delivery to send again, if this is one.
    pub fn outbound(&self) -> Option<Outbound> {
        match (&self.state, &self.notification) {
            (State::Pending, Some(notification)) => Some(Outbound {
                channel: self.channel.clone(),
                notification: notification.clone(),
            }),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an entry serialises")
    }
}

/// The position record's value: the next offset of the partition the checkpoint has
/// not taken in yet, and what the partition's unfinished records were waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// What a key of the topic names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Delivery(String),
    /// A group of this consumer group.
    Group(String),
    /// This consumer group's position on a partition of its alerts topic.
    Position(i32),
    /// Another consumer group's checkpoint, or a key this version does not know.
    Other,
}

/// The keys of one consumer group's checkpoint on one alerts topic.
#[derive(Debug, Clone)]
pub struct Keys {
    group_prefix: String,
    position_prefix: String,
}

impl Keys {
    pub fn new(consumer_group: &str, alerts_topic: &str) -> Self {
        Self {
            group_prefix: format!("{GROUP}{consumer_group}/"),
            position_prefix: format!("{POSITION}{consumer_group}/{alerts_topic}/"),
        }
    }

    pub fn delivery(id: &str) -> String {
        format!("{DELIVERY}{id}")
    }

    /// The delivery id a key names, if it names one.
    pub fn delivery_of(key: &str) -> Option<&str> {
        key.strip_prefix(DELIVERY)
    }

    pub fn group(&self, group_key: &str) -> String {
        format!("{}{group_key}", self.group_prefix)
    }

    pub fn position(&self, partition: i32) -> String {
        format!("{}{partition}", self.position_prefix)
    }

    pub fn parse(&self, key: &str) -> Key {
        if let Some(id) = key.strip_prefix(DELIVERY) {
            return Key::Delivery(id.to_owned());
        }
        // Group keys start with the route id, `{}`; this tells "group/a/{..." of group
        // "a" from a key of a group named "a/b".
        if let Some(group_key) = key.strip_prefix(&self.group_prefix)
            && group_key.starts_with('{')
        {
            return Key::Group(group_key.to_owned());
        }
        if let Some(partition) = key.strip_prefix(&self.position_prefix)
            && let Ok(partition) = partition.parse()
        {
            return Key::Position(partition);
        }
        Key::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_what_they_hold() {
        let keys = Keys::new("relec-notifier", "relec.alerts");
        let group = keys.group("{}/{route=~\"IRN-.*\"}:{route=\"IRN-TUR\"}");
        assert_eq!(
            group,
            "group/relec-notifier/{}/{route=~\"IRN-.*\"}:{route=\"IRN-TUR\"}"
        );
        assert_eq!(
            keys.parse(&group),
            Key::Group("{}/{route=~\"IRN-.*\"}:{route=\"IRN-TUR\"}".into())
        );
        assert_eq!(keys.parse(&keys.position(2)), Key::Position(2));
        assert_eq!(
            keys.parse(&Keys::delivery("abc@tur-ncp/email")),
            Key::Delivery("abc@tur-ncp/email".into())
        );
        // Another group's checkpoint, even one whose name starts like ours.
        let other = Keys::new("relec-notifier/b", "relec.alerts");
        assert_eq!(keys.parse(&other.group("{}:{}")), Key::Other);
        assert_eq!(
            keys.parse(&Keys::new("x", "relec.alerts").position(0)),
            Key::Other
        );
    }

    #[test]
    fn entries_round_trip() {
        let channel: ChannelId = "tur-ncp/webhook/soc".parse().expect("channel");
        let entry = Entry::ended(State::DeadLettered, &channel, "k1", 3, 42);
        let json = String::from_utf8(entry.to_json()).expect("utf-8");
        assert_eq!(
            json,
            r#"{"state":"dead_lettered","channel":"tur-ncp/webhook/soc","idempotency_key":"k1","at":42,"attempts":3}"#
        );
        let back: Entry = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, entry);
        assert_eq!(back.id(), "k1@tur-ncp/webhook/soc");
        assert!(back.state.has_ended() && back.outbound().is_none());
    }
}
