# Test bed: a Confluent-format producer and consumer written with Python's confluent-kafka (its AvroSerializer and
# AvroDeserializer against the schema registry), the client no one here wrote; run by tests/registry_interop.rs with
# the venv tests/bed/confluent.sh makes.
"""
produce  reads incident events, one JSON object a line (the Avro record field for field, as relec's HTTP API takes
         them), from stdin; serializes each with AvroSerializer and the given .avsc (registered under <topic>-value
         by the serializer itself) and produces it to --topic keyed by its route. Waits for every delivery report.
         Prints one JSON line: {"produced": N, "schema_id": ID}.
consume  reads --topic from the beginning (read_committed) until every partition is at its end, deserializing each
         value with AvroDeserializer (the writer schema fetched from the registry by the record's id). Prints one
         JSON line per record: {"magic": 0, "schema_id": ID, "key": "...", "value": {...}}, timestamps as epoch ms.
Both stop with exit code 1 and a message on stderr when anything fails, and never run past --timeout seconds.
"""

import argparse
import datetime
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def fail(message):
    print(f"confluent_client: {message}", file=sys.stderr)
    sys.exit(1)


def header(payload):
    """The Confluent framing of a value: magic byte, big-endian schema id."""
    if payload is None or len(payload) < 5:
        fail(f"a value of {0 if payload is None else len(payload)} bytes has no Confluent header")
    return payload[0], int.from_bytes(payload[1:5], "big")


def produce(args, registry):
    with open(args.schema, encoding="utf-8") as f:
        schema = f.read()
    serializer = AvroSerializer(registry, schema, conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True, "acks": "all"})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    context = SerializationContext(args.topic, MessageField.VALUE)
    produced = 0
    schema_id = None
    deadline = time.monotonic() + args.timeout
    for line_number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        if time.monotonic() > deadline:
            fail(f"timed out after {args.timeout}s while producing")
        event = json.loads(line)
        value = serializer(event, context)
        magic, schema_id = header(value)
        if magic != 0:
            fail(f"line {line_number}: the serializer wrote magic byte {magic}")
        while True:
            try:
                producer.produce(args.topic, key=event["route"].encode(), value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: serve delivery reports, then retry
        producer.poll(0)
        produced += 1
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    if remaining:
        fail(f"{remaining} records still undelivered after {args.timeout}s")
    if errors:
        fail(f"{len(errors)} deliveries failed, first: {errors[0]}")
    print(json.dumps({"produced": produced, "schema_id": schema_id}))


def plain(value):
    """JSON-ready: fastavro reads timestamp-millis as datetime; give them back as epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def consume(args, registry):
    deserializer = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    metadata = consumer.list_topics(args.topic, timeout=10)
    topic = metadata.topics.get(args.topic)
    if topic is None or topic.error is not None:
        fail(f"topic {args.topic}: {None if topic is None else topic.error}")
    partitions = sorted(topic.partitions)
    consumer.assign([TopicPartition(args.topic, p, 0) for p in partitions])
    context = SerializationContext(args.topic, MessageField.VALUE)
    open_partitions = set(partitions)
    deadline = time.monotonic() + args.timeout
    while open_partitions:
        if time.monotonic() > deadline:
            fail(f"partitions {sorted(open_partitions)} not read to their end in {args.timeout}s")
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error() is not None:
            if msg.error().code() == KafkaError._PARTITION_EOF:
                open_partitions.discard(msg.partition())
                continue
            fail(f"consume: {msg.error()}")
        magic, schema_id = header(msg.value())
        record = deserializer(msg.value(), context)
        key = msg.key().decode() if msg.key() is not None else None
        print(json.dumps({"magic": magic, "schema_id": schema_id, "key": key, "value": plain(record)}))
    consumer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["produce", "consume"])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--registry", required=True, help="the Confluent API's base URL")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--schema", help="produce: the .avsc to write with")
    parser.add_argument("--group", help="consume: the consumer group id (no offsets are committed)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    registry = SchemaRegistryClient({"url": args.registry})
    if args.command == "produce":
        if not args.schema:
            fail("produce needs --schema")
        produce(args, registry)
    else:
        if not args.group:
            fail("consume needs --group")
        consume(args, registry)


if __name__ == "__main__":
    main()
