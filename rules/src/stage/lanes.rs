//! The threads the rules stage's shards are processed on. A shard with records queued is
//! handed to whichever lane is free, with its records, and comes back with what it
//! produced; each shard is in one lane at a time, so its records are processed in the
//! order they came. Shards come and go on their own: one slow shard holds back no other,
//! and the reading thread waits only when it needs a shard back (a commit, a rebalance)
//! or too much is queued.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, Sender},
    },
    thread::JoinHandle,
};

use crate::{checkpoint::Record, events::RulesMetrics, processor::Output};

use super::worker::{Input, Shard, process};

/// A shard and the records queued for it; `checkpoint` asks for its changed state as
/// changelog records once they are processed.
pub(crate) struct Job {
    pub partition: i32,
    pub shard: Shard,
    pub inputs: Vec<Input>,
    pub checkpoint: bool,
}

/// A shard back from its lane: the outputs with something to write, and the changelog
/// records if asked for (or why they could not be made).
pub(crate) struct Done {
    pub partition: i32,
    pub shard: Shard,
    pub outputs: Vec<Output>,
    pub records: Result<Vec<Record>, crate::error::Error>,
}

pub(crate) struct Lanes {
    jobs: Option<Sender<Job>>,
    done: Receiver<Result<Done, String>>,
    threads: Vec<JoinHandle<()>>,
}

impl Lanes {
    /// Starts `count` lanes (at least one).
    pub(crate) fn new(count: usize, metrics: &RulesMetrics) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (finished, done) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..count.max(1))
            .map(|i| {
                let (queue, finished, metrics) = (queue.clone(), finished.clone(), metrics.clone());
                std::thread::Builder::new()
                    .name(format!("rules-lane-{i}"))
                    .spawn(move || lane(&queue, &finished, &metrics))
                    .expect("a thread for a lane")
            })
            .collect();
        Self {
            jobs: Some(jobs),
            done,
            threads,
        }
    }

    pub(crate) fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // Only fails once every lane has stopped, and a lane only stops when this end
            // is dropped.
            let _ = jobs.send(job);
        }
    }

    /// A shard back from its lane: waiting for one if `wait`, else only if one is back.
    /// A panic in a lane is raised here.
    pub(crate) fn back(&self, wait: bool) -> Option<Done> {
        let result = if wait {
            self.done.recv().ok()
        } else {
            self.done.try_recv().ok()
        };
        result
            .map(|r| r.unwrap_or_else(|message| panic!("a shard's processing panicked: {message}")))
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One lane: takes the next job from the queue all lanes share, until the queue closes.
fn lane(
    queue: &Mutex<Receiver<Job>>,
    finished: &Sender<Result<Done, String>>,
    metrics: &RulesMetrics,
) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Job {
            partition,
            mut shard,
            inputs,
            checkpoint,
        }) = job
        else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let outputs = process(partition, &mut shard, inputs, metrics);
            let records = if checkpoint {
                shard.checkpoint()
            } else {
                Ok(Vec::new())
            };
            (outputs, records)
        }));
        let done = match result {
            Ok((outputs, records)) => Ok(Done {
                partition,
                shard,
                outputs,
                records,
            }),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()),
        };
        if finished.send(done).is_err() {
            return;
        }
    }
}
