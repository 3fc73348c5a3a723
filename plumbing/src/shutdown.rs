//! Graceful shutdown: one root cancellation token that SIGINT and SIGTERM cancel, and a
//! drain that gives running tasks a deadline before it aborts them.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A root token cancelled by the first SIGINT or SIGTERM. Every loop in the process selects
/// on it (or a child of it).
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested, draining");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the process");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Tasks that finished by themselves.
    pub finished: usize,
    /// Tasks still running at the deadline, aborted.
    pub aborted: usize,
}

/// Waits for every task in `tasks` to end, at most `deadline`, then aborts the rest.
pub async fn drain<T: 'static>(mut tasks: JoinSet<T>, deadline: Duration) -> Drained {
    let mut finished = 0;
    let waited = tokio::time::timeout(deadline, async {
        while tasks.join_next().await.is_some() {
            finished += 1;
        }
    })
    .await;
    let aborted = if waited.is_err() {
        let left = tasks.len();
        tracing::warn!(left, ?deadline, "drain deadline passed, aborting tasks");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        left
    } else {
        0
    };
    Drained { finished, aborted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_aborts_what_outlives_the_deadline() {
        let token = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let t = token.clone();
        tasks.spawn(async move { t.cancelled().await });
        tasks.spawn(std::future::pending::<()>());
        token.cancel();
        let drained = drain(tasks, Duration::from_secs(5)).await;
        assert_eq!(
            drained,
            Drained {
                finished: 1,
                aborted: 1
            }
        );
    }
}
