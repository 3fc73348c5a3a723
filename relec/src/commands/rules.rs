//! `relec rules`: the rules stage with its telemetry and admin listener, until SIGINT or
//! SIGTERM; `relec rules check` and `relec rules test`: what an analyst runs before a rule
//! goes live (`relec rules backtest` is in `backtest.rs`).

use std::{collections::BTreeSet, net::SocketAddr, path::Path, process::ExitCode, sync::Arc};

use relec_plumbing::{Config, kafka::Kafka, telemetry::Telemetry};
use relec_rules::{
    fixture::{FixtureFile, run_file},
    lint::check_dir,
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
    stage::{RulesStage, settings},
};

use tokio_util::sync::CancellationToken;

use super::{Stage, StartedStage};

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    super::alone(&config, start).await
}

/// The rules stage, built (rules loaded, topics checked); [`Started::run`] runs it.
pub struct Started {
    pub stage: Stage,
    rules: RulesStage,
}

/// Builds the rules stage on `kafka` and starts its telemetry and admin listener on
/// `metrics`.
pub async fn start(
    config: &Config,
    kafka: &Kafka,
    metrics: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let telemetry = Telemetry::new();
    let rules = RulesStage::build(config, kafka, &telemetry.registry).await?;
    let stage = Stage::start(config, telemetry, rules.admin(), metrics, shutdown).await?;
    tracing::info!(brokers = kafka.bootstrap_servers(), dir = %config.rules.dir.display(), "rules stage running");
    Ok(Started { stage, rules })
}

impl StartedStage for Started {
    /// Consumes, evaluates and commits until shutdown.
    async fn run(self) -> anyhow::Result<()> {
        let ready = self.stage.telemetry.health.component("rules");
        ready.set(true);
        let result = self.rules.run(self.stage.shutdown.clone()).await;
        self.stage.stop().await;
        Ok(result?)
    }
}

/// `relec rules check DIR`: every rule file loaded as the stage would and linted; one
/// line per problem, `file:line:column: ...`, on standard error.
pub fn check(dir: &Path, config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        dir.is_dir(),
        "{}: not a directory of .rhai rule files",
        dir.display()
    );
    let engine = engine(&Limits::default());
    let horizon_days = settings(config).horizon_days;
    let reports = check_dir(&engine, dir, horizon_days)?;
    let mut with_problems = 0;
    for report in &reports {
        match (&report.rule, report.findings.is_empty()) {
            (Some(rule), true) => println!(
                "{}: ok  {} ({}, {}, trigger {}, version {})",
                rule.path.display(),
                rule.id,
                rule.title,
                format!("{:?}", rule.severity).to_lowercase(),
                rule.trigger.as_str(),
                rule.version
            ),
            _ => {
                with_problems += 1;
                for finding in &report.findings {
                    eprintln!("{finding}");
                }
            }
        }
    }
    println!(
        "{} rules ok, {with_problems} with problems",
        reports.len() - with_problems
    );
    Ok(if with_problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `relec rules test DIR`: every fixture file's cases against the rules of DIR; `ok` or
/// `FAIL` per case, with a diff of the transitions for each failure.
pub fn test(dir: &Path, fixtures: Option<&Path>) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(engine(&Limits::default()));
    let (rules, errors) = load_dir(&engine, dir);
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{error}");
        }
        eprintln!(
            "{} rule files with problems; `relec rules check {}` explains them",
            errors.len(),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    let fixtures = fixtures.map_or_else(|| dir.join("tests"), Path::to_owned);
    let files = FixtureFile::load_dir(&fixtures)?;

    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    let mut tested = BTreeSet::new();
    for file in &files {
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                broken += 1;
                println!("{e}");
                continue;
            }
        };
        println!("{}", file.path.display());
        tested.extend(file.rules.iter().cloned());
        match run_file(&engine, &rules, file) {
            Ok(outcomes) => {
                for outcome in outcomes {
                    match &outcome.failure {
                        None => {
                            passed += 1;
                            println!("  ok    {}", outcome.name);
                        }
                        Some(lines) => {
                            failed += 1;
                            println!("  FAIL  {}", outcome.name);
                            for line in lines {
                                println!("          {line}");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                broken += 1;
                println!("  {}", e.message);
            }
        }
    }
    let untested: Vec<&str> = rules
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| !tested.contains(*id))
        .collect();
    if !untested.is_empty() {
        eprintln!("warning: no fixtures for {}", untested.join(", "));
    }
    let broken_text = if broken > 0 {
        format!(", {broken} fixture files unusable")
    } else {
        String::new()
    };
    println!(
        "{} cases in {} files: {passed} passed, {failed} failed{broken_text}",
        passed + failed,
        files.len()
    );
    anyhow::ensure!(
        !files.is_empty(),
        "no fixture files (*.toml) in {}",
        fixtures.display()
    );
    Ok(if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
