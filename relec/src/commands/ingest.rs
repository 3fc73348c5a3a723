//! `relec ingest`: the ingest stage with its telemetry listener, until SIGINT or SIGTERM;
//! `relec ingest keygen`: a new agency key.

use std::{net::SocketAddr, process::ExitCode};

use anyhow::Context;
use relec_ingest::{
    auth::generate_key,
    http::IngestApi,
    publisher::system_clock,
    screen::{self, Screen, ScreenMetrics},
};
use relec_plumbing::{Config, kafka::Kafka, telemetry::Telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Stage, StartedStage};
use crate::cli::IngestCommand;

pub async fn run(command: Option<IngestCommand>, config: Config) -> anyhow::Result<ExitCode> {
    if let Some(IngestCommand::Keygen { agency, countries }) = command {
        let (key, hash) = generate_key();
        eprintln!("API key for {agency} (give it to the agency; it is not stored anywhere):");
        println!("{key}");
        eprintln!("\nAdd to the config:\n");
        eprintln!(
            "[[ingest.agencies]]\nid = {agency:?}\ncountries = {countries:?}\nkey_sha256 = {hash:?}"
        );
        return Ok(ExitCode::SUCCESS);
    }
    super::alone(&config, start).await
}

/// The ingest stage, built, its API bound; [`Started::run`] serves it.
pub struct Started {
    pub stage: Stage,
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    listener: TcpListener,
    api: IngestApi,
    kafka: Kafka,
    config: Config,
}

/// Starts the telemetry listener on `metrics`, builds the publisher and the API on `kafka`
/// (the idempotency window is rebuilt from the topic first) and binds `ingest.listen`.
pub async fn start(
    config: &Config,
    kafka: &Kafka,
    metrics: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let stage = Stage::start(
        config,
        Telemetry::new(),
        axum::Router::new(),
        metrics,
        shutdown,
    )
    .await?;
    let api = relec_ingest::build(config, kafka, &stage.telemetry, system_clock()).await?;
    let listener = TcpListener::bind(config.ingest.listen)
        .await
        .with_context(|| format!("ingest.listen {}", config.ingest.listen))?;
    Ok(Started {
        stage,
        api_addr: listener.local_addr()?,
        listener,
        api,
        kafka: kafka.clone(),
        config: config.clone(),
    })
}

impl StartedStage for Started {
    /// Serves the API (and screens native records, if configured) until shutdown.
    async fn run(self) -> anyhow::Result<()> {
        let Self {
            stage,
            api_addr,
            listener,
            api,
            kafka,
            config,
        } = self;
        let ready = stage.telemetry.health.component("ingest");
        let screen = config.ingest.screen.then(|| {
            let (kafka, config, shutdown) = (kafka.clone(), config.clone(), stage.shutdown.clone());
            let metrics = ScreenMetrics::register(&stage.telemetry.registry);
            let (publisher, agencies) = (api.publisher.clone(), api.agencies.clone());
            tokio::spawn(async move {
                let result = match metrics {
                    Ok(metrics) => {
                        let screen = Screen {
                            publisher,
                            agencies,
                            metrics,
                        };
                        screen::run(&kafka, &config, screen, shutdown.clone()).await
                    }
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = &result {
                    tracing::error!(error = %e, "screen of native records stopped; shutting down");
                    shutdown.cancel();
                }
                result
            })
        });
        tracing::info!(listen = %api_addr, brokers = kafka.bootstrap_servers(), "ingest API ready");
        ready.set(true);
        let served = relec_ingest::serve(listener, api, stage.shutdown.clone()).await;
        stage.shutdown.cancel();
        let screened = match screen {
            Some(screen) => screen.await?,
            None => Ok(()),
        };
        stage.stop().await;
        served?;
        // A screen that failed stops the stage with an error: a supervisor restarts it.
        screened.context("screen of native records")?;
        Ok(())
    }
}
