//! Runs the chosen command with the loaded config.

mod bench;
mod config;
mod topics;

use std::process::ExitCode;

use relec_plumbing::{Config, telemetry};

use crate::cli::{Cli, Command, Global};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // Checking a file must not need a valid config of its own.
        Command::Config(command) => config::run(command),
        Command::Topics(command) => {
            let config = load(&cli.global)?;
            telemetry::init_logs(&config.telemetry)?;
            topics::run(command, &config).await
        }
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
