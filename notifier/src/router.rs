//! The routing core the notifier stage calls, free of I/O: alert transitions read from
//! `relec.alerts` go in, and at each due time out come the notifications for each
//! recipient channel, with silences, inhibition and TLP clearance applied.

use relec_schemas::Alert;
use serde::{Deserialize, Serialize};

use crate::{
    dispatch::{Audience, Dispatcher, Joined, Outbound, Recipient},
    inhibit::is_inhibited,
    matcher::{Labels, labels_of},
    silence::Silences,
    subscriptions::Subscriptions,
    tlp::Access,
};

/// The routing state of the stage: its groups and their notification log. Serde, so the
/// stage can persist it together with its consumer offsets and carry on after a restart
/// where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Router {
    dispatcher: Dispatcher,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one alert transition, at `now` (the stage's clock, in ms since the epoch),
    /// and says where it went: the stage holds the alert's offset until those groups
    /// flushed and their deliveries ended.
    pub fn receive(&mut self, subscriptions: &Subscriptions, alert: &Alert, now: i64) -> Received {
        let joined = self.dispatcher.insert(subscriptions.routes(), alert, now);
        let policy = Policy {
            subscriptions,
            silences: &Silences::default(),
            firing: Vec::new(),
            now,
        };
        let labels = labels_of(alert);
        let reachable = (subscriptions.routes().matching(&labels).into_iter())
            .flat_map(|route| policy.recipients(&route.id, &route.receiver))
            .any(|r| r.access.may_receive(alert.handling));
        Received { joined, reachable }
    }

    /// The groups changed since the last call, as JSON (`None`: gone): what a checkpoint
    /// of the stage writes.
    pub fn take_changed(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        self.dispatcher.take_changed()
    }

    /// Puts back one group a checkpoint wrote.
    pub fn restore_group(&mut self, key: &str, json: &[u8]) -> Result<(), serde_json::Error> {
        self.dispatcher.restore_group(key, json)
    }

    /// The notifications due at `now`, one per recipient channel and group.
    pub fn due(
        &mut self,
        subscriptions: &Subscriptions,
        silences: &Silences,
        now: i64,
    ) -> Vec<Outbound> {
        // The firing alerts are the sources of inhibition: without inhibit rules, nothing
        // looks at them, and collecting them costs a walk over every group.
        let firing = if subscriptions.inhibit_rules().is_empty() {
            Vec::new()
        } else {
            (self.dispatcher.firing().into_iter())
                .map(labels_of)
                .collect()
        };
        let audience = Policy {
            subscriptions,
            silences,
            firing,
            now,
        };
        self.dispatcher.due(now, &audience)
    }

    /// When to call [`Router::due`] next, if anything is pending.
    pub fn next_due(&self) -> Option<i64> {
        self.dispatcher.next_due()
    }

    /// Every open group and when it flushes next.
    pub fn flushes(&self) -> Vec<Joined> {
        self.dispatcher.flushes()
    }

    /// How many aggregation groups are open.
    pub fn groups(&self) -> usize {
        self.dispatcher.len()
    }
}

/// Where [`Router::receive`] put an alert transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The groups it went into (none: a resolved alert whose firing nobody was told of).
    pub joined: Vec<Joined>,
    /// Whether any channel of the routes it takes may receive its handling code; false
    /// means the subscriptions give it no recipient cleared for it, so nobody ever will.
    pub reachable: bool,
}

/// Who hears a flush and what they may hear, from the subscriptions, the silences and
/// the alerts firing at the time.
struct Policy<'a> {
    subscriptions: &'a Subscriptions,
    silences: &'a Silences,
    firing: Vec<Labels>,
    now: i64,
}

impl Audience for Policy<'_> {
    fn muted(&self, alert: &Alert) -> bool {
        let labels = labels_of(alert);
        self.silences.mutes(&labels, self.now)
            || is_inhibited(self.subscriptions.inhibit_rules(), &self.firing, &labels)
    }

    fn recipients(&self, route_id: &str, receiver: &str) -> Vec<Recipient> {
        // Both the route and its receiver may name RED recipients; a route that has gone
        // since the group opened (a reload) names none.
        let route_red = (self.subscriptions.routes().get(route_id))
            .map(|r| r.red_recipients.as_slice())
            .unwrap_or_default();
        let receiver_red = (self.subscriptions.receiver(receiver))
            .map(|r| r.red_recipients.as_slice())
            .unwrap_or_default();
        (self.subscriptions.channels(receiver).into_iter())
            .filter_map(|channel| {
                let subscriber = self.subscriptions.subscriber(&channel.subscriber)?;
                let named_for_red = route_red
                    .iter()
                    .chain(receiver_red)
                    .any(|id| id == &subscriber.id);
                Some(Recipient {
                    access: Access {
                        clearance: subscriber.clearance,
                        named_for_red,
                    },
                    channel,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
