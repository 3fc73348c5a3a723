//! `relec notify`: the notifier stage with its telemetry and admin listener, until SIGINT
//! or SIGTERM; `relec notify silence ...` and `relec notify dlq ...`: what operators run
//! against the same topics, with or without the stage running.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::SystemTime};

use clap::{Args, Subcommand};
use relec_notifier::{
    Outbound, Subscriptions,
    channels::Channels,
    dlq::{self, Replay},
    matcher::Matcher,
    retry::RetryPolicy,
    stage::{
        NotifierStage, listed,
        silences::{NewSilence, SilenceStore},
    },
};
use relec_plumbing::{
    Config,
    kafka::Kafka,
    telemetry::{self, Telemetry},
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Stage, StartedStage};

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: Option<NotifyCommand>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Mute alerts matching matchers for a while (kept in the silences topic).
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Deliveries that failed for good: list them, replay them.
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Create a silence; prints its id.
    Add {
        /// An Alertmanager matcher on alert labels, e.g. 'route="IRN-TUR-VAN"' or
        /// 'severity=~"low|info"' (repeatable; an alert must match all).
        #[arg(long = "matcher", required = true)]
        matchers: Vec<String>,
        /// How long from now, e.g. 2h, 30m, 1day.
        #[arg(long = "for")]
        duration: humantime::Duration,
        /// Why: shown to whoever wonders later where the warnings went.
        #[arg(long)]
        comment: String,
        /// Who sets it.
        #[arg(long)]
        by: String,
    },
    /// List silences: active and pending ones (with --all, expired ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now (ID or a unique start of it).
    Expire { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Every dead letter: id, time, channel, reason, attempts, and whether it was replayed.
    List,
    /// Deliver dead letters again through their channels as the subscriptions say now.
    Replay {
        /// One dead letter, by id (or a unique start of it).
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter not replayed yet.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(command: Option<NotifyCommand>, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        None => stage(config).await,
        Some(NotifyCommand::Silence(command)) => {
            telemetry::init_logs(&config.telemetry)?;
            silence(command, &config).await
        }
        Some(NotifyCommand::Dlq(command)) => {
            telemetry::init_logs(&config.telemetry)?;
            dead_letters(command, &config).await
        }
    }
}

async fn stage(config: Config) -> anyhow::Result<ExitCode> {
    super::alone(&config, start).await
}

/// The notifier stage, built (subscriptions loaded, channels set up, topics checked);
/// [`Started::run`] runs it.
pub struct Started {
    pub stage: Stage,
    notifier: NotifierStage,
}

/// Builds the notifier stage on `kafka` and starts its telemetry and admin listener on
/// `metrics`.
pub async fn start(
    config: &Config,
    kafka: &Kafka,
    metrics: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let telemetry = Telemetry::new();
    let notifier = NotifierStage::build(config, kafka, &telemetry.registry).await?;
    let stage = Stage::start(config, telemetry, notifier.admin(), metrics, shutdown).await?;
    tracing::info!(brokers = kafka.bootstrap_servers(), subscriptions = %config.notifier.subscriptions.display(), "notifier stage running");
    Ok(Started { stage, notifier })
}

impl Started {
    /// Every notification delivered from now on.
    pub fn delivered(&self) -> broadcast::Receiver<Arc<Outbound>> {
        self.notifier.delivered()
    }
}

impl StartedStage for Started {
    /// Consumes, routes and delivers until shutdown.
    async fn run(self) -> anyhow::Result<()> {
        let health = self.stage.telemetry.health.clone();
        let result = self
            .notifier
            .run(&health, self.stage.shutdown.clone())
            .await;
        self.stage.stop().await;
        Ok(result?)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn silence(command: SilenceCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let kafka = Kafka::connect(config)?;
    let topic = &config.topics.notifier_silences.name;
    match command {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
            by,
        } => {
            let matchers = (matchers.iter())
                .map(|m| m.parse::<Matcher>())
                .collect::<Result<Vec<_>, _>>()?;
            let silence = NewSilence {
                matchers,
                starts_at: None,
                ends_at: None,
                duration: Some(duration.into()),
                created_by: by,
                comment,
            }
            .build(now_ms())?;
            SilenceStore::new(&kafka, topic)?.put(&silence).await?;
            println!("{}", silence.id);
        }
        SilenceCommand::List { all } => {
            let now = now_ms();
            let silences = SilenceStore::load(&kafka, topic).await?;
            let mut shown: Vec<_> = (silences.iter())
                .filter(|s| all || !s.is_expired(now))
                .collect();
            shown.sort_by_key(|s| (s.ends_at, s.id));
            println!(
                "{:<36}  {:<8}  {:<20}  {:<20}  {:<12}  {:<30}  COMMENT",
                "ID", "STATE", "STARTS", "ENDS", "BY", "MATCHERS"
            );
            for s in shown {
                let state = listed(s, now)["state"].as_str().unwrap_or("").to_owned();
                let matchers: Vec<String> = s.matchers.iter().map(|m| m.to_string()).collect();
                println!(
                    "{:<36}  {:<8}  {:<20}  {:<20}  {:<12}  {:<30}  {}",
                    s.id,
                    state,
                    time(s.starts_at),
                    time(s.ends_at),
                    s.created_by,
                    matchers.join(","),
                    s.comment
                );
            }
        }
        SilenceCommand::Expire { id } => {
            let silences = SilenceStore::load(&kafka, topic).await?;
            let store = SilenceStore::new(&kafka, topic)?;
            let (silence, changed) = store.expire(&silences, &id, now_ms()).await?;
            if changed {
                println!("{} expired", silence.id);
            } else {
                println!("{} had expired already", silence.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn dead_letters(command: DlqCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let kafka = Kafka::connect(config)?;
    let t = &config.topics;
    let listed = dlq::list(
        &kafka,
        &t.notifications_dlq.name,
        &t.notifier_deliveries.name,
    )
    .await?;
    match command {
        DlqCommand::List => {
            println!(
                "{:<24}  {:<20}  {:<32}  {:>8}  {:<8}  REASON",
                "ID", "TIME", "CHANNEL", "ATTEMPTS", "STATE"
            );
            for l in &listed {
                let d = &l.letter;
                println!(
                    "{:<24}  {:<20}  {:<32}  {:>8}  {:<8}  {}",
                    short(&d.id),
                    time(d.failed_at),
                    d.channel.to_string(),
                    d.attempts,
                    if l.replayed { "replayed" } else { "failed" },
                    d.reason
                );
            }
            eprintln!(
                "{} dead letters, {} replayed (ids are shortened: any unique start works)",
                listed.len(),
                listed.iter().filter(|l| l.replayed).count()
            );
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay { id, all } => {
            let chosen: Vec<_> = match &id {
                Some(id) => {
                    let found: Vec<_> = (listed.iter())
                        .filter(|l| l.letter.id.starts_with(id.as_str()))
                        .collect();
                    anyhow::ensure!(!found.is_empty(), "no dead letter {id}");
                    anyhow::ensure!(
                        found.len() == 1,
                        "{id} is the start of {} dead-letter ids; give more of it",
                        found.len()
                    );
                    found
                }
                None if all => listed.iter().filter(|l| !l.replayed).collect(),
                None => Vec::new(),
            };
            let subscriptions = Subscriptions::load(&config.notifier.subscriptions)?;
            let channels = Channels::new(&config.notifier)?;
            let policy = RetryPolicy::from(&config.notifier.retry);
            let shutdown = CancellationToken::new();
            let mut failed = 0;
            for l in chosen {
                let outcome = dlq::replay(
                    &kafka,
                    &t.notifier_deliveries.name,
                    &channels,
                    &subscriptions,
                    &policy,
                    l,
                    &shutdown,
                )
                .await?;
                match outcome {
                    Replay::Delivered { attempts } => {
                        println!("{}: delivered ({attempts} attempts)", short(&l.letter.id))
                    }
                    Replay::AlreadyReplayed => {
                        println!("{}: replayed before; not sent again", short(&l.letter.id))
                    }
                    Replay::Failed { attempts, reason } => {
                        failed += 1;
                        println!(
                            "{}: failed again after {attempts} attempts: {reason}",
                            short(&l.letter.id)
                        )
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The first 24 characters of a delivery id: enough to tell them apart.
fn short(id: &str) -> &str {
    id.get(..24).unwrap_or(id)
}

/// RFC 3339 to the second, UTC.
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
