//! Hostile input, outside the pipeline: one function per decoder that takes bytes from
//! outside (Avro in both wire formats, the ingest API's JSON bodies, bulk CSV files, rule
//! files, the subscriptions file). The cargo-fuzz targets in `fuzz/` call these with
//! whatever libFuzzer makes up, and `tests/corpus.rs` replays the checked-in corpus
//! through them on stable Rust, so CI keeps every input that once found a bug.
//!
//! Each function must return for any input; beyond "no panic", each asserts what a user
//! relies on: rejected input says why, and what is accepted survives its own round trip.

use std::{
    future::Future,
    path::Path,
    pin::pin,
    sync::{Arc, LazyLock},
    task::{Context, Poll, Waker},
    time::Duration,
};

use relec_ingest::{
    file::{CSV_COLUMNS, csv_row, read_csv, read_json_lines},
    http::{BodyKind, parse_body},
    publisher::Item,
};
use relec_notifier::Subscriptions;
use relec_rules::{
    lint::{Known, lint, locate},
    rule::Rule,
    sandbox::{self, Limits},
};
use relec_schemas::{
    Alert, Decoder, Encoder, IncidentEvent, Record,
    validate::{FieldError, validate},
};
use rhai::Engine;

/// A fuzz target: bytes in, a panic only for a bug.
pub type Target = fn(&[u8]);

/// Every target by name; the name is its corpus directory under `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 6] = [
    ("avro_single_object", avro_single_object),
    ("avro_confluent", avro_confluent),
    ("json_events", json_events),
    ("csv_import", csv_import),
    ("rule_metadata", rule_metadata),
    ("subscriptions", subscriptions),
];

/// "Now" for validation: far enough ahead that no timestamp is rejected for lying in the
/// future only because the fuzzer does not know the date (2100-01-01).
const NOW_MS: i64 = 4_102_444_800_000;
const SKEW: Duration = Duration::from_secs(300);

/// The Confluent schema ids the fuzzed decoders know: the released schema, and a foreign
/// producer's compatible variant of it, read through schema resolution.
pub const RELEASED_ID: u32 = 1;
pub const FOREIGN_ID: u32 = 2;

static INCIDENTS: LazyLock<Decoder<IncidentEvent>> =
    LazyLock::new(|| known_ids(Decoder::new(None)));
static ALERTS: LazyLock<Decoder<Alert>> = LazyLock::new(|| known_ids(Decoder::new(None)));

fn known_ids<T: Record>(decoder: Decoder<T>) -> Decoder<T> {
    let current = T::schema_set().current();
    decoder
        .add_schema(RELEASED_ID, Arc::new(current.schema.clone()))
        .expect("the released schema reads itself");
    decoder
        .add_schema(FOREIGN_ID, Arc::new(foreign_schema::<T>()))
        .expect("the foreign variant is compatible");
    decoder
}

/// The released schema as another producer might register it: fields in reverse order and
/// one extra optional field the reader does not know.
pub fn foreign_schema<T: Record>() -> apache_avro::Schema {
    let mut json: serde_json::Value =
        serde_json::from_str(T::schema_set().current().json).expect("released schemas are JSON");
    let fields = json["fields"].as_array_mut().expect("a record schema");
    fields.reverse();
    fields.push(serde_json::json!({
        "name": "producer_extra",
        "type": ["null", "string"],
        "default": null
    }));
    apache_avro::Schema::parse(&json).expect("the variant parses")
}

/// Confluent framing of `record` under schema `id`, written with `writer` (a foreign
/// producer's schema) or else the released one: how the seeds are made.
pub fn confluent<T: Record>(id: u32, record: &T, writer: Option<&apache_avro::Schema>) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    let schema = writer.unwrap_or(&T::schema_set().current().schema);
    let value = apache_avro::to_value(record)
        .and_then(|v| v.resolve(schema))
        .expect("the record fits the schema");
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .expect("a writer for a parsed schema");
    out.extend(writer.write_value_to_vec(value).expect("datum"));
    out
}

/// Avro single-object bytes as incidents and as alerts (the ingest API, the ingest screen,
/// the rules and notifier stages all decode them).
pub fn avro_single_object(data: &[u8]) {
    if let Ok(event) = INCIDENTS.decode_single_object(data) {
        check_event(&event);
        round_trip(&INCIDENTS, &event);
    }
    if let Ok(alert) = ALERTS.decode_single_object(data) {
        round_trip(&ALERTS, &alert);
    }
}

/// Confluent-framed bytes (`00`, schema id, body) against ids known without a registry.
pub fn avro_confluent(data: &[u8]) {
    if let Ok(event) = now(INCIDENTS.decode(data)) {
        check_event(&event);
        round_trip(&INCIDENTS, &event);
    }
    if let Ok(alert) = now(ALERTS.decode(data)) {
        round_trip(&ALERTS, &alert);
    }
}

/// A request body of the ingest API as JSON and as JSON Lines, and a bulk `.jsonl` file.
pub fn json_events(data: &[u8]) {
    for kind in [BodyKind::Json, BodyKind::JsonLines] {
        match parse_body(kind, data, &INCIDENTS) {
            Ok(body) => {
                if kind == BodyKind::Json && !body.batch {
                    assert_eq!(body.items.len(), 1, "a single-event body is one item");
                }
                body.items.iter().for_each(check_item);
            }
            Err(detail) => assert!(!detail.is_empty(), "a 400 says why"),
        }
    }
    for line in read_json_lines(data) {
        assert!(line.number >= 1, "line numbers count from 1");
        check_item(&line.item);
    }
}

