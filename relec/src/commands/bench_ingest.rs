//! `relec bench ingest`: events/s through the HTTP ingest API (JSON batches over keep-alive
//! connections, acknowledged by the brokers) against the bare producer sending the same
//! number of events, alternating round by round in one run on the same cluster.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use relec_ingest::simulate::{SimConfig, Simulation};
use relec_ingest::{auth::generate_key, publisher::system_clock};
use relec_plumbing::{
    Config,
    config::AgencyConfig,
    kafka::{Kafka, RecordProducer},
    telemetry::Telemetry,
};
use relec_schemas::IncidentEvent;
use tokio_util::sync::CancellationToken;

/// Rounds of each path, alternating, so both see the same machine; medians are reported.
const ROUNDS: usize = 3;
const COUNTRIES: [&str; 6] = ["AFG", "BGD", "IRN", "IRQ", "PAK", "TUR"];

struct Paths {
    producer: RecordProducer<IncidentEvent>,
    client: reqwest::Client,
    url: String,
    key: String,
    batch: usize,
    concurrency: usize,
}

pub async fn run(
    config: &Config,
    events: u64,
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    // The simulator's realistic stream, long enough for every round of both paths.
    let needed = events as usize * 2 * ROUNDS;
    let stream: Vec<IncidentEvent> = Simulation::new(SimConfig {
        seed,
        start_ms: 1_735_689_600_000, // 2025-01-01
        days: 360,
        scale: (needed as f64 / 250_000.0).max(1.0),
        scenarios: Vec::new(),
        background_casualties: true,
    })
    .events()
    .take(needed)
    .collect();
    anyhow::ensure!(
        stream.len() == needed,
        "the simulator gave {} of {needed} events",
        stream.len()
    );
    let (batch, concurrency) = (batch.max(1), concurrency.max(1));

    let mut bare_config = config.clone();
    bare_config.topics.incidents.name = format!("relec.bench.{run}.bare");
    let kafka = Kafka::connect(&bare_config)?;
    kafka.create_topics(&bare_config.topics).await?;
    let producer = kafka
        .record_producer::<IncidentEvent>("bench", &bare_config.topics.incidents.name)
        .await?;

    let mut ingest_config = config.clone();
    for (suffix, spec) in [
        ("ingest", &mut ingest_config.topics.incidents),
        ("rejected", &mut ingest_config.topics.incidents_rejected),
        ("alerts", &mut ingest_config.topics.alerts),
    ] {
        spec.name = format!("relec.bench.{run}.{suffix}");
    }
    let (key, hash) = generate_key();
    ingest_config.ingest.max_batch = batch;
    ingest_config.ingest.agencies = vec![AgencyConfig {
        id: "BENCH".into(),
        countries: COUNTRIES.iter().map(|c| c.to_string()).collect(),
        key_sha256: hash,
    }];
    let ingest_kafka = Kafka::connect_like(&kafka, &ingest_config);
    ingest_kafka.create_topics(&ingest_config.topics).await?;
    let api = relec_ingest::build(
        &ingest_config,
        &ingest_kafka,
        &Telemetry::new(),
        system_clock(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/events", listener.local_addr()?);
    let stop = CancellationToken::new();
    tokio::spawn(relec_ingest::serve(listener, api, stop.clone()));
    let _stop = stop.drop_guard();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let paths = Paths {
        producer,
        client,
        url,
        key,
        batch,
        concurrency,
    };

    let (mut bare, mut ingest, mut latencies) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS as u64 {
        let slice = |path: u64| {
            let first = ((round * 2 + path) * events) as usize;
            &stream[first..first + events as usize]
        };
        bare.push(paths.bare(slice(0)).await?);
        let (secs, mut lat) = paths.ingest(slice(1)).await?;
        ingest.push(secs);
        latencies.append(&mut lat);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (bare_secs, ingest_secs) = (median(&mut bare), median(&mut ingest));
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] * 1000.0;
    let (bare_rate, ingest_rate) = (events as f64 / bare_secs, events as f64 / ingest_secs);

    println!(
        "ingest vs bare producer on {}: {events} events per round, {ROUNDS} rounds each, \
         batches of {batch}, {concurrency} in flight",
        kafka.bootstrap_servers()
    );
    println!("{:<22} {:>12} {:>16}", "path", "events/s", "median seconds");
    println!(
        "{:<22} {:>12.0} {:>16.2}",
        "bare producer", bare_rate, bare_secs
    );
    println!(
        "{:<22} {:>12.0} {:>16.2}",
        "HTTP ingest (JSON)", ingest_rate, ingest_secs
    );
    println!(
        "ratio ingest/bare: {:.2} (target >= 0.5)",
        ingest_rate / bare_rate
    );
    println!(
        "ingest request latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(ExitCode::SUCCESS)
}

impl Paths {
    /// Seconds for the bare producer to have every event acknowledged.
    async fn bare(&self, events: &[IncidentEvent]) -> anyhow::Result<f64> {
        bare_produce(&self.producer, events, self.batch, self.concurrency).await
    }

    /// Seconds for the API to accept every event, and each request's latency.
    async fn ingest(&self, events: &[IncidentEvent]) -> anyhow::Result<(f64, Vec<f64>)> {
        let bodies: Vec<Vec<u8>> = events
            .chunks(self.batch)
            .map(serde_json::to_vec)
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        let latencies = stream::iter(bodies)
            .map(|body| async move {
                let sent = Instant::now();
                let response = self
                    .client
                    .post(&self.url)
                    .bearer_auth(&self.key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == 200,
                    "ingest answered {}",
                    response.status()
                );
                response.bytes().await?;
                Ok(sent.elapsed().as_secs_f64())
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<anyhow::Result<f64>>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<f64>>>()?;
        Ok((started.elapsed().as_secs_f64(), latencies))
    }
}

/// Seconds for the bare producer to have every one of `events` acknowledged, keyed by
/// route, `concurrency` batches of `batch` in flight.
pub(super) async fn bare_produce(
    producer: &RecordProducer<IncidentEvent>,
    events: &[IncidentEvent],
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let failures: usize = stream::iter(events.chunks(batch.max(1)))
        .map(|chunk| producer.send_all(chunk.iter().map(|e| (e.route.as_str(), e))))
        .buffer_unordered(concurrency.max(1))
        .map(|results| results.iter().filter(|r| r.is_err()).count())
        .fold(0, |a, b| async move { a + b })
        .await;
    anyhow::ensure!(failures == 0, "{failures} bare sends failed");
    Ok(started.elapsed().as_secs_f64())
}
