//! `relec run`: the whole pipeline in one process, ingest → rules → notifier, each stage
//! started as its own command starts it, with its own telemetry listener. On the embedded
//! cluster (no `--config`, no `--brokers`) it also publishes the simulator's demo scenario
//! through the ingest API and writes what subscribers would receive to an outbox, so a
//! newcomer sees early warnings in one command.

mod console;
mod demo;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use relec_ingest::simulate::demo as demo_scenario;
use relec_plumbing::{Config, kafka::Kafka, shutdown, telemetry};
use tokio::{task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

use self::console::{Registries, Snapshot};
use super::{StartedStage, ingest, notify, rules};
use crate::cli::{Global, RunArgs};

/// The outbox of the zero-setup run, relative to the working directory.
const DEFAULT_OUTBOX: &str = "outbox";
/// How often the summary line is printed.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);
/// `--until-idle`: the pipeline counts as idle once nothing moved for this long.
const QUIET_FOR: Duration = Duration::from_secs(5);
/// How often `--until-idle` looks.
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub async fn run(args: RunArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let mut config = super::load(global)?;
    // The console is the output here; logs say only what needs attention, unless asked.
    let log_level_given = global.config.is_some()
        || std::env::var_os("RUST_LOG").is_some()
        || std::env::var_os("RELEC_TELEMETRY__LOG_LEVEL").is_some();
    if !log_level_given {
        config.telemetry.log_level = "warn".to_owned();
    }
    telemetry::init_logs(&config.telemetry)?;

    let embedded = config.kafka.is_embedded();
    let with_demo = args.demo || (embedded && !args.no_demo);
    anyhow::ensure!(
        args.speed >= 0.0 && args.speed.is_finite(),
        "--speed must be 0 (as fast as possible) or more"
    );
    if let Some(dir) = args.outbox.clone().or_else(|| {
        (config.notifier.outbox.is_none() && embedded).then(|| PathBuf::from(DEFAULT_OUTBOX))
    }) {
        config.notifier.outbox = Some(dir);
    }
    let demo_key = with_demo.then(|| {
        let (key, agency) = demo::agency();
        config.ingest.agencies.push(agency);
        key
    });
    let derived = if with_demo {
        Some(demo_subscriptions(&mut config)?)
    } else {
        None
    };

    let root = shutdown::on_signals();
    let kafka = Kafka::connect(&config)?;
    kafka.create_topics(&config.topics).await?;
    kafka.create_native_topics(&config).await?;
    let ports = Ports::from(config.telemetry.listen);
    let ingest = ingest::start(&config, &kafka, ports.ingest, root.child_token()).await?;
    let rules = rules::start(&config, &kafka, ports.rules, root.child_token()).await?;
    let notifier = notify::start(&config, &kafka, ports.notifier, root.child_token()).await?;
    let registries = Registries {
        ingest: ingest.stage.telemetry.registry.clone(),
        rules: rules.stage.telemetry.registry.clone(),
        notifier: notifier.stage.telemetry.registry.clone(),
    };
    let outbox = config.notifier.outbox.as_deref().map(absolute);
    print_plan(
        &config,
        &kafka,
        &ingest,
        &rules,
        &notifier,
        outbox.as_deref(),
        &args,
        with_demo,
    );

    let delivered = notifier.delivered();
    let api = ingest.api_addr;
    let mut stages = JoinSet::new();
    stages.spawn(async move { ("ingest", ingest.run().await) });
    stages.spawn(async move { ("rules", rules.run().await) });
    stages.spawn(async move { ("notifier", notifier.run().await) });
    let console = tokio::spawn(console::show(
        delivered,
        registries.clone(),
        SUMMARY_EVERY,
        root.clone(),
    ));
    let driver = demo_key.map(|key| {
        let (token, rules) = (root.clone(), registries.rules.clone());
        let event_time = move || console::event_time_ms(&rules);
        let demo = demo::drive(demo_scenario(), api, key, args.speed, event_time, token);
        tokio::spawn(demo)
    });
    let stop = tokio::spawn(stop_when(
        args.duration.map(Into::into),
        args.until_idle,
        driver,
        registries.clone(),
        root.clone(),
    ));

    let started = Instant::now();
    let mut failed = false;
    tokio::select! {
        () = root.cancelled() => {}
        Some(joined) = stages.join_next() => {
            failed |= report(joined);
            root.cancel();
        }
    }
    let drained = tokio::time::timeout(
        config.shutdown.drain_deadline + Duration::from_secs(5),
        async {
            while let Some(joined) = stages.join_next().await {
                failed |= report(joined);
            }
        },
    )
    .await;
    if drained.is_err() {
        eprintln!("relec run: stages still running after the drain deadline; stopped");
        stages.abort_all();
    }
    let _ = console.await;
    failed |= matches!(stop.await, Ok(Err(_)) | Err(_));
    let end = Snapshot::take(&registries);
    println!(
        "relec run: stopped after {:.0} s: {} events accepted, {} alert transitions, {} notifications delivered ({} failed)",
        started.elapsed().as_secs_f64(),
        end.accepted,
        end.transitions,
        end.email + end.webhook,
        end.failed
    );
    if let Some(dir) = &outbox {
        println!("relec run: the notifications are in {}", dir.display());
    }
    if let Some(path) = derived {
        let _ = std::fs::remove_file(path);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The telemetry listeners of the three stages: the configured port for ingest and the two
/// after it for rules and notifier (any free ports when it is 0).
struct Ports {
    ingest: SocketAddr,
    rules: SocketAddr,
    notifier: SocketAddr,
}

impl From<SocketAddr> for Ports {
    fn from(listen: SocketAddr) -> Self {
        let next = |n: u16| {
            let mut addr = listen;
            if listen.port() != 0 {
                addr.set_port(listen.port().saturating_add(n));
            }
            addr
        };
        Self {
            ingest: next(0),
            rules: next(1),
            notifier: next(2),
        }
    }
}

/// Points the notifier at a copy of its subscriptions with the demo's timings (and, with
/// an outbox, demo webhook secrets); returns the copy's path.
fn demo_subscriptions(config: &mut Config) -> anyhow::Result<PathBuf> {
    let source = config.notifier.subscriptions.clone();
    let text = std::fs::read_to_string(&source).with_context(|| {
        format!(
            "{}: the subscriptions file (run relec from the repository's root, or set notifier.subscriptions)",
            source.display()
        )
    })?;
    let derived = demo::subscriptions(
        &text,
        &source.display().to_string(),
        config.notifier.outbox.is_some(),
    )?;
    let path = std::env::temp_dir().join(format!(
        "relec-run-{}-subscriptions.toml",
        std::process::id()
    ));
    std::fs::write(&path, derived).with_context(|| path.display().to_string())?;
    config.notifier.subscriptions = path.clone();
    Ok(path)
}

#[allow(clippy::too_many_arguments)]
fn print_plan(
    config: &Config,
    kafka: &Kafka,
    ingest: &ingest::Started,
    rules: &rules::Started,
    notifier: &notify::Started,
    outbox: Option<&Path>,
    args: &RunArgs,
    with_demo: bool,
) {
    let cluster = if kafka.is_embedded() {
        format!(
            "embedded (in-process, nothing kept after exit) at {}",
            kafka.bootstrap_servers()
        )
    } else {
        kafka.bootstrap_servers().to_owned()
    };
    println!("relec run: ingest → rules → notifier in one process");
    println!("  kafka       {cluster}");
    println!("  ingest API  http://{}/v1/events", ingest.api_addr);
    for (stage, addr) in [
        ("ingest", ingest.stage.listen),
        ("rules", rules.stage.listen),
        ("notifier", notifier.stage.listen),
    ] {
        println!("  metrics     {stage:<9} http://{addr}/metrics");
    }
    println!("  rules       {}", config.rules.dir.display());
    match outbox {
        Some(dir) => println!(
            "  outbox      {} (emails as .eml, webhook bodies with .headers; nothing is sent)",
            dir.display()
        ),
        None => println!("  delivery    by SMTP and webhook, as the subscriptions say"),
    }
    if with_demo {
        let demo = demo_scenario();
        let pace = if args.speed > 0.0 {
            format!("{} days a second", args.speed)
        } else {
            "as fast as it goes".to_owned()
        };
        println!(
            "  demo        {} days of simulated incidents from {} ({} scenarios), {pace}, published as agency {}",
            demo.days,
            chrono::DateTime::from_timestamp_millis(demo.start_ms)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            demo.scenarios.len(),
            demo::AGENCY,
        );
        println!(
            "              routed by {} with group_wait 0s and group_interval 1s",
            config.notifier.subscriptions.display()
        );
    }
    println!("  Ctrl-C stops. Early warnings appear below as they are delivered.");
}

/// Stops the run after `duration`, or (`until_idle`) once the demo is published and the
/// pipeline has settled; reports a failed demo and stops the run then too.
async fn stop_when(
    duration: Option<Duration>,
    until_idle: bool,
    driver: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    registries: Registries,
    root: CancellationToken,
) -> anyhow::Result<()> {
    let deadline = duration.map(|d| Instant::now() + d);
    let timer = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let watch = async {
        if let Some(driver) = driver {
            match driver.await {
                Ok(Ok(sent)) => println!("relec run: the demo is published ({sent} events)"),
                Ok(Err(e)) => {
                    eprintln!("relec run: the demo stopped: {e:#}");
                    return Err(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !until_idle {
            std::future::pending::<()>().await;
        }
        let mut before = Snapshot::take(&registries);
        let mut quiet_since = Instant::now();
        loop {
            tokio::time::sleep(IDLE_CHECK).await;
            let now = Snapshot::take(&registries);
            if !now.settled(&before) {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= QUIET_FOR {
                println!("relec run: idle for {} s; stopping", QUIET_FOR.as_secs());
                return Ok(());
            }
            before = now;
        }
    };
    let result = tokio::select! {
        () = root.cancelled() => Ok(()),
        () = timer => Ok(()),
        result = watch => result,
    };
    root.cancel();
    result
}

/// Says how a stage ended; true if it failed.
fn report(joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>) -> bool {
    match joined {
        Ok((_, Ok(()))) => false,
        Ok((stage, Err(e))) => {
            eprintln!("relec run: the {stage} stage failed: {e:#}");
            true
        }
        Err(e) => {
            eprintln!("relec run: a stage task failed: {e}");
            true
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
