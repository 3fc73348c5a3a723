//! The dead-letter topic `relec.notifications.dlq`: every delivery that failed for good
//! (a permanent refusal, or its attempts used up), keyed by delivery id, with the
//! notification itself, so an operator can see why and replay it.
//!
//! The topic is append-only (deleted by retention, 30 days by default), so a replay is
//! not recorded there: `relec notify dlq replay` writes the delivery's record in the
//! delivery log (`relec.notifier.deliveries`, compacted, key `delivery/<id>`) over with
//! state `replayed`, and `dlq list` shows each dead letter with that state. Replaying an
//! entry twice is refused unless asked for, and a receiver that deduplicates by the
//! idempotency key drops the repeat anyway.

use std::{
    collections::{BTreeMap, HashSet},
    time::SystemTime,
};

use rand::rngs::SmallRng;
use rdkafka::message::OwnedHeaders;
use relec_plumbing::kafka::Kafka;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    Error, Notification, Outbound, Subscriptions,
    channels::Channels,
    deliveries::{Entry, Keys, State},
    retry::{self, Delivery, RetryPolicy},
    stage::{
        deliver::{header, now_ms},
        topic::{self, read_to_end},
    },
    subscriptions::{Channel, ChannelId},
};

/// Headers of a dead-letter record, for tools that do not read its JSON.
pub const HEADER_REASON: &str = "relec.dlq.reason";
pub const HEADER_ATTEMPTS: &str = "relec.dlq.attempts";
pub const HEADER_CHANNEL: &str = "relec.dlq.channel";
/// `permanent` (refused for good) or `exhausted` (attempts used up).
pub const HEADER_CLASS: &str = "relec.dlq.class";

/// One dead letter: the value of a record of the dead-letter topic (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The delivery id, `<idempotency key>@<channel>`, also the record key.
    pub id: String,
    pub channel: ChannelId,
    /// `email`, or the webhook's format (`native`, `cap`, `alertmanager`) at the time.
    pub format: String,
    /// The last attempt's failure.
    pub reason: String,
    pub attempts: u32,
    /// Refused for good (true), or attempts used up (false).
    pub permanent: bool,
    /// When it was given up, ms since the epoch.
    pub failed_at: i64,
    /// What was to be delivered; a replay renders it again, signed anew.
    pub notification: Notification,
}

impl DeadLetter {
    pub fn new(
        id: &str,
        outbound: &Outbound,
        reason: &str,
        attempts: u32,
        permanent: bool,
        now: i64,
    ) -> Self {
        Self {
            id: id.to_owned(),
            channel: outbound.channel.clone(),
            format: String::new(),
            reason: reason.to_owned(),
            attempts,
            permanent,
            failed_at: now,
            notification: outbound.notification.clone(),
        }
    }

    /// With the channel's format filled in from `subscriptions`.
    pub fn with_format(mut self, subscriptions: &Subscriptions) -> Self {
        self.format = match &self.channel.channel {
            Channel::Email => "email".to_owned(),
            Channel::Webhook(_) => subscriptions
                .webhook(&self.channel)
                .map(|w| format!("{:?}", w.format).to_lowercase())
                .unwrap_or_else(|| "webhook".to_owned()),
        };
        self
    }

    pub fn headers(&self) -> OwnedHeaders {
        let class = if self.permanent {
            "permanent"
        } else {
            "exhausted"
        };
        let h = header(OwnedHeaders::new(), HEADER_REASON, &self.reason);
        let h = header(h, HEADER_ATTEMPTS, &self.attempts.to_string());
        let h = header(h, HEADER_CHANNEL, &self.channel.to_string());
        header(h, HEADER_CLASS, class)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a dead letter serialises")
    }

    pub fn outbound(&self) -> Outbound {
        Outbound {
            channel: self.channel.clone(),
            notification: self.notification.clone(),
        }
    }
}

/// A dead letter as listed: the latest record of its id, and whether it was replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub letter: DeadLetter,
    pub replayed: bool,
}

/// Every dead letter the topic holds (the latest per id), oldest first, each with
/// whether the delivery log says it was replayed.
pub async fn list(
    kafka: &Kafka,
    dlq_topic: &str,
    deliveries_topic: &str,
) -> Result<Vec<Listed>, Error> {
    let mut letters: BTreeMap<String, DeadLetter> = BTreeMap::new();
    for r in read_to_end(kafka, dlq_topic, false).await? {
        let Some(value) = r.value else { continue };
        let letter: DeadLetter = serde_json::from_slice(&value).map_err(|e| Error::Record {
            topic: dlq_topic.to_owned(),
            partition: r.partition,
            offset: r.offset,
            key: r.key.clone(),
            reason: e.to_string(),
        })?;
        letters.insert(letter.id.clone(), letter);
    }
    let mut replayed = HashSet::new();
    for r in read_to_end(kafka, deliveries_topic, true).await? {
        if let (Some(id), Some(value)) = (Keys::delivery_of(&r.key), r.value)
            && letters.contains_key(id)
        {
            let id = id.to_owned();
            match serde_json::from_slice::<Entry>(&value) {
                Ok(e) if e.state == State::Replayed => {
                    replayed.insert(id);
                }
                _ => {
                    replayed.remove(&id);
                }
            }
        }
    }
    let mut listed: Vec<Listed> = (letters.into_values())
        .map(|letter| Listed {
            replayed: replayed.contains(&letter.id),
            letter,
        })
        .collect();
    listed.sort_by_key(|l| (l.letter.failed_at, l.letter.id.clone()));
    Ok(listed)
}

/// What a replay of one dead letter came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    Delivered {
        attempts: u32,
    },
    Failed {
        attempts: u32,
        reason: String,
    },
    /// Replayed before; not sent again.
    AlreadyReplayed,
}

/// Delivers a dead letter again through its channel as the subscriptions say now, with
/// the retry policy; on success the delivery log records it as replayed.
pub async fn replay(
    kafka: &Kafka,
    deliveries_topic: &str,
    channels: &Channels,
    subscriptions: &Subscriptions,
    policy: &RetryPolicy,
    listed: &Listed,
    shutdown: &CancellationToken,
) -> Result<Replay, Error> {
    if listed.replayed {
        return Ok(Replay::AlreadyReplayed);
    }
    let outbound = listed.letter.outbound();
    let mut rng: SmallRng = rand::make_rng();
    let delivery = retry::deliver(policy, &mut rng, shutdown, |_| {
        channels.attempt(subscriptions, &outbound, SystemTime::now())
    })
    .await;
    match delivery {
        Delivery::Delivered { attempts } => {
            let entry = Entry::ended(
                State::Replayed,
                &outbound.channel,
                &outbound.notification.idempotency_key,
                attempts,
                now_ms(),
            );
            let producer = kafka.producer("notifier-dlq")?;
            topic::write(
                &producer,
                deliveries_topic,
                &Keys::delivery(&listed.letter.id),
                Some(&entry.to_json()),
                OwnedHeaders::new(),
            )
            .await?;
            Ok(Replay::Delivered { attempts })
        }
        Delivery::Failed {
            attempts, reason, ..
        } => Ok(Replay::Failed { attempts, reason }),
        Delivery::Interrupted { attempts } => Ok(Replay::Failed {
            attempts,
            reason: "interrupted".to_owned(),
        }),
    }
}
