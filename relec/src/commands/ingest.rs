//! `relec ingest`: the ingest stage with its telemetry listener, until SIGINT or SIGTERM;
//! `relec ingest keygen`: a new agency key.

use std::process::ExitCode;

use relec_ingest::{auth::generate_key, publisher::system_clock};
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
    let stage = Stage::start(&config).await?;
    let ready = stage.telemetry.health.component("ingest");
    let kafka = Kafka::connect(&config)?;
    let api = relec_ingest::build(&config, &kafka, &stage.telemetry, system_clock()).await?;
    let listener = tokio::net::TcpListener::bind(config.ingest.listen).await?;
    tracing::info!(listen = %config.ingest.listen, brokers = kafka.bootstrap_servers(), "ingest API ready");
    ready.set(true);
    let served = relec_ingest::serve(listener, api, stage.shutdown.clone()).await;
    stage.stop().await;
    served?;
    Ok(ExitCode::SUCCESS)
}
