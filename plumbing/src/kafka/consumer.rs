//! Typed consumer: decodes records in either wire format and lets the caller store an
//! offset only once the record has been processed, so a crash replays, never skips.

use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::BorrowedMessage,
};
use relec_schemas::{Decoder, Record};

use crate::Error;

/// One consumed record: the decoded value (or why it did not decode) and where it was.
#[derive(Debug)]
pub struct Consumed<T> {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub record: Result<T, relec_schemas::Error>,
    /// The raw bytes, kept so a rejected record can be forwarded as it arrived.
    pub payload: Vec<u8>,
}

/// Reads `T` records from the topics it subscribed to.
pub struct RecordConsumer<T: Record> {
    consumer: StreamConsumer,
    decoder: Decoder<T>,
}

impl<T: Record> std::fmt::Debug for RecordConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordConsumer")
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl<T: Record> RecordConsumer<T> {
    pub fn new(consumer: StreamConsumer, decoder: Decoder<T>) -> Self {
        Self { consumer, decoder }
    }

    /// The next record; a decode failure is returned inside [`Consumed::record`] so the
    /// caller decides where it goes, and the partition never blocks on it.
    pub async fn next(&self) -> Result<Consumed<T>, Error> {
        let message = self.consumer.recv().await?;
        let payload = message.payload().unwrap_or_default().to_vec();
        let record = self.decoder.decode(&payload).await;
        Ok(consumed(&message, record, payload))
    }

    /// Marks `consumed` as processed; its offset is committed in the background or by
    /// [`commit_sync`] at shutdown.
    pub fn store(&self, consumed: &Consumed<T>) -> Result<(), Error> {
        Ok(self
            .consumer
            .store_offset(&consumed.topic, consumed.partition, consumed.offset)?)
    }

    pub fn inner(&self) -> &StreamConsumer {
        &self.consumer
    }
}

fn consumed<T>(
    m: &BorrowedMessage<'_>,
    record: Result<T, relec_schemas::Error>,
    payload: Vec<u8>,
) -> Consumed<T> {
    Consumed {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        record,
        payload,
    }
}

/// Commits the stored offsets synchronously: the last step of a graceful shutdown.
pub fn commit_sync(consumer: &StreamConsumer) -> Result<(), Error> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit is not a failure.
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => Ok(()),
        other => Ok(other?),
    }
}
