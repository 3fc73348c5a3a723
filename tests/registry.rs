//! The Confluent wire format against the test bed's schema registry: schemas other
//! producers registered are read through Avro schema resolution when compatible, rejected
//! with the reason when not, and unknown ids are named.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use apache_avro::{Schema, types::Value, writer::datum::GenericDatumWriter};
use axum::{Router, http::StatusCode, routing::post};
use relec_schemas::{
    Decoder, Error, IncidentEvent, REGISTER_ATTEMPTS, Record, RegistryClient, sample,
};
use relec_tests::{registry, unique};

fn client() -> Arc<RegistryClient> {
    Arc::new(RegistryClient::new(&registry(), None, Duration::from_secs(10)).expect("client"))
}

fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Our current schema without `notes` and `attributes`: what an agency's older, leaner
/// producer might have registered.
fn leaner_schema() -> String {
    let mut avsc: serde_json::Value =
        serde_json::from_str(IncidentEvent::schema_set().current().json).expect("avsc");
    let fields = avsc["fields"].as_array_mut().expect("fields");
    fields.retain(|f| !matches!(f["name"].as_str(), Some("notes" | "attributes")));
    avsc.to_string()
}

#[tokio::test]
async fn a_compatible_foreign_schema_is_resolved() {
    let registry = client();
    let json = leaner_schema();
    let id = registry
        .register(&unique("foreign-value"), &json)
        .await
        .expect("register");
    let schema = Schema::parse_str(&json).expect("schema");

    let mut event = sample::incident(21, 4);
    event.notes = None;
    event.attributes.clear();
    let Value::Record(fields) = apache_avro::to_value(&event).expect("value") else {
        panic!("records become Value::Record");
    };
    let lean = Value::Record(
        fields
            .into_iter()
            .filter(|(name, _)| name != "notes" && name != "attributes")
            .collect(),
    )
    .resolve(&schema)
    .expect("fits the lean schema");
    let body = GenericDatumWriter::builder(&schema)
        .build()
        .and_then(|w| w.write_value_to_vec(lean))
        .expect("encode");

    let decoder = Decoder::<IncidentEvent>::new(Some(registry));
    let decoded = decoder.decode(&frame(id, &body)).await.expect("resolved");
    assert_eq!(decoded, event, "missing fields take the reader's defaults");
}

#[tokio::test]
async fn an_incompatible_schema_is_rejected_with_the_reason() {
    let registry = client();
    let json = r#"{"type":"record","name":"IncidentEvent","namespace":"org.relec",
        "fields":[{"name":"event_id","type":"long"}]}"#;
    let id = registry
        .register(&unique("wrong-value"), json)
        .await
        .expect("register");
    let decoder = Decoder::<IncidentEvent>::new(Some(registry));
    let err = decoder
        .decode(&frame(id, &[2]))
        .await
        .expect_err("incompatible");
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unknown_schema_id_is_named() {
    let decoder = Decoder::<IncidentEvent>::new(Some(client()));
    let err = decoder
        .decode(&frame(987_654, &[2]))
        .await
        .expect_err("unknown id");
    assert!(matches!(err, Error::Registry { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("987654"), "{err}");
}

#[tokio::test]
async fn an_unreachable_registry_is_retryable() {
    // Port 9 (discard) on loopback: nothing listens there in the test bed.
    let registry =
        RegistryClient::new("http://127.0.0.1:9", None, Duration::from_secs(2)).expect("client");
    let decoder = Decoder::<IncidentEvent>::new(Some(Arc::new(registry)));
    let err = decoder
        .decode(&frame(1, &[2]))
        .await
        .expect_err("unreachable");
    assert!(err.is_retryable(), "{err}");
}

/// A registry that answers every registration with `statuses` in turn (then 200 with id 42),
/// counting the calls: Apicurio, for one, answered a registration in CI with a 500 (two new
/// contents registered at once were given one content id).
async fn scripted_registry(statuses: &'static [u16]) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let answer = move || {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        let status = statuses.get(call).copied().unwrap_or(200);
        let body = match status {
            200 => r#"{"id":42}"#.to_owned(),
            _ => format!(r#"{{"error_code":{status},"message":"scripted failure {call}"}}"#),
        };
        async move { (StatusCode::from_u16(status).expect("status"), body) }
    };
    let app = Router::new().route("/subjects/{subject}/versions", post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn a_registration_the_registry_failed_on_is_tried_again() {
    let (url, calls) = scripted_registry(&[500, 503]).await;
    let registry = RegistryClient::new(&url, None, Duration::from_secs(5)).expect("client");
    let id = registry.register("s-value", "{}").await.expect("third try");
    assert_eq!((id, calls.load(Ordering::SeqCst)), (42, 3));

    let (url, calls) = scripted_registry(&[500; REGISTER_ATTEMPTS as usize]).await;
    let registry = RegistryClient::new(&url, None, Duration::from_secs(5)).expect("client");
    let err = registry
        .register("s-value", "{}")
        .await
        .expect_err("gave up");
    assert!(err.to_string().contains("scripted failure 3"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), REGISTER_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_refused_registration_is_not_tried_again() {
    let (url, calls) = scripted_registry(&[409]).await;
    let registry = RegistryClient::new(&url, None, Duration::from_secs(5)).expect("client");
    let err = registry
        .register("s-value", "{}")
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Registry { status: 409, .. }), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
