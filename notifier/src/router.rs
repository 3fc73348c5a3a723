//! The routing core the notifier stage calls, free of I/O: alert transitions read from
//! `relec.alerts` go in, and at each due time out come the notifications for each
//! recipient channel, with silences, inhibition and TLP clearance applied.

use relec_schemas::Alert;
use serde::{Deserialize, Serialize};

use crate::{
    dispatch::{Audience, Dispatcher, Outbound, Recipient},
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

    /// Takes one alert transition, at `now` (the stage's clock, in ms since the epoch).
    pub fn receive(&mut self, subscriptions: &Subscriptions, alert: &Alert, now: i64) {
        self.dispatcher.insert(subscriptions.routes(), alert, now);
    }

    /// The notifications due at `now`, one per recipient channel and group.
    pub fn due(
        &mut self,
        subscriptions: &Subscriptions,
        silences: &Silences,
        now: i64,
    ) -> Vec<Outbound> {
        let audience = Policy {
            subscriptions,
            silences,
            firing: self
                .dispatcher
                .firing()
                .into_iter()
                .map(labels_of)
                .collect(),
            now,
        };
        self.dispatcher.due(now, &audience)
    }

    /// When to call [`Router::due`] next, if anything is pending.
    pub fn next_due(&self) -> Option<i64> {
        self.dispatcher.next_due()
    }

    /// How many aggregation groups are open.
    pub fn groups(&self) -> usize {
        self.dispatcher.len()
    }
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