/// A bulk CSV file; every event it yields that validates also survives `csv_row` (what
/// `relec simulate --out x.csv` writes) and back.
pub fn csv_import(data: &[u8]) {
    for line in read_csv(data) {
        check_item(&line.item);
        if let Item::Event(event) = &line.item
            && validate(event, NOW_MS, SKEW).is_empty()
        {
            let text = format!("{}\n{}\n", CSV_COLUMNS.join(","), csv_row(event));
            let again: Vec<_> = read_csv(text.as_bytes()).collect();
            assert_eq!(again.len(), 1, "one row written, one read: {text:?}");
            match &again[0].item {
                Item::Event(e) => assert_eq!(e, event, "CSV round trip of {text:?}"),
                Item::Invalid { errors, .. } => {
                    panic!("a valid event's CSV row does not read back: {errors:?} in {text:?}")
                }
            }
        }
    }
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| sandbox::engine(&Limits::default()));
static KNOWN: LazyLock<Known> = LazyLock::new(|| Known::of(&ENGINE));
/// `rules.horizon`'s default, in days.
const HORIZON_DAYS: i64 = 400;

/// A rule file as `relec rules check` and the rules stage load it: compiled and its top
/// level (the metadata map) run in the sandbox, then linted.
pub fn rule_metadata(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return; // read_to_string refuses such a file before the rule is compiled
    };
    let path = Path::new("fuzz.rhai");
    match Rule::from_source(&ENGINE, path, source) {
        Ok(rule) => {
            assert!(!rule.id.is_empty(), "a loaded rule has an id");
            assert_eq!(rule.version.len(), 12, "a version is 12 hex digits");
            lint(&KNOWN, path, source, Some(&rule), HORIZON_DAYS);
        }
        Err(error) => {
            assert!(!error.to_string().is_empty(), "a refused rule says why");
            let findings = locate(&error, Some(source));
            assert!(
                !findings.is_empty(),
                "a refused rule has a finding: {error}"
            );
            lint(&KNOWN, path, source, None, HORIZON_DAYS);
        }
    }
}

/// A subscriptions file: parsed and checked as at start and on reload; what loads expands
/// to channels whose ids read back as they print, and routes any alert somewhere.
pub fn subscriptions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // read_to_string refuses such a file before it is parsed
    };
    match Subscriptions::from_toml(text) {
        Ok(subs) => {
            for receiver in subs.receivers() {
                for channel in subs.channels(&receiver.name) {
                    let printed = channel.to_string();
                    assert_eq!(printed.parse().as_ref(), Ok(&channel), "{printed}");
                    assert!(subs.email(&channel).is_some() || subs.webhook(&channel).is_some());
                }
            }
            let labels = [("severity", "critical"), ("country", "AFG"), ("rule", "x")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
            assert!(
                !subs.routes().matching(&labels).is_empty(),
                "the root route takes every alert"
            );
        }
        Err(error) => assert!(!error.to_string().is_empty(), "a refused file says why"),
    }
}

/// What every reader promises about an item: an invalid one names at least one problem.
fn check_item(item: &Item) {
    match item {
        Item::Event(event) => check_event(event),
        Item::Invalid { errors, .. } => {
            assert!(!errors.is_empty(), "an invalid item names its problem");
            errors.iter().for_each(check_field_error);
        }
    }
}

/// Validation never panics and names fields by JSON Pointer; an event it accepts is what
/// the publisher writes, so it must encode and read back as itself.
fn check_event(event: &IncidentEvent) {
    let errors = validate(event, NOW_MS, SKEW);
    errors.iter().for_each(check_field_error);
    if errors.is_empty() {
        round_trip(&INCIDENTS, event);
    }
}

fn check_field_error(error: &FieldError) {
    assert!(
        error.pointer.is_empty() || error.pointer.starts_with('/'),
        "not a JSON Pointer: {:?}",
        error.pointer
    );
    assert!(
        !error.reason.is_empty(),
        "an error at {:?} says why",
        error.pointer
    );
    let _ = error.metric_reason();
}

/// A decoded record encodes (the rules and notifier stages re-encode what they read), and
/// its encoding decodes to the same bytes again.
fn round_trip<T: Record + std::fmt::Debug>(decoder: &Decoder<T>, record: &T) {
    let encoder = Encoder::<T>::single_object();
    let bytes = encoder
        .encode(record)
        .unwrap_or_else(|e| panic!("a decoded record does not encode: {e}: {record:?}"));
    let again = decoder
        .decode_single_object(&bytes)
        .unwrap_or_else(|e| panic!("an encoded record does not decode: {e}: {record:?}"));
    let bytes_again = encoder.encode(&again).expect("encodes once, encodes twice");
    assert_eq!(bytes, bytes_again, "round trip changed {record:?}");
}

/// Runs a decode that never waits: every schema id the fuzzed decoders accept is known
/// up front and there is no registry to ask, so the future is ready on its first poll.
fn now<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a decode without a registry waited"),
    }
}

#[cfg(test)]
mod tests {
    use relec_schemas::sample;

    use super::*;

    #[test]
    fn both_known_ids_decode_without_a_registry() {
        let event = sample::incident(3, 1);
        let foreign = foreign_schema::<IncidentEvent>();
        for bytes in [
            confluent(RELEASED_ID, &event, None),
            confluent(FOREIGN_ID, &event, Some(&foreign)),
        ] {
            assert_eq!(now(INCIDENTS.decode(&bytes)).expect("decodes"), event);
        }
        let unknown = confluent(RELEASED_ID + 7, &event, None);
        assert!(now(INCIDENTS.decode(&unknown)).is_err());
    }
}
