//! Aggregation groups, as Alertmanager's dispatcher and notification log keep them, as a
//! pure state machine: alerts go into the groups of the routes they take, and at each
//! flush (group_wait after a group appears, then every group_interval) every recipient
//! channel gets a notification if its view of the group changed or its repeat_interval
//! passed. Time is passed in (milliseconds since the epoch), and the whole state is serde
//! so the stage can persist it.

use std::collections::{BTreeMap, BTreeSet};

use relec_schemas::{Alert, AlertStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    Notification,
    matcher::{Labels, labels_of},
    route::{Route, RouteTree},
    subscriptions::ChannelId,
    tlp::{Access, marking},
};

/// What the dispatcher asks of the rest of the notifier when it flushes a group.
pub trait Audience {
    /// Whether the alert is muted now (silenced or inhibited). Muted alerts stay in their
    /// group but are left out of every notification.
    fn muted(&self, alert: &Alert) -> bool;

    /// The channels a flush of the group goes to, each with what its subscriber may
    /// receive there.
    fn recipients(&self, route_id: &str, receiver: &str) -> Vec<Recipient>;
}

/// One channel of one subscriber, for one flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub channel: ChannelId,
    pub access: Access,
}

/// A notification and the channel it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    pub channel: ChannelId,
    pub notification: Notification,
}

/// Every aggregation group, by group key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Groups")]
pub struct Dispatcher {
    groups: BTreeMap<String, Group>,
    /// Keys of the groups that changed (or went) since [`Dispatcher::take_changed`]
    /// was last called: what the stage checkpoints. Not state itself.
    #[serde(skip)]
    changed: BTreeSet<String>,
    /// Every group's next flush as (time, group key), in time order, so finding what is
    /// due does not walk every group: the stage asks after each event it handles, and
    /// groups of firing alerts stay for as long as the alerts fire. Derived from
    /// `groups`.
    #[serde(skip)]
    schedule: BTreeSet<(i64, String)>,
}

/// What a [`Dispatcher`] is stored as: its groups.
#[derive(Deserialize)]
struct Groups {
    groups: BTreeMap<String, Group>,
}

impl From<Groups> for Dispatcher {
    fn from(stored: Groups) -> Self {
        let schedule = (stored.groups.iter())
            .map(|(key, g)| (g.next_flush_at, key.clone()))
            .collect();
        Self {
            groups: stored.groups,
            changed: BTreeSet::new(),
            schedule,
        }
    }
}

/// Equal when the groups are: which changed since the last checkpoint is not state.
impl PartialEq for Dispatcher {
    fn eq(&self, other: &Self) -> bool {
        self.groups == other.groups
    }
}

/// A group an alert transition went into, and when that group flushes next: the
/// transition is in the notifications of the first flush at or after `flush_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub group_key: String,
    pub flush_at: i64,
}

/// Alerts of one route with the same `group_by` label values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    route_id: String,
    receiver: String,
    labels: Labels,
    group_interval_ms: i64,
    repeat_interval_ms: i64,
    send_resolved: bool,
    /// The latest transition of each alert, by fingerprint.
    alerts: BTreeMap<String, Alert>,
    next_flush_at: i64,
    /// What each channel was last sent, by channel id (Alertmanager's notification log).
    log: BTreeMap<String, Sent>,
    /// Alerts whose firing arrived since the last flush. One of them resolved by the
    /// flush fired unannounced: unlike Alertmanager, which drops it, it is sent (as
    /// resolved, with its start and end) to each channel not yet told it fired, because
    /// an early warning of a death must reach the NCPs even once its rule has cleared.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    unannounced: BTreeSet<String>,
}

