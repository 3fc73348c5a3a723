//! `relec rules`: the rules stage with its telemetry and admin listener, until SIGINT or
//! SIGTERM; `relec rules check`: what an analyst runs before a rule goes live.

use std::process::ExitCode;

use relec_plumbing::{
    Config,
    kafka::Kafka,
    telemetry::{self, Telemetry},
};
use relec_rules::{
    rule::load_dir,
    sandbox::{Limits, engine},
    stage::RulesStage,
};

use super::Stage;
use crate::cli::RulesCommand;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    // Logs are on before the stage loads rules and reports what it refused.
    telemetry::init_logs(&config.telemetry)?;
    let telemetry = Telemetry::new();
    let kafka = Kafka::connect(&config)?;
    let rules = RulesStage::build(&config, &kafka, &telemetry.registry).await?;
    let stage = Stage::start_with(&config, telemetry, rules.admin()).await?;
    let ready = stage.telemetry.health.component("rules");
    tracing::info!(brokers = kafka.bootstrap_servers(), dir = %config.rules.dir.display(), "rules stage running");
    ready.set(true);
    let result = rules.run(stage.shutdown.clone()).await;
    stage.stop().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

pub fn check(command: RulesCommand) -> anyhow::Result<ExitCode> {
    let RulesCommand::Check { dir } = command;
    anyhow::ensure!(
        dir.is_dir(),
        "{}: not a directory of .rhai rule files",
        dir.display()
    );
    let engine = engine(&Limits::default());
    let (rules, errors) = load_dir(&engine, &dir);
    for rule in &rules {
        println!(
            "{}: ok  {} ({}, {}, trigger {:?}, version {})",
            rule.path.display(),
            rule.id,
            rule.title,
            format!("{:?}", rule.severity).to_lowercase(),
            rule.trigger,
            rule.version
        );
    }
    for error in &errors {
        eprintln!("{error}");
    }
    println!("{} rules ok, {} with problems", rules.len(), errors.len());
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
