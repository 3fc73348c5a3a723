//! `relec simulate`: the simulator's incident stream to a file (JSON Lines or CSV), to the
//! ingest API, or straight to Kafka, as fast as possible or at a chosen rate.

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use relec_ingest::{
    file::{self, Format},
    simulate::{Scenario, SimConfig, Simulation, demo},
};
use relec_plumbing::{Config, kafka::Kafka};
use relec_schemas::IncidentEvent;

use crate::cli::SimulateArgs;

/// 2025-09-01T00:00:00Z, the default first day.
const DEFAULT_START_MS: i64 = 1_756_684_800_000;

pub async fn run(args: SimulateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let sim = Simulation::new(sim_config(&args)?);
    let mut pace = Pace::new(args.rate);
    let batch = args.batch.max(1);
    let mut events = sim.events().peekable();
    let mut sink = Sink::open(&args, config).await?;
    let started = Instant::now();
    let mut sent = 0u64;
    while events.peek().is_some() {
        let chunk: Vec<IncidentEvent> = events.by_ref().take(batch).collect();
        pace.wait(chunk.len()).await;
        sink.send(&chunk).await?;
        sent += chunk.len() as u64;
    }
    sink.finish()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {sent} events in {secs:.1} s ({:.0}/s)",
        sent as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn sim_config(args: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let mut c = if args.demo {
        demo()
    } else {
        SimConfig {
            seed: args.seed,
            start_ms: DEFAULT_START_MS,
            days: 28,
            scale: 1.0,
            scenarios: Vec::new(),
            background_casualties: true,
        }
    };
    if !args.demo || args.seed != 2026 {
        c.seed = args.seed;
    }
    if let Some(start) = &args.start {
        let t = humantime_date(start)
            .with_context(|| format!("--start {start:?} is not YYYY-MM-DD"))?;
        c.start_ms = t;
    }
    if let Some(days) = args.days {
        c.days = days;
    }
    if let Some(scale) = args.scale {
        c.scale = scale;
    }
    if args.no_background_casualties {
        c.background_casualties = false;
    }
    for s in &args.scenarios {
        c.scenarios
            .push(s.parse::<Scenario>().map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    if let Err(errors) = c.validate() {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::bail!("invalid scenarios:\n  {}", all.join("\n  "));
    }
    Ok(c)
}

fn humantime_date(date: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// Keeps the output at most `rate` events per second.
struct Pace {
    rate: Option<f64>,
    started: Instant,
    sent: usize,
}

impl Pace {
    fn new(rate: Option<f64>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0.0),
            started: Instant::now(),
            sent: 0,
        }
    }

    async fn wait(&mut self, n: usize) {
        if let Some(rate) = self.rate {
            let due = self.started + Duration::from_secs_f64(self.sent as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        self.sent += n;
    }
}

enum Sink {
    File {
        out: Box<dyn Write>,
        format: Format,
    },
    Http {
        client: reqwest::Client,
        url: String,
        key: String,
    },
    Kafka(relec_plumbing::kafka::RecordProducer<IncidentEvent>),
}

impl Sink {
    async fn open(args: &SimulateArgs, config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &args.url {
            let key = args
                .key
                .clone()
                .context("--url needs --key (or RELEC_AGENCY_KEY)")?;
            return Ok(Sink::Http {
                client: reqwest::Client::new(),
                url: url.clone(),
                key,
            });
        }
        if args.kafka {
            let kafka = Kafka::connect(config)?;
            if kafka.is_embedded() {
                anyhow::bail!(
                    "--kafka needs a real cluster (--brokers); the embedded one ends with this process"
                );
            }
            return Ok(Sink::Kafka(
                kafka
                    .record_producer("simulate", &config.topics.incidents.name)
                    .await?,
            ));
        }
        let path = args
            .out
            .clone()
            .context("say where the events go: --out FILE, --url URL or --kafka")?;
        if path.as_os_str() == "-" {
            return Ok(Sink::File {
                out: Box::new(std::io::BufWriter::new(std::io::stdout())),
                format: Format::JsonLines,
            });
        }
        let format =
            Format::from_path(&path).context("--out must end in .jsonl, .ndjson, .json or .csv")?;
        let file = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
        let mut out: Box<dyn Write> = Box::new(std::io::BufWriter::new(file));
        if format == Format::Csv {
            writeln!(out, "{}", file::CSV_COLUMNS.join(","))?;
        }
        Ok(Sink::File { out, format })
    }

    async fn send(&mut self, events: &[IncidentEvent]) -> anyhow::Result<()> {
        match self {
            Sink::File { out, format } => {
                for e in events {
                    match format {
                        Format::JsonLines => serde_json::to_writer(&mut *out, e)?,
                        Format::Csv => out.write_all(file::csv_row(e).as_bytes())?,
                    }
                    writeln!(out)?;
                }
            }
            Sink::Http { client, url, key } => post(client, url, key, events).await?,
            Sink::Kafka(producer) => {
                for result in producer
                    .send_all(events.iter().map(|e| (e.route.as_str(), e)))
                    .await
                {
                    result?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Sink::File { mut out, .. } = self {
            out.flush()?;
        }
        Ok(())
    }
}

/// POSTs `events` to the ingest API at `url` as the agency of `key`, waiting out 503
/// answers as their Retry-After says; any other answer but 200 is an error.
pub(super) async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    events: &[IncidentEvent],
) -> anyhow::Result<()> {
    loop {
        let response = client
            .post(url)
            .bearer_auth(key)
            .json(events)
            .send()
            .await?;
        match response.status().as_u16() {
            200 => return Ok(()),
            503 => {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(5);
                tracing::warn!(wait, "ingest unavailable; retrying the same batch");
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            status => anyhow::bail!(
                "ingest answered {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}