/// The notification log entry of one channel in one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sent {
    at: i64,
    /// Fingerprints firing and resolved in what the channel saw at that flush.
    firing: BTreeSet<String>,
    resolved: BTreeSet<String>,
    /// Digest of the transitions sent, and how many times in a row that same content went
    /// out (0 the first time): reminders get their own idempotency key.
    content: String,
    round: u32,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts an alert transition into the group of each route it takes, and says which
    /// groups those are. A new group first flushes `group_wait` after `now`.
    pub fn insert(&mut self, routes: &RouteTree, alert: &Alert, now: i64) -> Vec<Joined> {
        let labels = labels_of(alert);
        let mut joined = Vec::new();
        for route in routes.matching(&labels) {
            let group_labels = route.group_labels(&labels);
            let key = group_key(&route.id, &group_labels);
            let flush_at = match self.groups.get_mut(&key) {
                Some(group) => {
                    group.insert(alert);
                    group.next_flush_at
                }
                // A resolved alert nobody was told about firing needs no group.
                None if alert.status == AlertStatus::Resolved => continue,
                None => {
                    let mut group = Group::new(route, group_labels, now);
                    group.insert(alert);
                    let flush_at = group.next_flush_at;
                    self.groups.insert(key.clone(), group);
                    self.schedule.insert((flush_at, key.clone()));
                    flush_at
                }
            };
            self.changed.insert(key.clone());
            joined.push(Joined {
                group_key: key,
                flush_at,
            });
        }
        joined
    }

    /// Every group and when it flushes next.
    pub fn flushes(&self) -> Vec<Joined> {
        (self.groups.iter())
            .map(|(key, g)| Joined {
                group_key: key.clone(),
                flush_at: g.next_flush_at,
            })
            .collect()
    }

    /// When the next flush is due, if any group exists.
    pub fn next_due(&self) -> Option<i64> {
        self.schedule.first().map(|(at, _)| *at)
    }

    /// Flushes every group due at `now`, returning the notifications to send.
    pub fn due(&mut self, now: i64, audience: &impl Audience) -> Vec<Outbound> {
        let mut out = Vec::new();
        // Flushed in key order: one flush's notifications go out in a stable order.
        let mut due = Vec::new();
        while let Some((at, _)) = self.schedule.first()
            && *at <= now
        {
            let (_, key) = self.schedule.pop_first().expect("looked at");
            due.push(key);
        }
        due.sort();
        for key in due {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            group.flush(&key, now, audience, &mut out);
            if group.alerts.is_empty() {
                self.groups.remove(&key);
            } else {
                self.schedule.insert((group.next_flush_at, key.clone()));
            }
            self.changed.insert(key);
        }
        out
    }

    /// The groups changed since the last call, each as its JSON (`None`: the group is
    /// gone), for the stage's checkpoint.
    pub fn take_changed(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|key| {
                let json = (self.groups.get(&key))
                    .map(|g| serde_json::to_vec(g).expect("a group serialises"));
                (key, json)
            })
            .collect()
    }

    /// Puts back a group as [`Dispatcher::take_changed`] wrote it.
    pub fn restore_group(&mut self, key: &str, json: &[u8]) -> Result<(), serde_json::Error> {
        let group: Group = serde_json::from_slice(json)?;
        if let Some(old) = self.groups.get(key) {
            self.schedule.remove(&(old.next_flush_at, key.to_owned()));
        }
        self.schedule.insert((group.next_flush_at, key.to_owned()));
        self.groups.insert(key.to_owned(), group);
        Ok(())
    }

    /// Every firing alert in any group, each once: the sources inhibition looks at.
    pub fn firing(&self) -> Vec<&Alert> {
        let mut by_fingerprint = BTreeMap::new();
        for alert in self.groups.values().flat_map(|g| g.alerts.values()) {
            if alert.status == AlertStatus::Firing {
                by_fingerprint.insert(alert.fingerprint.as_str(), alert);
            }
        }
        by_fingerprint.into_values().collect()
    }

    /// How many groups there are, for metrics.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl Group {
    fn new(route: &Route, labels: Labels, now: i64) -> Self {
        Self {
            route_id: route.id.clone(),
            receiver: route.receiver.clone(),
            labels,
            group_interval_ms: millis(route.group_interval),
            repeat_interval_ms: millis(route.repeat_interval),
            send_resolved: route.send_resolved,
            alerts: BTreeMap::new(),
            // Alertmanager flushes at once a group whose first alert started more than
            // group_wait ago, for restarts; alerts here carry event time, often days old,
            // and groups survive restarts, so every new group waits.
            next_flush_at: now.saturating_add(millis(route.group_wait)),
            log: BTreeMap::new(),
            unannounced: BTreeSet::new(),
        }
    }

    /// Keeps the latest transition of each alert; an older one, replayed after a
    /// restart, does not overwrite a newer one.
    fn insert(&mut self, alert: &Alert) {
        match self.alerts.get(&alert.fingerprint) {
            Some(held) if held.generated_at > alert.generated_at => {}
            None if alert.status == AlertStatus::Resolved => {}
            _ => {
                if alert.status == AlertStatus::Firing {
                    self.unannounced.insert(alert.fingerprint.clone());
                }
                self.alerts.insert(alert.fingerprint.clone(), alert.clone());
            }
        }
    }

    fn flush(&mut self, key: &str, now: i64, audience: &impl Audience, out: &mut Vec<Outbound>) {
        self.next_flush_at = now.saturating_add(self.group_interval_ms);
        let mut alerts: Vec<&Alert> = self.alerts.values().collect();
        // Firing first, then oldest first.
        alerts.sort_by_key(|a| (a.status != AlertStatus::Firing, a.starts_at, &a.fingerprint));
        let audible: Vec<&Alert> = alerts.into_iter().filter(|a| !audience.muted(a)).collect();
        // The log is taken out while the alerts are borrowed, and put back after.
        let mut log = std::mem::take(&mut self.log);
        for recipient in audience.recipients(&self.route_id, &self.receiver) {
            let visible = recipient.access.cut(audible.iter().copied());
            if let Some(notification) = self.notify(&mut log, key, &recipient, &visible, now) {
                out.push(Outbound {
                    channel: recipient.channel,
                    notification,
                });
            }
        }
        self.log = log;
        self.unannounced.clear();
        // Resolved alerts have been notified where wanted; they leave the group now, as
        // in Alertmanager, even where the recipient was muted or sent nothing.
        self.alerts.retain(|_, a| a.status == AlertStatus::Firing);
    }

    /// Alertmanager's dedup stage and notification log for one channel: the notification
    /// to send, if any, and what the log remembers of it.
    fn notify(
        &self,
        log: &mut BTreeMap<String, Sent>,
        key: &str,
        recipient: &Recipient,
        visible: &[&Alert],
        now: i64,
    ) -> Option<Notification> {
        if visible.is_empty() {
            return None;
        }
        let fingerprints = |status| {
            (visible.iter())
                .filter(|a| a.status == status)
                .map(|a| a.fingerprint.clone())
                .collect::<BTreeSet<_>>()
        };
        let (firing, resolved) = (
            fingerprints(AlertStatus::Firing),
            fingerprints(AlertStatus::Resolved),
        );
        let channel = recipient.channel.to_string();
        let last = log.get(&channel);
        // Fired and resolved since the last flush, and this channel never heard it fired.
        let unannounced: BTreeSet<&str> = (resolved.iter())
            .filter(|fp| self.unannounced.contains(*fp))
            .filter(|fp| last.is_none_or(|last| !last.firing.contains(*fp)))
            .map(String::as_str)
            .collect();
        if unannounced.is_empty() && !self.needs_update(last, &firing, &resolved, now) {
            return None;
        }
        let sent: Vec<Alert> = (visible.iter())
            .filter(|a| {
                self.send_resolved
                    || a.status == AlertStatus::Firing
                    || unannounced.contains(a.fingerprint.as_str())
            })
            .map(|&a| a.clone())
            .collect();
        let content = content_digest(&channel, &sent);
        let round = match last {
            Some(last) if last.content == content => last.round + 1,
            _ => 0,
        };
        let idempotency_key = idempotency_key(&content, round);
        log.insert(
            channel.clone(),
            Sent {
                at: now,
                firing,
                resolved,
                content,
                round,
            },
        );
        // Without send_resolved, the news that all is resolved is logged, not sent.
        if sent.is_empty() {
            return None;
        }
        let status = if sent.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        Some(Notification {
            subscriber: recipient.channel.subscriber.clone(),
            receiver: self.receiver.clone(),
            group_key: key.to_owned(),
            group_labels: self.labels.clone(),
            status,
            handling: marking(&sent),
            idempotency_key,
            alerts: sent,
        })
    }

    /// Alertmanager's `needsUpdate`: a new firing alert, or all resolved after firing, or
    /// (with send_resolved) a new resolved one, or the repeat interval passed.
    fn needs_update(
        &self,
        last: Option<&Sent>,
        firing: &BTreeSet<String>,
        resolved: &BTreeSet<String>,
        now: i64,
    ) -> bool {
        let Some(last) = last else {
            // Never notified: only news of something firing is worth a first message.
            return !firing.is_empty();
        };
        if !firing.is_subset(&last.firing) {
            return true;
        }
        if firing.is_empty() {
            // Alerts that fired and resolved between two flushes were never announced.
            return !last.firing.is_empty();
        }
        if self.send_resolved && !resolved.is_subset(&last.resolved) {
            return true;
        }
        now - last.at >= self.repeat_interval_ms
    }
}

