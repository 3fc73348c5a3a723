//! `relec topics create|describe`: the pipeline's topics as configured, and as they are.

use std::process::ExitCode;

use relec_plumbing::{
    Config,
    kafka::{Kafka, TopicOutcome},
};

use crate::cli::TopicsCommand;

pub async fn run(command: TopicsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let kafka = Kafka::connect(config)?;
    match command {
        TopicsCommand::Create => {
            for (name, outcome) in kafka.create_topics(&config.topics).await? {
                match outcome {
                    TopicOutcome::Created => println!("{name}: created"),
                    TopicOutcome::Exists { drift } if drift.is_empty() => {
                        println!("{name}: exists, as configured")
                    }
                    TopicOutcome::Exists { drift } => {
                        println!(
                            "{name}: exists, left unchanged; differs: {}",
                            drift.join("; ")
                        )
                    }
                }
            }
        }
        TopicsCommand::Describe => {
            let names: Vec<&str> = config
                .topics
                .all()
                .iter()
                .map(|(_, t)| t.name.as_str())
                .collect();
            println!(
                "{:<32} {:>10} {:>11}  configs",
                "topic", "partitions", "replication"
            );
            for t in kafka.describe_topics(&names).await? {
                if !t.exists {
                    println!("{:<32} {:>10} {:>11}  -", t.name, "missing", "-");
                    continue;
                }
                let configs: Vec<String> =
                    t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{:<32} {:>10} {:>11}  {}",
                    t.name,
                    t.partitions,
                    t.replication_factor,
                    configs.join(" ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
