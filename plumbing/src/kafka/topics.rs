//! `relec topics create` and `relec topics describe`: the pipeline's topics made as the
//! config says, idempotently, and shown as the cluster has them.

use std::collections::BTreeMap;

use rdkafka::{
    admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication},
    types::RDKafkaErrorCode,
};

use super::{ADMIN_TIMEOUT, Kafka};
use crate::{
    Config, Error,
    config::{TopicSpec, TopicsConfig},
};

/// What `create` did to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    /// It was there already and was left alone; `drift` lists where it differs from the
    /// config (changing a live topic is an operator's decision, not a side effect).
    Exists {
        drift: Vec<String>,
    },
}

/// A topic as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub exists: bool,
    pub partitions: usize,
    pub replication_factor: usize,
    /// Topic configs relec sets (`retention.ms`, `cleanup.policy`, and any extra ones);
    /// empty on the embedded cluster, which has no topic configs.
    pub configs: BTreeMap<String, String>,
}

/// Topic configs shown by `describe` and compared for drift.
const SHOWN_CONFIGS: [&str; 2] = ["retention.ms", "cleanup.policy"];

impl Kafka {
    /// Creates every configured topic that does not exist yet; running it twice changes
    /// nothing the second time.
    pub async fn create_topics(
        &self,
        topics: &TopicsConfig,
    ) -> Result<Vec<(String, TopicOutcome)>, Error> {
        let specs: Vec<&TopicSpec> = topics.all().into_iter().map(|(_, t)| t).collect();
        self.create(&specs).await
    }

    /// Creates the native topic of every agency in the config that does not have one yet
    /// ([`Config::native_topics`]).
    pub async fn create_native_topics(
        &self,
        config: &Config,
    ) -> Result<Vec<(String, TopicOutcome)>, Error> {
        let specs = config.native_topics();
        self.create(&specs.iter().collect::<Vec<_>>()).await
    }

    /// Deletes the named topics, those that exist (the embedded cluster keeps its topics
    /// until it stops).
    pub async fn delete_topics(&self, names: &[&str]) -> Result<(), Error> {
        if names.is_empty() || self.embedded().is_some() {
            return Ok(());
        }
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        for result in self.admin()?.delete_topics(names, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => {
                    return Err(Error::Topic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates those of `specs` that do not exist yet.
    async fn create(&self, specs: &[&TopicSpec]) -> Result<Vec<(String, TopicOutcome)>, Error> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = specs.iter().map(|t| t.name.as_str()).collect();
        let before = self.describe_topics(&names).await?;
        let mut outcomes = Vec::new();
        let mut missing = Vec::new();
        for (&spec, existing) in specs.iter().zip(&before) {
            if existing.exists {
                let mut drift = Vec::new();
                if existing.partitions != spec.partitions as usize {
                    drift.push(format!(
                        "partitions {} (config says {})",
                        existing.partitions, spec.partitions
                    ));
                }
                for (key, want) in spec.broker_configs() {
                    if let Some(have) = existing.configs.get(&key).filter(|h| **h != want) {
                        drift.push(format!("{key}={have} (config says {want})"));
                    }
                }
                outcomes.push((spec.name.clone(), TopicOutcome::Exists { drift }));
            } else {
                missing.push(spec);
                outcomes.push((spec.name.clone(), TopicOutcome::Created));
            }
        }
        if missing.is_empty() {
            return Ok(outcomes);
        }
        if let Some(cluster) = self.embedded() {
            for spec in &missing {
                cluster.create_topic(&spec.name, spec.partitions)?;
            }
            return Ok(outcomes);
        }
        let configs: Vec<BTreeMap<String, String>> =
            missing.iter().map(|s| s.broker_configs()).collect();
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .zip(&configs)
            .map(|(spec, configs)| {
                configs.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        spec.partitions,
                        TopicReplication::Fixed(spec.replication_factor),
                    ),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        for result in self.admin()?.create_topics(&new_topics, &options).await? {
            match result {
                Ok(_) => {}
                // Another process created it between our look and our create: that is fine.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::Topic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        let created: Vec<&str> = missing.iter().map(|s| s.name.as_str()).collect();
        self.await_topics(&created).await?;
        Ok(outcomes)
    }

    /// Waits until the cluster's metadata shows every named topic with its partitions: the
    /// controller acknowledges a create before every broker serves the topic, and a client
    /// that starts in that gap would be told the topic does not exist.
    async fn await_topics(&self, names: &[&str]) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + ADMIN_TIMEOUT;
        loop {
            let described = self.describe_topics(names).await?;
            let pending: Vec<&str> = described
                .iter()
                .filter(|t| !t.exists || t.partitions == 0)
                .map(|t| t.name.as_str())
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Topic {
                    topic: pending.join(", "),
                    reason: format!("created, but not visible in metadata after {ADMIN_TIMEOUT:?}"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Describes the named topics; one entry per name, in order, `exists: false` for absent
    /// ones.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicDescription>, Error> {
        let admin = std::sync::Arc::new(self.admin()?);
        // Metadata requests block the calling thread; keep them off the async workers.
        let metadata = {
            let admin = admin.clone();
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, ADMIN_TIMEOUT))
        }
        .await??;
        // Read out of the metadata before any await: it is not Send, and a future holding
        // it could not be spawned.
        let mut out: Vec<TopicDescription> = names
            .iter()
            .map(|name| {
                let topic = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == *name && t.error().is_none());
                TopicDescription {
                    name: (*name).to_owned(),
                    exists: topic.is_some(),
                    partitions: topic.map_or(0, |t| t.partitions().len()),
                    replication_factor: topic
                        .and_then(|t| t.partitions().iter().map(|p| p.replicas().len()).max())
                        .unwrap_or(0),
                    configs: BTreeMap::new(),
                }
            })
            .collect();
        drop(metadata);
        if !self.is_embedded() {
            for topic in out.iter_mut().filter(|t| t.exists) {
                topic.configs = topic_configs(&admin, &topic.name).await?;
            }
        }
        Ok(out)
    }
}

async fn topic_configs(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    name: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(name)], &options)
        .await?;
    let mut configs = BTreeMap::new();
    for result in results {
        let resource = result.map_err(|code| Error::Topic {
            topic: name.to_owned(),
            reason: code.to_string(),
        })?;
        for entry in resource.entries {
            if SHOWN_CONFIGS.contains(&entry.name.as_str())
                && let Some(value) = entry.value
            {
                configs.insert(entry.name, value);
            }
        }
    }
    Ok(configs)
}
