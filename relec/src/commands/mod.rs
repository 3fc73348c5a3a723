//! Runs the chosen command with the loaded config.

mod backtest;
mod bench;
mod bench_e2e;
mod bench_ingest;
mod bench_notify;
mod bench_rules;
mod bench_stage;
mod config;
mod detect;
mod ingest;
pub(crate) mod notify;
mod publish;
mod rules;
mod run;
mod simulate;
mod topics;

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use relec_plumbing::{
    Config,
    config::TelemetryConfig,
    kafka::Kafka,
    shutdown,
    telemetry::{self, Telemetry},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, Global, RulesCommand};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args, &cli.global).await,
        // Checking a file must not need a valid config of its own.
        Command::Config(command) => config::run(command),
        Command::Topics(command) => {
            let config = load(&cli.global)?;
            telemetry::init_logs(&config.telemetry)?;
            topics::run(command, &config).await
        }
        Command::Ingest(args) => {
            let config = load(&cli.global)?;
            ingest::run(args.command, config).await
        }
        Command::Publish(args) => {
            let config = load(&cli.global)?;
            telemetry::init_logs(&config.telemetry)?;
            publish::run(args, &config).await
        }
        Command::Rules(args) => match args.command {
            // The horizon and limits the stage would run them with come from the config.
            Some(RulesCommand::Check { dir }) => rules::check(&dir, &load(&cli.global)?),
            // Fixtures carry their own settings: they pass or fail the same anywhere.
            Some(RulesCommand::Test { dir, fixtures }) => rules::test(&dir, fixtures.as_deref()),
            Some(RulesCommand::Backtest(args)) => {
                let config = load(&cli.global)?;
                telemetry::init_logs(&config.telemetry)?;
                backtest::run(args, &config).await
            }
            None => rules::run(load(&cli.global)?).await,
        },
        Command::Notify(args) => notify::run(args.command, load(&cli.global)?).await,
        Command::Simulate(args) => {
            let config = load(&cli.global)?;
            telemetry::init_logs(&config.telemetry)?;
            simulate::run(args, &config).await
        }
        // A detector over a file needs no config, brokers or telemetry.
        Command::Detect(args) => detect::run(&args),
        Command::Bench(command) => {
            let config = load(&cli.global)?;
            bench::run(command, &config).await
        }
    }
}

/// The config file (or defaults) with environment and command-line overrides.
fn load(global: &Global) -> anyhow::Result<Config> {
    let mut config = match &global.config {
        Some(path) => Config::load(path)?,
        None => Config::from_env()?,
    };
    if let Some(brokers) = &global.brokers {
        config.kafka.brokers = brokers.clone();
    }
    Ok(config)
}

/// A stage command's stage alone in its process: logs first (the stage reports what it
/// refuses while it builds), then the cluster, then the stage with its telemetry on
/// `telemetry.listen`, until SIGINT or SIGTERM.
async fn alone<S: StartedStage>(
    config: &Config,
    start: impl AsyncFnOnce(&Config, &Kafka, SocketAddr, CancellationToken) -> anyhow::Result<S>,
) -> anyhow::Result<ExitCode> {
    telemetry::init_logs(&config.telemetry)?;
    let kafka = Kafka::connect(config)?;
    let stage = start(
        config,
        &kafka,
        config.telemetry.listen,
        shutdown::on_signals(),
    )
    .await?;
    stage.run().await?;
    Ok(ExitCode::SUCCESS)
}

/// A stage built and listening; `run` runs it until its shutdown token is cancelled.
pub(crate) trait StartedStage {
    async fn run(self) -> anyhow::Result<()>;
}

/// What every long-running stage shares: its telemetry listener (metrics, health, the
/// stage's admin routes) and the shutdown token its loops select on.
pub struct Stage {
    pub telemetry: Telemetry,
    pub shutdown: CancellationToken,
    /// Where the telemetry listener listens (the port given, or the one picked for 0).
    pub listen: SocketAddr,
    tasks: JoinSet<()>,
    drain_deadline: Duration,
}

impl Stage {
    /// Serves `telemetry` and the stage's `admin` routes on `listen` until `shutdown`.
    pub async fn start(
        config: &Config,
        telemetry: Telemetry,
        admin: axum::Router,
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let listener = telemetry::bind(&TelemetryConfig {
            listen,
            ..config.telemetry.clone()
        })
        .await?;
        let listen = listener.local_addr()?;
        tracing::info!(%listen, "serving /metrics, /healthz, /readyz");
        let mut tasks = JoinSet::new();
        let (t, s) = (telemetry.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(e) = telemetry::serve(listener, t, admin, s).await {
                tracing::error!(error = %e, "telemetry listener failed");
            }
        });
        Ok(Self {
            telemetry,
            shutdown,
            listen,
            tasks,
            drain_deadline: config.shutdown.drain_deadline,
        })
    }

    /// Stops the telemetry listener and waits for it, at most the drain deadline.
    pub async fn stop(self) {
        self.shutdown.cancel();
        shutdown::drain(self.tasks, self.drain_deadline).await;
    }
}
