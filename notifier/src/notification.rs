//! What routing hands to a channel: one notification for one recipient, carrying the
//! alerts of one group as they stand, already cut to what the recipient may see.

use std::collections::BTreeMap;

use relec_schemas::{Alert, AlertStatus, Tlp};
use serde::{Deserialize, Serialize};

/// One message to one channel of one subscriber: the alerts of one group (Alertmanager's
/// aggregation group) at the moment the group is flushed.
/// Serde, so a delivery in flight can be checkpointed and a dead-lettered one replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The subscriber's id, as in the subscriptions file.
    pub subscriber: String,
    /// The route's receiver name that produced it (for logs and Alertmanager's `receiver`).
    pub receiver: String,
    /// The group's key: the route's path and the `group_by` label values, stable across
    /// restarts (Alertmanager's `groupKey`).
    pub group_key: String,
    /// The `group_by` labels and their values.
    pub group_labels: BTreeMap<String, String>,
    /// Firing if any alert in it is firing, else resolved.
    pub status: AlertStatus,
    /// The alerts, firing first, each already within the recipient's clearance.
    pub alerts: Vec<Alert>,
    /// The most restrictive handling code among the alerts: what the message is marked.
    pub handling: Tlp,
    /// Stable per alert transition set and recipient channel: the same transitions
    /// delivered again to the same channel carry the same key, so a receiver can drop
    /// the repeat.
    pub idempotency_key: String,
}
