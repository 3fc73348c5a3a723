//! The telemetry listener over real TCP: metrics a Prometheus text-format parser accepts,
//! liveness, and readiness that follows the components.

use relec_plumbing::telemetry::{self, Telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn serves_parseable_metrics_and_health() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t = Telemetry::new();
    let events = prometheus::IntCounterVec::new(
        prometheus::Opts::new("relec_test_events_total", "Events seen by the test."),
        &["outcome"],
    )
    .expect("metric");
    t.registry
        .register(Box::new(events.clone()))
        .expect("register");
    events.with_label_values(&["accepted"]).inc_by(3);
    let ingest = t.health.component("ingest");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(telemetry::serve(
        listener,
        t,
        axum::Router::new(),
        shutdown.clone(),
    ));

    let base = format!("http://{addr}");
    let get = |path: &str| reqwest::get(format!("{base}{path}"));

    let body = get("/metrics")
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == "relec_test_events_total")
        .expect("counter exposed");
    assert!(matches!(sample.value, prometheus_parse::Value::Counter(v) if v == 3.0));
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "relec_build_info")
    );

    assert_eq!(get("/healthz").await.expect("get").status(), 200);
    let not_ready = get("/readyz").await.expect("get");
    assert_eq!(not_ready.status(), 503);
    assert!(not_ready.text().await.expect("body").contains("ingest"));
    ingest.set(true);
    assert_eq!(get("/readyz").await.expect("get").status(), 200);

    shutdown.cancel();
    server.await.expect("join").expect("clean stop");
}
