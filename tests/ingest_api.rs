//! The ingest HTTP API against the real broker, as an agency uses it: authentication and
//! country binding, per-field validation errors in a batch, and idempotent re-sends.

use std::collections::HashSet;

use relec_ingest::auth::generate_key;
use relec_plumbing::{Config, config::AgencyConfig, kafka::Kafka};
use relec_schemas::{IncidentEvent, Record, WireFormat, sample};
use relec_tests::{
    RECEIVE_DEADLINE, assert_matches_openapi, broker, config, records_on, start_ingest, unique,
};
use serde_json::Value;

struct Ingest {
    url: String,
    irn_key: String,
    config: Config,
    kafka: Kafka,
    _stop: tokio_util::sync::DropGuard,
}

async fn start() -> Ingest {
    let mut config = config(&broker(), WireFormat::SingleObject);
    let (irn_key, irn_hash) = generate_key();
    let (_, tur_hash) = generate_key();
    config.ingest.agencies = vec![
        AgencyConfig {
            id: "IRN-BORDER-GUARD".into(),
            countries: vec!["IRN".into()],
            key_sha256: irn_hash,
        },
        AgencyConfig {
            id: "TUR-JANDARMA".into(),
            countries: vec!["TUR".into()],
            key_sha256: tur_hash,
        },
    ];
    let (kafka, url, stop) = start_ingest(&config).await;
    Ingest {
        url,
        irn_key,
        config,
        kafka,
        _stop: stop,
    }
}

fn irn_event(seed: u64, i: u64) -> IncidentEvent {
    let mut e = sample::incident(seed, i);
    e.reporting_country = "IRN".into();
    e.reporting_agency = "IRN-BORDER-GUARD".into();
    e
}

/// Posts and checks the answer against the OpenAPI document.
async fn post(url: &str, key: &str, body: &(impl serde::Serialize + ?Sized)) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    send(url, key, "application/json", bytes).await
}

