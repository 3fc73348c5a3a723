//! `relec bench codec`: how many IncidentEvents one core encodes and decodes per second in
//! each wire format, measured side by side in one run.

use std::{
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use relec_plumbing::Config;
use relec_schemas::{Decoder, Encoder, IncidentEvent, RegistryClient, sample};

use crate::cli::BenchCommand;

/// Subject the benchmark registers its schema under, apart from any real topic's.
const BENCH_SUBJECT: &str = "relec.bench-value";

pub async fn run(command: BenchCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let (records, seconds, registry) = match command {
        BenchCommand::Codec {
            records,
            seconds,
            registry,
        } => (records, seconds, registry),
        BenchCommand::Rules { dir, evaluations } => {
            return super::bench_rules::run(&dir, evaluations);
        }
        BenchCommand::Ingest {
            events,
            batch,
            concurrency,
        } => {
            return super::bench_ingest::run(config, events, batch, concurrency).await;
        }
        BenchCommand::Stage {
            dir,
            days,
            scale,
            partitions,
            rounds,
            commit_interval,
            evaluations,
        } => {
            let options = super::bench_stage::Options {
                dir,
                days,
                scale,
                partitions,
                rounds,
                commit_interval: commit_interval.map(Into::into),
                evaluations,
            };
            return super::bench_stage::run(config, options).await;
        }
        BenchCommand::E2e(args) => {
            return super::bench_e2e::run(config, &args).await;
        }
        BenchCommand::Notify(args) => {
            return super::bench_notify::run(config, &args).await;
        }
    };
    let events: Vec<IncidentEvent> = (0..records.max(1))
        .map(|i| sample::incident(42, i))
        .collect();
    let budget = Duration::from_secs_f64(seconds);
    let registry_url = registry.or_else(|| config.schema_registry.as_ref().map(|r| r.url.clone()));

    let mut formats = vec![("single-object", Encoder::single_object(), None)];
    if let Some(url) = registry_url {
        let client = Arc::new(RegistryClient::new(&url, None, Duration::from_secs(10))?);
        let encoder = Encoder::confluent(&client, BENCH_SUBJECT).await?;
        formats.push(("confluent", encoder, Some(client)));
    } else {
        println!("(confluent format skipped: no --registry and no [schema_registry])");
    }

    println!(
        "IncidentEvent codec, one core, {} distinct records, {:.1} s per measurement",
        events.len(),
        seconds
    );
    println!(
        "{:<14} {:>14} {:>14} {:>12}",
        "format", "encode/s", "decode/s", "bytes/record"
    );
    for (name, encoder, registry) in formats {
        let decoder = Decoder::<IncidentEvent>::new(registry);
        let encoded: Vec<Vec<u8>> = events
            .iter()
            .map(|e| encoder.encode(e))
            .collect::<Result<_, _>>()?;
        // Warm the decoder's schema cache so the measurement is of decoding, not HTTP.
        decoder.decode(&encoded[0]).await?;
        let mut buffer = Vec::with_capacity(512);
        let encode_rate = measure(budget, events.len(), |i| {
            buffer.clear();
            encoder
                .encode_into(&events[i], &mut buffer)
                .map(|()| buffer.len())
        })?;
        let decode_rate = measure_async(budget, &encoded, &decoder).await?;
        let bytes = encoded.iter().map(Vec::len).sum::<usize>() as f64 / encoded.len() as f64;
        println!("{name:<14} {encode_rate:>14.0} {decode_rate:>14.0} {bytes:>12.1}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Calls `op` over the records, round after round, until `budget` has passed; records/s.
fn measure<E>(
    budget: Duration,
    n: usize,
    mut op: impl FnMut(usize) -> Result<usize, E>,
) -> Result<f64, E> {
    let start = Instant::now();
    let mut done = 0usize;
    let mut sink = 0usize;
    while start.elapsed() < budget {
        for i in 0..n {
            sink = sink.wrapping_add(op(i)?);
        }
        done += n;
    }
    std::hint::black_box(sink);
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

async fn measure_async(
    budget: Duration,
    encoded: &[Vec<u8>],
    decoder: &Decoder<IncidentEvent>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < budget {
        for bytes in encoded {
            std::hint::black_box(decoder.decode(bytes).await?);
        }
        done += encoded.len();
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}
