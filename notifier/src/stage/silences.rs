//! Silences on Kafka: each silence is a JSON record of the compacted topic
//! `relec.notifier.silences`, keyed by its id, so they survive restarts and every
//! instance sees the same ones. The stage follows the topic into a live view; the admin
//! endpoints and `relec notify silence` write to it (expiring a silence rewrites it with
//! an end of now, so the audit trail stays until compaction).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
    message::OwnedHeaders,
    producer::FutureProducer,
};
use relec_plumbing::{kafka::Kafka, telemetry::Readiness};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::topic::{self, EndsQuietly, read_to_end};
use crate::{Error, Silence, Silences, matcher::Matcher};

/// What an operator asks for: matchers, and either an end or a duration from the start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// ms since the epoch; default now.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// ms since the epoch; or give `duration`.
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// e.g. "2h"; the silence ends this long after it starts.
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    pub created_by: String,
    pub comment: String,
}

impl NewSilence {
    /// The silence, checked (every problem at once).
    pub fn build(self, now: i64) -> Result<Silence, Error> {
        let starts_at = self.starts_at.unwrap_or(now);
        let ends_at = match (self.ends_at, self.duration) {
            (Some(end), _) => end,
            (None, Some(d)) => {
                starts_at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            (None, None) => {
                let mut problems = relec_plumbing::config::Problems::default();
                problems.push("ends_at", "give ends_at or duration");
                return Err(Error::Silence(problems));
            }
        };
        Silence::new(
            self.matchers,
            starts_at,
            ends_at,
            self.created_by,
            self.comment,
        )
    }
}

/// The silences as last read from the topic (and as written by this process).
#[derive(Debug, Clone, Default)]
pub struct SilenceBook {
    silences: Arc<RwLock<Silences>>,
}

impl SilenceBook {
    pub fn snapshot(&self) -> Silences {
        self.silences
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn upsert(&self, silence: Silence) {
        self.silences
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .upsert(silence);
    }

    fn remove(&self, id: &Uuid) {
        self.silences
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Silences in force at `now`.
    pub fn active(&self, now: i64) -> usize {
        let silences = self.silences.read().unwrap_or_else(|p| p.into_inner());
        silences.iter().filter(|s| s.is_active(now)).count()
    }
}

/// Writes silences to the topic.
#[derive(Clone)]
pub struct SilenceStore {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for SilenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SilenceStore")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl SilenceStore {
    pub fn new(kafka: &Kafka, topic: &str) -> Result<Self, Error> {
        Ok(Self {
            producer: kafka.producer("notifier-silences")?,
            topic: topic.to_owned(),
        })
    }

    /// Writes `silence` (new or changed) and waits for the acknowledgement.
    pub async fn put(&self, silence: &Silence) -> Result<(), Error> {
        topic::write(
            &self.producer,
            &self.topic,
            &silence.id.to_string(),
            Some(&silence.to_json()),
            OwnedHeaders::new(),
        )
        .await
    }

    /// Every silence the topic holds now.
    pub async fn load(kafka: &Kafka, topic: &str) -> Result<Silences, Error> {
        let mut silences = Silences::default();
        for record in read_to_end(kafka, topic, false).await? {
            apply(&mut silences, topic, &record)?;
        }
        Ok(silences)
    }

    /// Expires the silence `id` (a unique prefix of it will do) at `now` and writes it
    /// back; returns it as it is now. An unknown id is [`Error::NotFound`].
    pub async fn expire(
        &self,
        silences: &Silences,
        id: &str,
        now: i64,
    ) -> Result<(Silence, bool), Error> {
        let found: Vec<&Silence> = (silences.iter())
            .filter(|s| s.id.to_string().starts_with(&id.to_ascii_lowercase()))
            .collect();
        let mut silence = match found[..] {
            [one] => one.clone(),
            [] => return Err(Error::NotFound(format!("no silence {id}"))),
            _ => {
                return Err(Error::NotFound(format!(
                    "{id} is the start of {} silence ids; give more of it",
                    found.len()
                )));
            }
        };
        let changed = silence.expire(now);
        if changed {
            self.put(&silence).await?;
        }
        Ok((silence, changed))
    }
}

/// Follows the silences topic into `book` until `shutdown`; ready once it has read what
/// the topic held when it started.
pub async fn follow(
    kafka: Kafka,
    topic: String,
    book: SilenceBook,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let consumer: StreamConsumer<EndsQuietly> = kafka
        .reader_config("notifier-silences")
        .set("group.id", "relec-notifier-silences")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(EndsQuietly)?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(30))?;
    let partitions: Vec<i32> = (metadata.topics().iter())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut open = partitions;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        match message {
            Ok(m) => {
                let record = topic::Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: None,
                    headers: Vec::new(),
                };
                match record.value.as_deref() {
                    None => {
                        if let Ok(id) = record.key.parse::<Uuid>() {
                            book.remove(&id);
                        }
                    }
                    Some(value) => match Silence::from_json(value) {
                        Ok(silence) => book.upsert(silence),
                        // One bad record must not hide the others: skip it, loudly.
                        Err(e) => tracing::error!(
                            topic,
                            offset = record.offset,
                            key = record.key,
                            error = %e,
                            "silence record does not read; skipped"
                        ),
                    },
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                open.retain(|o| *o != p);
                if open.is_empty() {
                    ready.set(true);
                }
            }
            Err(e) => tracing::warn!(error = %e, topic, "silences read error; retrying"),
        }
    }
}

fn apply(silences: &mut Silences, topic: &str, record: &topic::Record) -> Result<(), Error> {
    match record.value.as_deref() {
        None => {
            if let Ok(id) = record.key.parse::<Uuid>() {
                silences.remove(&id);
            }
        }
        Some(value) => {
            let silence = Silence::from_json(value).map_err(|e| Error::Record {
                topic: topic.to_owned(),
                partition: record.partition,
                offset: record.offset,
                key: record.key.clone(),
                reason: e.to_string(),
            })?;
            silences.upsert(silence);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_silence_takes_a_duration_or_an_end() {
        let json = r#"{"matchers":["route=\"IRN-TUR\""],"duration":"2h","created_by":"ops","comment":"feed maintenance"}"#;
        let new: NewSilence = serde_json::from_str(json).expect("parses");
        let s = new.build(1_000).expect("valid");
        assert_eq!((s.starts_at, s.ends_at), (1_000, 1_000 + 7_200_000));

        let json = r#"{"matchers":["route=\"IRN-TUR\""],"created_by":"","comment":""}"#;
        let new: NewSilence = serde_json::from_str(json).expect("parses");
        let text = new.build(0).expect_err("no end").to_string();
        assert!(text.contains("ends_at: give ends_at or duration"), "{text}");
    }
}
