//! The `native` webhook body: relec's own JSON, the notification envelope around the
//! `Alert` records exactly as the rules stage wrote them.

use std::collections::BTreeMap;

use relec_schemas::{Alert, AlertStatus, Tlp};
use serde::Serialize;

use crate::{Notification, email::tlp_marking};

/// The version of this body's shape; bumped on incompatible changes.
pub const VERSION: &str = "1";

#[derive(Serialize)]
struct Body<'a> {
    version: &'static str,
    /// The idempotency key, also sent as `webhook-id`.
    id: &'a str,
    subscriber: &'a str,
    receiver: &'a str,
    group_key: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    status: AlertStatus,
    handling: Tlp,
    /// The TLP 2.0 marking of the whole message, e.g. `TLP:AMBER+STRICT`.
    tlp: &'static str,
    alerts: &'a [Alert],
}

pub fn body(notification: &Notification) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(&Body {
        version: VERSION,
        id: &notification.idempotency_key,
        subscriber: &notification.subscriber,
        receiver: &notification.receiver,
        group_key: &notification.group_key,
        group_labels: &notification.group_labels,
        status: notification.status,
        handling: notification.handling,
        tlp: tlp_marking(notification.handling),
        alerts: &notification.alerts,
    })
}
