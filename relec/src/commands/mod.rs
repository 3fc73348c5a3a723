//! Runs the chosen command with the loaded config.

mod backtest;
mod bench;
mod bench_ingest;
mod bench_rules;
mod bench_stage;
mod config;
mod detect;
mod ingest;
pub(crate) mod notify;
mod publish;
mod rules;
mod simulate;
mod topics;

use std::process::ExitCode;

use std::time::Duration;

use relec_plumbing::{
    Config, shutdown,
    telemetry::{self, Telemetry},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, Global, RulesCommand};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
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

/// What every long-running stage shares: logs, the telemetry listener, and the root
/// shutdown token that SIGINT and SIGTERM cancel.
pub struct Stage {
    pub telemetry: Telemetry,
    pub shutdown: CancellationToken,
    tasks: JoinSet<()>,
    drain_deadline: Duration,
}

impl Stage {
    /// Starts logs and the telemetry listener, which also serves the stage's `admin` routes.
    pub async fn start(config: &Config, admin: axum::Router) -> anyhow::Result<Self> {
        telemetry::init_logs(&config.telemetry)?;
        Self::start_with(config, Telemetry::new(), admin).await
    }

    /// [`Stage::start`] for a stage whose metrics are registered already.
    pub async fn start_with(
        config: &Config,
        telemetry: Telemetry,
        admin: axum::Router,
    ) -> anyhow::Result<Self> {
        let shutdown = shutdown::on_signals();
        let listener = telemetry::bind(&config.telemetry).await?;
        tracing::info!(listen = %config.telemetry.listen, "serving /metrics, /healthz, /readyz");
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
