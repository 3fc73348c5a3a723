//! The embedded cluster: librdkafka's in-process mock cluster, so `relec` runs with zero
//! setup. It speaks the Kafka protocol on a loopback port but keeps nothing after exit and
//! is not a substitute for a real broker in end-to-end tests.

use std::{sync::mpsc, thread};

use rdkafka::mocking::MockCluster;

use crate::Error;

/// Brokers in the embedded cluster; one is enough for a single process.
const EMBEDDED_BROKERS: i32 = 1;

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: mpsc::Sender<Result<(), String>>,
    },
}

/// Handle to the mock cluster. librdkafka's mock cluster handle may not move between
/// threads, so it lives on a thread of its own and this handle talks to it; dropping the
/// handle stops the cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bootstrap: String,
    commands: mpsc::Sender<Command>,
}

impl EmbeddedCluster {
    pub fn start() -> Result<Self, Error> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, inbox) = mpsc::channel::<Command>();
        thread::Builder::new()
            .name("relec-embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(EMBEDDED_BROKERS) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Serves until every handle is dropped, then the cluster goes with the thread.
                for command in inbox {
                    match command {
                        Command::CreateTopic {
                            name,
                            partitions,
                            reply,
                        } => {
                            let result = cluster
                                .create_topic(&name, partitions, EMBEDDED_BROKERS)
                                .map_err(|e| e.to_string());
                            let _ = reply.send(result);
                        }
                    }
                }
            })
            .map_err(|e| Error::Embedded(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| Error::Embedded("cluster thread ended".into()))?
            .map_err(Error::Embedded)?;
        Ok(Self {
            bootstrap,
            commands,
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic; the embedded cluster keeps one replica whatever was asked.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), Error> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::CreateTopic {
                name: name.to_owned(),
                partitions,
                reply,
            })
            .map_err(|_| Error::Embedded("cluster thread ended".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Embedded("cluster thread ended".into()))?
            .map_err(|reason| Error::Topic {
                topic: name.to_owned(),
                reason,
            })
    }
}