/// Alertmanager's group key: the route id and the group labels, `{}:{route="IRN-TUR"}`.
fn group_key(route_id: &str, labels: &Labels) -> String {
    let listed: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{route_id}:{{{}}}", listed.join(", "))
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// SHA-256 over the channel and the sorted (fingerprint, status, starts_at, ends_at) of
/// the alerts: the same transitions to the same channel give the same digest, whatever
/// their order, group or route.
fn content_digest(channel: &str, alerts: &[Alert]) -> String {
    let mut transitions: Vec<String> = (alerts.iter())
        .map(|a| {
            let status = match a.status {
                AlertStatus::Firing => "firing",
                AlertStatus::Resolved => "resolved",
            };
            let ends = a.ends_at.map_or_else(|| "-".to_owned(), |t| t.to_string());
            format!("{}\0{status}\0{}\0{ends}", a.fingerprint, a.starts_at)
        })
        .collect();
    transitions.sort();
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    for t in transitions {
        h.update(b"\n");
        h.update(t.as_bytes());
    }
    hex(&h.finalize())
}

/// The content digest for a first notification; for the n-th reminder of the same
/// content, a digest of it and n, so receivers that drop repeated keys keep reminders.
fn idempotency_key(content: &str, round: u32) -> String {
    if round == 0 {
        return content.to_owned();
    }
    let mut h = Sha256::new();
    h.update(content.as_bytes());
    h.update(format!("\nreminder {round}").as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
