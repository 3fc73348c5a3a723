//! Codec tests: round trips in both framings, the single-object header as the Avro
//! specification defines it, schema evolution across released versions, and hostile bytes.

use relec_schemas::{Alert, Decoder, Encoder, Error, IncidentEvent, Record, sample};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn single_object_round_trip_is_field_for_field() {
    let encoder = Encoder::<IncidentEvent>::single_object();
    let decoder = Decoder::<IncidentEvent>::new(None);
    for i in 0..2_000 {
        let event = sample::incident(7, i);
        let bytes = encoder.encode(&event).expect("encode");
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        assert_eq!(decoder.decode_single_object(&bytes).expect("decode"), event);
    }
    let encoder = Encoder::<Alert>::single_object();
    let decoder = Decoder::<Alert>::new(None);
    for i in 0..500 {
        let alert = sample::alert(7, i);
        let bytes = encoder.encode(&alert).expect("encode");
        assert_eq!(block_on(decoder.decode(&bytes)).expect("decode"), alert);
    }
}

/// CRC-64-AVRO exactly as the specification's reference code computes it, independently of
/// the Avro crate, over the Parsing Canonical Form.
fn spec_fingerprint(canonical: &str) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let table: Vec<u64> = (0..256u64)
        .map(|i| (0..8).fold(i, |fp, _| (fp >> 1) ^ (EMPTY & (0u64.wrapping_sub(fp & 1)))))
        .collect();
    canonical.bytes().fold(EMPTY, |fp, b| {
        (fp >> 8) ^ table[((fp ^ u64::from(b)) & 0xff) as usize]
    })
}

#[test]
fn single_object_header_matches_the_specification() {
    for set in [IncidentEvent::schema_set(), Alert::schema_set()] {
        for v in set.versions() {
            let expected = spec_fingerprint(&v.schema.canonical_form()).to_le_bytes();
            assert_eq!(v.fingerprint, expected, "{} v{}", set.name, v.version);
        }
    }
    let bytes = Encoder::<IncidentEvent>::single_object()
        .encode(&sample::incident(1, 1))
        .expect("encode");
    assert_eq!(
        bytes[2..10],
        IncidentEvent::schema_set().current().fingerprint
    );
}

#[test]
fn json_maps_one_to_one_onto_the_avro_record() {
    let event = sample::incident(3, 9);
    let json = serde_json::to_value(&event).expect("json");
    let avsc: serde_json::Value =
        serde_json::from_str(IncidentEvent::schema_set().current().json).expect("avsc");
    let avro_fields: Vec<&str> = avsc["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    let json_fields: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = avro_fields.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, json_fields);
    assert_eq!(
        serde_json::from_value::<IncidentEvent>(json).expect("back"),
        event
    );
}

#[test]
fn unknown_json_field_is_named() {
    let mut json = serde_json::to_value(sample::incident(3, 9)).expect("json");
    json["persns"] = 3.into();
    let err = serde_json::from_value::<IncidentEvent>(json).expect_err("unknown field");
    assert!(err.to_string().contains("persns"), "{err}");
}

#[test]
fn every_released_version_reads_every_other() {
    use apache_avro::{
        reader::datum::GenericDatumReader, schema_compatibility::SchemaCompatibility,
    };
    for set in [IncidentEvent::schema_set(), Alert::schema_set()] {
        for writer in set.versions() {
            for reader in set.versions() {
                SchemaCompatibility::can_read(&writer.schema, &reader.schema).unwrap_or_else(|e| {
                    panic!(
                        "{} v{} cannot read v{}: {e}",
                        set.name, reader.version, writer.version
                    )
                });
            }
        }
    }
    // And with data: what the current version writes, every released version reads.
    let event = sample::incident(5, 5);
    let bytes = Encoder::<IncidentEvent>::single_object()
        .encode(&event)
        .expect("encode");
    let current = &IncidentEvent::schema_set().current().schema;
    for reader in IncidentEvent::schema_set().versions() {
        let value = GenericDatumReader::builder(current)
            .reader_schema(&reader.schema)
            .build()
            .and_then(|r| r.read_value(&mut &bytes[10..]))
            .expect("older reader reads newer data");
        assert!(matches!(value, apache_avro::types::Value::Record(_)));
    }
}

#[test]
fn hostile_bytes_give_typed_errors() {
    let decoder = Decoder::<IncidentEvent>::new(None);
    let good = Encoder::<IncidentEvent>::single_object()
        .encode(&sample::incident(1, 2))
        .expect("encode");
    let decode = |b: &[u8]| block_on(decoder.decode(b)).expect_err("must fail");

    assert!(matches!(decode(&[]), Error::Empty));
    assert!(matches!(decode(&[0x7b, 0x22]), Error::UnknownFormat(0x7b)));
    assert!(matches!(
        decode(&[0xC3, 0x02, 0, 0]),
        Error::BadMarker(0x02)
    ));
    assert!(matches!(
        decode(&good[..6]),
        Error::TruncatedHeader {
            got: 6,
            need: 10,
            ..
        }
    ));
    assert!(matches!(
        decode(&[0x00, 0, 0]),
        Error::TruncatedHeader {
            format: "Confluent",
            ..
        }
    ));
    assert!(matches!(
        decode(&[0x00, 0, 0, 0, 7, 2]),
        Error::NoRegistry(7)
    ));

    let mut wrong_fingerprint = good.clone();
    wrong_fingerprint[5] ^= 0xff;
    let err = decode(&wrong_fingerprint);
    assert!(matches!(err, Error::UnknownFingerprint { .. }), "{err}");
    assert!(err.to_string().contains("IncidentEvent"));

    let err = decode(&good[..good.len() - 3]);
    assert!(matches!(err, Error::Body { .. }), "{err}");

    let mut trailing = good.clone();
    trailing.extend_from_slice(b"xyz");
    assert!(matches!(decode(&trailing), Error::TrailingBytes(3)));
}

mod arbitrary_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let decoder = Decoder::<IncidentEvent>::new(None);
            let _ = decoder.decode_single_object(&bytes);
        }

        #[test]
        fn valid_header_with_garbage_body_is_a_body_error(
            tail in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let decoder = Decoder::<IncidentEvent>::new(None);
            let mut bytes = vec![0xC3, 0x01];
            bytes.extend_from_slice(&IncidentEvent::schema_set().current().fingerprint);
            bytes.extend_from_slice(&tail);
            // Rarely garbage is a valid record; otherwise it is a typed body error.
            if let Err(e) = decoder.decode_single_object(&bytes) {
                prop_assert!(matches!(e, Error::Body { .. } | Error::TrailingBytes(_)), "{e}");
            }
        }

        #[test]
        fn mutated_records_never_panic(i in 0u64..1000, at in 0usize..400, byte in any::<u8>()) {
            let decoder = Decoder::<IncidentEvent>::new(None);
            let mut bytes = Encoder::<IncidentEvent>::single_object()
                .encode(&sample::incident(11, i))
                .expect("encode");
            let at = at % bytes.len();
            bytes[at] = byte;
            let _ = decoder.decode_single_object(&bytes);
        }
    }
}
