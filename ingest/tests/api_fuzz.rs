//! Arbitrary request bodies never panic the ingest API: random bytes, random JSON, and
//! mutated valid events, under every content type, all get a documented answer.

use std::sync::OnceLock;

use axum::{Router, body::Body, http::Request};
use proptest::prelude::*;
use relec_ingest::{auth::generate_key, publisher::system_clock};
use relec_plumbing::{Config, config::AgencyConfig, kafka::Kafka, telemetry::Telemetry};
use serde_json::Value;
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    key: String,
    _kafka: Kafka,
}

/// One embedded cluster and API for every case; building one per case would dominate.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (key, hash) = generate_key();
        let mut config = Config::default();
        config.ingest.max_body_bytes = 64 * 1024;
        config.ingest.agencies = vec![AgencyConfig {
            id: "AFG-BORDER".into(),
            countries: vec!["AFG".into()],
            key_sha256: hash,
        }];
        let (router, kafka) = runtime.block_on(async {
            let kafka = Kafka::connect(&config).expect("embedded cluster");
            let api = relec_ingest::build(&config, &kafka, &Telemetry::new(), system_clock())
                .await
                .expect("build");
            (relec_ingest::http::router(api), kafka)
        });
        Fixture {
            runtime,
            router,
            key,
            _kafka: kafka,
        }
    })
}

const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-ndjson",
    "application/vnd.apache.avro+binary",
    "text/plain",
    "",
];
const DOCUMENTED: [u16; 8] = [200, 400, 401, 403, 413, 415, 422, 503];

fn answer(content_type: &str, body: Vec<u8>, authorised: bool) -> (u16, Vec<u8>) {
    let f = fixture();
    let mut request = Request::post("/v1/events");
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    if authorised {
        request = request.header("authorization", format!("Bearer {}", f.key));
    }
    let request = request.body(Body::from(body)).expect("request");
    f.runtime.block_on(async {
        let response = f.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    })
}

fn assert_documented(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        DOCUMENTED.contains(&status),
        "undocumented status {}",
        status
    );
    prop_assert!(
        serde_json::from_slice::<Value>(body).is_ok(),
        "non-JSON answer to status {}",
        status
    );
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,16}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid AFG event with one field replaced by an arbitrary value.
fn mutated_event() -> impl Strategy<Value = Value> {
    (0u64..1000, 0usize..24, json_value()).prop_map(|(i, field, value)| {
        let mut event = relec_schemas::sample::incident(77, i);
        event.reporting_country = "AFG".into();
        let mut json = serde_json::to_value(event).expect("json");
        let object = json.as_object_mut().expect("object");
        let key = object
            .keys()
            .nth(field % object.len())
            .cloned()
            .expect("key");
        object.insert(key, value);
        json
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn random_bytes(ct in 0usize..5, body in prop::collection::vec(any::<u8>(), 0..2048), auth in any::<bool>()) {
        let (status, answer) = answer(CONTENT_TYPES[ct], body, auth);
        assert_documented(status, &answer)?;
    }

    #[test]
    fn random_json(value in json_value()) {
        let (status, answer) = answer("application/json", serde_json::to_vec(&value).expect("json"), true);
        assert_documented(status, &answer)?;
    }

    #[test]
    fn mutated_events(batch in prop::collection::vec(mutated_event(), 1..8)) {
        let (status, answer) = answer("application/json", serde_json::to_vec(&batch).expect("json"), true);
        assert_documented(status, &answer)?;
        prop_assert!(status != 500);
    }
}
