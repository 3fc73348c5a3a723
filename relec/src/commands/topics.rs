//! `relec topics create|describe`: the pipeline's topics as configured (each agency's
//! native topic included), and as they are.

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
            let mut outcomes = kafka.create_topics(&config.topics).await?;
            outcomes.extend(kafka.create_native_topics(config).await?);
            for (name, outcome) in outcomes {
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
            let names: Vec<String> = (config.topics.all().iter())
                .map(|(_, t)| t.name.clone())
                .chain(config.native_topics().into_iter().map(|t| t.name))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
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
