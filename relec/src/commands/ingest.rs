//! `relec ingest`: the ingest stage with its telemetry listener, until SIGINT or SIGTERM;
//! `relec ingest keygen`: a new agency key.

use std::process::ExitCode;

use relec_ingest::{
    auth::generate_key,
    publisher::system_clock,
    screen::{self, ScreenMetrics},
};
use relec_plumbing::{Config, kafka::Kafka};

use super::Stage;
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
    let stage = Stage::start(&config, axum::Router::new()).await?;
    let ready = stage.telemetry.health.component("ingest");
    let kafka = Kafka::connect(&config)?;
    let api = relec_ingest::build(&config, &kafka, &stage.telemetry, system_clock()).await?;
    let screen = config.ingest.screen.then(|| {
        let (kafka, config, shutdown) = (kafka.clone(), config.clone(), stage.shutdown.clone());
        let metrics = ScreenMetrics::register(&stage.telemetry.registry);
        tokio::spawn(async move {
            let result = match metrics {
                Ok(metrics) => {
                    screen::run(&kafka, &config, metrics, system_clock(), shutdown.clone()).await
                }
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "screen of native records stopped; shutting down");
                shutdown.cancel();
            }
        })
    });
    let listener = tokio::net::TcpListener::bind(config.ingest.listen).await?;
    tracing::info!(listen = %config.ingest.listen, brokers = kafka.bootstrap_servers(), "ingest API ready");
    ready.set(true);
    let served = relec_ingest::serve(listener, api, stage.shutdown.clone()).await;
    stage.shutdown.cancel();
    if let Some(screen) = screen {
        let _ = screen.await;
    }
    stage.stop().await;
    served?;
    Ok(ExitCode::SUCCESS)
}
