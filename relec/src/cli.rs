//! The command line: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// relec-ews: early warnings on irregular migration, migrant smuggling and human
/// trafficking for the RELEC network.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (TOML); without it, the defaults with RELEC_... environment overrides.
    #[arg(long, short, global = true, env = "RELEC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap brokers (host:port,...) or "embedded"; overrides kafka.brokers.
    #[arg(long, global = true)]
    pub brokers: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run ingest, rules and notifier in one process. With no --config and no --brokers:
    /// on the embedded cluster, with the rule pack, the simulator's demo scenario published
    /// through the ingest API, and the notifications written to ./outbox.
    Run(RunArgs),
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create or show the pipeline's Kafka topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Run the ingest stage: the HTTP API agencies publish through.
    Ingest(IngestArgs),
    /// Publish a CSV or JSON Lines file of incident events, as an agency.
    Publish(PublishArgs),
    /// Generate a realistic RELEC incident stream (seeded, deterministic) to a file, the
    /// ingest API, or Kafka.
    Simulate(SimulateArgs),
    /// Run the rules stage: evaluate the rules directory over the incidents and write alert
    /// transitions, exactly once (or check, test and backtest rules: `relec rules check`,
    /// `relec rules test`, `relec rules backtest`).
    Rules(RulesArgs),
    /// Run the notifier stage: route alert transitions to the subscribers and deliver them
    /// by email and webhook, at least once (or manage silences and dead letters:
    /// `relec notify silence`, `relec notify dlq`).
    Notify(crate::commands::notify::NotifyArgs),
    /// Run a statistical aberration detector (EARS, CUSUM, EWMA, Farrington) over a CSV of
    /// counts, as R's surveillance package would, and print its bounds and alarms as CSV.
    Detect(Box<DetectArgs>),
    /// Measure parts of relec on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write emails (.eml) and webhook bodies here instead of sending them [default on
    /// the embedded cluster: ./outbox; else notifier.outbox, and without it they are sent].
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// Publish the simulator's demo scenario through the ingest API [default on the
    /// embedded cluster].
    #[arg(long, conflicts_with = "no_demo")]
    pub demo: bool,
    /// Do not publish the demo: only what agencies publish arrives.
    #[arg(long)]
    pub no_demo: bool,
    /// Days of the demo published per second (by report time); 0 publishes as fast as
    /// ingest takes it.
    #[arg(long, default_value_t = 4.0)]
    pub speed: f64,
    /// Stop after this long, e.g. 90s or 10m.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<humantime::Duration>,
    /// Stop once the demo is published and nothing has moved for a few seconds (no
    /// events, alert transitions or deliveries; nothing waiting).
    #[arg(long)]
    pub until_idle: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Report every problem in FILE with its key path; exit 1 if there is any.
    Check {
        file: PathBuf,
        /// Also print the effective config (defaults and environment applied, secrets
        /// redacted).
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create the configured topics that do not exist; existing ones are left alone.
    Create,
    /// Show the configured topics as the cluster has them.
    Describe,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encode and decode rates of IncidentEvent on one core, in each wire format.
    Codec {
        /// Distinct sample records cycled through.
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        /// Seconds to spend on each measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Confluent-compatible schema registry for the confluent format (else the
        /// config's [schema_registry]; without either, that format is skipped).
        #[arg(long)]
        registry: Option<String>,
    },
    /// The rules engine without Kafka: events/s through one partition's processor with the
    /// rule pack over the demo stream, and a rhai rule's cost per evaluation against the
    /// same condition as native Rust.
    Rules {
        /// The rules directory.
        #[arg(long, default_value = "rules/pack")]
        dir: PathBuf,
        /// Evaluations for the rhai-against-native comparison; 0 skips it.
        #[arg(long, default_value_t = 200_000)]
        evaluations: u64,
    },
    /// HTTP ingest rate against the bare producer rate of the same events, side by side on
    /// the configured cluster (use --brokers for a real one).
    Ingest {
        /// Events per measurement.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Events per request (and per producer batch).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Requests (and producer batches) in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Incidents/s through the rules stage with the whole rule pack against a bare consumer
    /// decoding the same topic, side by side on the configured cluster (use --brokers for a
    /// real one); then the figures of `bench rules`.
    Stage {
        /// The rules directory.
        #[arg(long, default_value = "rules/pack")]
        dir: PathBuf,
        /// Days of the demo stream (the demo has 120, about 95,000 incidents).
        #[arg(long)]
        days: Option<u32>,
        /// Multiplies the demo stream's volume.
        #[arg(long)]
        scale: Option<f64>,
        /// Partitions of the incidents, repartition and changelog topics.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Rounds of each path, alternating (bare, stage, bare, stage, ...); the medians
        /// are compared.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The stage's commit interval, instead of the config's `rules.commit_interval`.
        #[arg(long)]
        commit_interval: Option<humantime::Duration>,
        /// Evaluations for the rhai-against-native comparison; 0 skips `bench rules`.
        #[arg(long, default_value_t = 200_000)]
        evaluations: u64,
    },
    /// The whole pipeline on a real cluster (--brokers), each stage a child process:
    /// simulator to ingest API to rules to notifier to a webhook receiver. Prints the
    /// sustained rate, event-to-webhook latency, each stage's CPU and peak memory, and the
    /// bare producer and consumer rates of the same broker, against the targets.
    E2e(E2eBenchArgs),
    /// Webhook deliveries/s of the notifier stage to a local receiver that verifies every
    /// signature, and the latency from alert to delivery at a steady moderate rate
    /// (group_wait 0), on the configured cluster (use --brokers for a real one).
    Notify(NotifyBenchArgs),
}

/// What `relec bench e2e` measures, and how much of it.
#[derive(Debug, Clone, Args)]
pub struct E2eBenchArgs {
    /// The rules directory.
    #[arg(long, default_value = "rules/pack")]
    pub dir: PathBuf,
    /// Days of simulated incidents published at --rate (the rules stage's state).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Days after them published while the rules stage is down, then read by it at
    /// full speed (its own rate).
    #[arg(long, default_value_t = 60)]
    pub backlog_days: u32,
    /// Multiplies the simulator's volume (1.0 is about 800 incidents a day).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Events per second offered to the ingest API.
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
    /// Events per request while paced.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Partitions of the incidents, repartition and changelog topics.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// The longest any one phase may take, in seconds.
    #[arg(long, default_value_t = 600)]
    pub max_seconds: u64,
    /// Also write the figures here, as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `relec bench notify` measures, and how much of it.
#[derive(Debug, Clone, Args)]
pub struct NotifyBenchArgs {
    /// Alerts published at once for the throughput phase, each its own delivery.
    #[arg(long, default_value_t = 10_000)]
    pub alerts: u64,
    /// Alerts per second in the latency phase.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds the latency phase publishes for.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Rounds, each with a fresh stage, topics and group; ranges are reported.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Attempts in flight at once to the receiver, instead of the config's
    /// `notifier.endpoint_concurrency`.
    #[arg(long)]
    pub endpoint_concurrency: Option<usize>,
    /// Also print the figures as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(subcommand)]
    pub command: Option<IngestCommand>,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Make a new API key for an agency and print the config entry that holds its hash.
    Keygen {
        /// Agency id, as it will appear in reporting_agency.
        #[arg(long)]
        agency: String,
        /// ISO 3166-1 alpha-3 codes it may report for.
        #[arg(long = "country", required = true)]
        countries: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The file: .csv, or .jsonl / .ndjson / .json (one event per line).
    pub file: PathBuf,
    /// The agency's API key; the same country binding applies as over HTTP.
    #[arg(long, env = "RELEC_AGENCY_KEY", hide_env_values = true)]
    pub key: String,
    /// Events per request to the brokers.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Start from the demo scenario (120 days from 2025-09-01 with one of each scenario).
    #[arg(long)]
    pub demo: bool,
    /// The same seed and settings give the same events, ids included.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// First day (UTC), YYYY-MM-DD; default 2025-09-01.
    #[arg(long)]
    pub start: Option<String>,
    /// Days to simulate.
    #[arg(long)]
    pub days: Option<u32>,
    /// Multiplies every route's volume (1.0 is about 800 incidents a day).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Leave out the rare deaths and missing persons of ordinary traffic, so only a
    /// casualty scenario produces any.
    #[arg(long)]
    pub no_background_casualties: bool,
    /// A scenario to inject, e.g. spike:AFG-IRN-NIMROZ@day=60,days=7,factor=4 (repeatable;
    /// the README lists every kind).
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Write to this file: .jsonl or .csv; "-" is JSON Lines on standard output.
    #[arg(long, conflicts_with_all = ["url", "kafka"])]
    pub out: Option<PathBuf>,
    /// POST to this ingest API (e.g. http://127.0.0.1:8080/v1/events) with --key.
    #[arg(long, requires = "key", conflicts_with = "kafka")]
    pub url: Option<String>,
    /// The agency key for --url; it must be bound to every simulated country.
    #[arg(long, env = "RELEC_AGENCY_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Produce straight to the incidents topic of the configured cluster.
    #[arg(long)]
    pub kafka: bool,
    /// Events per second at most; unlimited if unset.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Events per request or producer batch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: Option<RulesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Compile and lint every rule in DIR (default rules/pack): syntax, metadata, calls to
    /// unknown functions, fields, dimensions, and windows that do not parse or reach past
    /// rules.horizon; report every problem as file:line:column, and exit 1 if there is any.
    Check {
        #[arg(default_value = "rules/pack")]
        dir: PathBuf,
    },
    /// Run the fixture cases of the rules in DIR (default rules/pack): events in, expected
    /// alert transitions out, on event time alone; print a diff for each failing case, and
    /// exit 1 if any fails.
    Test {
        #[arg(default_value = "rules/pack")]
        dir: PathBuf,
        /// The fixture files (*.toml); default DIR/tests.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Replay past incidents from a file or a topic through the rules at full speed and
    /// show the alert transitions that would have fired, and what each rule cost.
    Backtest(BacktestArgs),
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The rules directory.
    #[arg(long, default_value = "rules/pack")]
    pub rules: PathBuf,
    /// A file of incidents as `relec publish` reads it: .jsonl / .ndjson / .json or .csv.
    #[arg(long, required_unless_present = "topic", conflicts_with = "topic")]
    pub input: Option<PathBuf>,
    /// A topic of the configured cluster, read from its beginning to its current end
    /// (either wire format; no offsets are committed).
    #[arg(long)]
    pub topic: Option<String>,
    /// First report day (UTC, YYYY-MM-DD) whose alerts are shown; earlier events still
    /// build the baselines.
    #[arg(long)]
    pub from: Option<String>,
    /// Last report day (UTC, YYYY-MM-DD) replayed.
    #[arg(long)]
    pub to: Option<String>,
    /// How the transitions are printed.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// Aligned columns for people.
    Table,
    /// CSV with a header on standard output; the summary goes to standard error.
    Csv,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// ears-c1, ears-c2, ears-c3, cusum, ewma, farrington or farrington-flexible.
    pub method: String,
    /// CSV with a header and a `count` column, oldest row first; an optional `t` column is
    /// copied to the output as each row's label. "-" reads standard input.
    #[arg(long)]
    pub input: PathBuf,
    #[command(flatten)]
    pub params: DetectParams,
}

/// The detectors' parameters, named after the surveillance package's control names; each
/// defaults to the package's default for the method, and one that the method does not take
/// is an error.
#[derive(Debug, Args)]
pub struct DetectParams {
    /// Time points to evaluate, FROM:TO, 1-based row positions (default: every point with
    /// enough history before it; for cusum and ewma the values before FROM are the
    /// reference period).
    #[arg(long, value_name = "FROM:TO")]
    pub range: Option<String>,
    /// EARS: points in the moving baseline [7].
    #[arg(long)]
    pub baseline: Option<String>,
    /// Level: EARS [0.001, C3 0.025], Farrington [0.05]; CUSUM pearsonNegBin dispersion [0.1].
    #[arg(long)]
    pub alpha: Option<String>,
    /// EARS: floor for the baseline standard deviation [0].
    #[arg(long)]
    pub min_sigma: Option<String>,
    /// CUSUM: reference value [1.04].
    #[arg(long)]
    pub k: Option<String>,
    /// CUSUM: decision interval [2.26].
    #[arg(long)]
    pub h: Option<String>,
    /// CUSUM: in-control mean [the mean of the values before the range].
    #[arg(long)]
    pub m: Option<String>,
    /// CUSUM: standard, rossi, anscombe, anscombe2nd, pearsonNegBin or none [standard].
    #[arg(long)]
    pub trans: Option<String>,
    /// EWMA: weight of the newest count [0.2].
    #[arg(long)]
    pub lambda: Option<String>,
    /// EWMA: control limit width in standard deviations [3].
    #[arg(long = "l", visible_alias = "limit")]
    pub l: Option<String>,
    /// Farrington: years back [5].
    #[arg(long)]
    pub b: Option<String>,
    /// Farrington: half-width of each year's window [3].
    #[arg(long)]
    pub w: Option<String>,
    /// Farrington: points per year, the series' frequency [52].
    #[arg(long)]
    pub period: Option<String>,
    /// Farrington-flexible: seasonal blocks per year [1].
    #[arg(long)]
    pub no_periods: Option<String>,
    /// Farrington-flexible: recent points left out of the baseline [w].
    #[arg(long)]
    pub past_weeks_not_included: Option<String>,
    /// Farrington-flexible: Anscombe residuals above this are down-weighted [2.58].
    #[arg(long)]
    pub weights_threshold: Option<String>,
    /// Farrington-flexible: a trend is kept when its p-value is below this [0.05].
    #[arg(long)]
    pub p_threshold_trend: Option<String>,
    /// Farrington-flexible: delta, nbPlugin or muan [delta].
    #[arg(long)]
    pub threshold_method: Option<String>,
    /// Farrington: power transformation, 2/3, 1/2 or none [2/3].
    #[arg(long)]
    pub powertrans: Option<String>,
    /// Farrington: no alarm unless CASES cases in the last PERIOD points [5,4].
    #[arg(long, value_name = "CASES,PERIOD")]
    pub limit54: Option<String>,
    /// Farrington: reweight outlying baseline points, true or false [true].
    #[arg(long)]
    pub reweight: Option<String>,
    /// Farrington: fit a linear trend (kept only if significant), true or false [true].
    #[arg(long)]
    pub trend: Option<String>,
}

impl DetectParams {
    /// The flags given, by name without dashes, for [`relec_detect::Detector::from_flags`].
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        [
            ("range", &self.range),
            ("baseline", &self.baseline),
            ("alpha", &self.alpha),
            ("min-sigma", &self.min_sigma),
            ("k", &self.k),
            ("h", &self.h),
            ("m", &self.m),
            ("trans", &self.trans),
            ("lambda", &self.lambda),
            ("l", &self.l),
            ("b", &self.b),
            ("w", &self.w),
            ("period", &self.period),
            ("no-periods", &self.no_periods),
            ("past-weeks-not-included", &self.past_weeks_not_included),
            ("weights-threshold", &self.weights_threshold),
            ("p-threshold-trend", &self.p_threshold_trend),
            ("threshold-method", &self.threshold_method),
            ("powertrans", &self.powertrans),
            ("limit54", &self.limit54),
            ("reweight", &self.reweight),
            ("trend", &self.trend),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}
