//! Waiting on a transactional producer that its owner polls by hand, without spinning.
//!
//! rdkafka's `BaseProducer::poll(t)` serves events until `t` has passed, and hands
//! librdkafka the time left truncated to whole milliseconds: below 1 ms that is a
//! non-blocking poll, so `poll(1 ms)` spins for the whole millisecond, and waiting for
//! acknowledgements that way kept a core busy (70 % of one in `bench notify` at 100
//! checkpoints/s, taken from the broker on the same machine). Here the producer is served
//! without blocking and the thread sleeps while nothing arrives.

use std::{
    thread,
    time::{Duration, Instant},
};

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::ToBytes,
    producer::{BaseProducer, BaseRecord, Producer},
};

/// How long a waiting thread sleeps when nothing came back: small beside a broker's
/// round trip, long enough that waiting costs next to no CPU.
const NAP: Duration = Duration::from_micros(250);

/// Serves delivery reports until nothing is in flight, or `deadline`. Returns whether
/// everything was acknowledged (or failed: a failed record fails the transaction's commit).
pub fn await_acks(producer: &BaseProducer, deadline: Instant) -> bool {
    let mut left = producer.in_flight_count();
    while left > 0 && Instant::now() < deadline {
        producer.poll(Duration::ZERO);
        let now = producer.in_flight_count();
        if now == left {
            thread::sleep(NAP);
        }
        left = now;
    }
    left == 0
}

/// `init_transactions` on a new producer, once it knows the cluster
/// ([`super::learn_brokers`]): in `bench stage`, one start in two to three lost
/// librdkafka's fixed 500 ms coordinator retry without it (once for each of its two
/// producers).
pub fn init_transactions(
    producer: &BaseProducer,
    topic: &str,
    timeout: Duration,
) -> Result<(), KafkaError> {
    super::learn_brokers(producer.client(), topic, timeout)?;
    producer.init_transactions(timeout)
}

/// Enqueues `record`, serving the producer while its queue is full, until `deadline`.
pub fn send<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, P>,
    deadline: Instant,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if Instant::now() < deadline =>
            {
                record = r;
                producer.poll(Duration::ZERO);
                thread::sleep(NAP);
            }
            Err((e, _)) => return Err(e),
        }
    }
}