async fn send(url: &str, key: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.expect("json body");
    assert_matches_openapi("post", "/v1/events", status, &media, &body);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_country_gets_403_and_a_bad_key_401_and_neither_writes() {
    let ingest = start().await;
    let mut tur = irn_event(1, 1);
    tur.reporting_country = "TUR".into();
    let batch = vec![irn_event(1, 2), tur];

    let (status, body) = post(&ingest.url, &ingest.irn_key, &batch).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "/v1/problems/forbidden-country");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("TUR"),
        "{body}"
    );

    // The other body formats are held to the same binding.
    let tur = &batch[1];
    let lines = batch
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect::<Vec<_>>()
        .join("\n");
    let avro = relec_schemas::Encoder::<IncidentEvent>::single_object()
        .encode(tur)
        .expect("avro");
    for (content_type, bytes) in [
        ("application/x-ndjson", lines.into_bytes()),
        ("application/vnd.apache.avro+binary", avro),
    ] {
        let (status, body) = send(&ingest.url, &ingest.irn_key, content_type, bytes).await;
        assert_eq!(status, 403, "{content_type}: {body}");
        assert_eq!(body["type"], "/v1/problems/forbidden-country");
    }

    let (status, body) = post(&ingest.url, "relec_not-a-key", &batch[..1]).await;
    assert_eq!(status, 401, "{body}");

    assert_eq!(
        records_on(&ingest.kafka, &ingest.config.topics.incidents.name).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_invalid_events_lands_the_valid_ones_once() {
    let ingest = start().await;
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let mut batch: Vec<Value> = (0..100)
        .map(|i| serde_json::to_value(irn_event(seed, i)).expect("json"))
        .collect();
    batch[7]["facilitators"] = (-2).into();
    batch[42]["nationalities"] =
        serde_json::json!([{ "nationality": "ZZZ", "count": 0, "minors": 0 }]);
    batch[99]["category"] = "PICNIC".into();

    let (status, body) = post(&ingest.url, &ingest.irn_key, &batch).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(97), Some(3)),
        "{body}"
    );
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().expect("pointer"))
        .collect();
    assert_eq!(
        pointers,
        [
            "/7/facilitators",
            "/42/nationalities/0/nationality",
            "/99/category"
        ],
        "{body}"
    );
    for e in body["errors"].as_array().expect("errors") {
        assert!(!e["detail"].as_str().unwrap_or("").is_empty(), "{e}");
    }

    // The same batch again: nothing new lands; the valid events are reported as duplicates.
    let (status, again) = post(&ingest.url, &ingest.irn_key, &batch).await;
    assert_eq!(status, 422, "{again}");
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(97)),
        "{again}"
    );

    let topic = &ingest.config.topics.incidents.name;
    assert_eq!(records_on(&ingest.kafka, topic).await, 97);
    let consumer = ingest
        .kafka
        .record_consumer::<IncidentEvent>("test", &unique("group"), &[topic])
        .expect("consumer");
    let mut ids = HashSet::new();
    while ids.len() < 97 {
        let consumed = tokio::time::timeout(RECEIVE_DEADLINE, consumer.next())
            .await
            .expect("in time")
            .expect("consume");
        let event = consumed.record.expect("decodes");
        assert!(
            ids.insert(event.event_id.clone()),
            "{} twice",
            event.event_id
        );
    }
    let invalid: HashSet<String> = [7, 42, 99]
        .iter()
        .map(|i| batch[*i]["event_id"].as_str().expect("id").to_owned())
        .collect();
    assert!(ids.is_disjoint(&invalid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_api_matches_its_openapi_document() {
    let ingest = start().await;
    let url = &ingest.url;
    let key = &ingest.irn_key;
    let event = serde_json::to_vec(&irn_event(9, 1)).expect("json");

    // 200, one event and a batch; 200 again as duplicates.
    assert_eq!(
        send(url, key, "application/json", event.clone()).await.0,
        200
    );
    assert_eq!(
        post(url, key, &[irn_event(9, 2), irn_event(9, 3)]).await.0,
        200
    );
    assert_eq!(post(url, key, &[irn_event(9, 2)]).await.0, 200);
    // JSON Lines and Avro single-object bodies.
    let lines = format!(
        "{}\n{}\n",
        serde_json::to_string(&irn_event(9, 4)).expect("json"),
        serde_json::to_string(&irn_event(9, 5)).expect("json")
    );
    assert_eq!(
        send(url, key, "application/x-ndjson", lines.into_bytes())
            .await
            .0,
        200
    );
    let avro = relec_schemas::Encoder::<IncidentEvent>::single_object()
        .encode(&irn_event(9, 6))
        .expect("avro");
    assert_eq!(
        send(url, key, "application/vnd.apache.avro+binary", avro)
            .await
            .0,
        200
    );
    // 400, 401, 415, 413, 422.
    assert_eq!(
        send(url, key, "application/json", b"{not json".to_vec())
            .await
            .0,
        400
    );
    assert_eq!(
        send(url, "wrong", "application/json", event.clone())
            .await
            .0,
        401
    );
    assert_eq!(send(url, key, "text/plain", event.clone()).await.0, 415);
    assert_eq!(
        send(url, key, "application/json", vec![b' '; 9 * 1024 * 1024])
            .await
            .0,
        413
    );
    assert_eq!(
        send(
            url,
            key,
            "application/vnd.apache.avro+binary",
            b"garbage".to_vec()
        )
        .await
        .0,
        422
    );
    // 403.
    let mut tur = irn_event(9, 7);
    tur.reporting_country = "TUR".into();
    assert_eq!(post(url, key, &[tur]).await.0, 403);

    let doc: Value = reqwest::get(url.replace("/v1/events", "/v1/openapi.json"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    // The document's event schema is the Avro record, field for field.
    let avsc: Value =
        serde_json::from_str(IncidentEvent::schema_set().current().json).expect("avsc");
    let mut avro_fields: Vec<&str> = avsc["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    let mut doc_fields: Vec<&str> = doc["components"]["schemas"]["IncidentEvent"]["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    avro_fields.sort_unstable();
    doc_fields.sort_unstable();
    assert_eq!(avro_fields, doc_fields);
}

#[test]
fn the_openapi_check_is_not_vacuous() {
    let wrong =
        serde_json::json!({ "accepted": "many", "duplicates": 0, "rejected": 0, "results": [] });
    let check = |status, body: &Value| {
        std::panic::catch_unwind(|| {
            assert_matches_openapi("post", "/v1/events", status, "application/json", body)
        })
    };
    assert!(
        check(200, &wrong).is_err(),
        "a wrongly typed field must fail"
    );
    assert!(
        check(418, &wrong).is_err(),
        "an undocumented status must fail"
    );
    let right = serde_json::json!({ "accepted": 1, "duplicates": 0, "rejected": 0, "results": [] });
    assert!(check(200, &right).is_ok());
}
