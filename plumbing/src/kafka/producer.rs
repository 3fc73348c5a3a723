//! Typed producer: encodes records in the topic's wire format and sends them with the
//! idempotent producer, reporting where each landed once the brokers acknowledged it.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::{
    producer::{FutureProducer, FutureRecord, Producer},
    util::Timeout,
};
use relec_schemas::{Encoder, Record};

use crate::Error;

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// Sends `T` records to one topic.
pub struct RecordProducer<T: Record> {
    producer: FutureProducer,
    topic: String,
    encoder: Encoder<T>,
}

impl<T: Record> std::fmt::Debug for RecordProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProducer")
            .field("topic", &self.topic)
            .field("encoder", &self.encoder)
            .finish()
    }
}

impl<T: Record> RecordProducer<T> {
    pub fn new(producer: FutureProducer, topic: &str, encoder: Encoder<T>) -> Self {
        Self {
            producer,
            topic: topic.to_owned(),
            encoder,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends one record and waits for the acknowledgement.
    pub async fn send(&self, key: &str, record: &T) -> Result<Delivery, Error> {
        let payload = self.encode(record)?;
        self.deliver(key, &payload).await
    }

    /// Sends a batch and waits for every acknowledgement. Records are enqueued in order, so
    /// records with the same key keep their order; one result per record, in input order.
    pub async fn send_all<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, &'a T)>,
    ) -> Vec<Result<Delivery, Error>> {
        let encoded: Vec<(&str, Result<Vec<u8>, Error>)> = records
            .into_iter()
            .map(|(key, record)| (key, self.encode(record)))
            .collect();
        join_all(encoded.iter().map(|(key, payload)| async move {
            match payload {
                Ok(payload) => self.deliver(key, payload).await,
                Err(e) => Err(Error::Topic {
                    topic: self.topic.clone(),
                    reason: e.to_string(),
                }),
            }
        }))
        .await
    }

    /// Messages enqueued and not yet acknowledged or failed.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits until everything enqueued has been acknowledged or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        Ok(self.producer.flush(Timeout::After(timeout))?)
    }

    fn encode(&self, record: &T) -> Result<Vec<u8>, Error> {
        self.encoder.encode(record).map_err(|e| Error::Topic {
            topic: self.topic.clone(),
            reason: e.to_string(),
        })
    }

    async fn deliver(&self, key: &str, payload: &[u8]) -> Result<Delivery, Error> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        // The producer's own delivery timeout bounds the wait, so the queue wait is unbounded.
        match self.producer.send(record, Timeout::Never).await {
            Ok(delivered) => Ok(Delivery {
                partition: delivered.partition,
                offset: delivered.offset,
            }),
            Err((e, _)) => Err(Error::Kafka(e)),
        }
    }
}
