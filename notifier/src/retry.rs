//! Delivery retries shared by the email and webhook channels: what one attempt came to
//! ([`Outcome`]), how long to wait before the next one ([`RetryPolicy`]), and the bounded
//! loop that runs the attempts ([`deliver`]). What is still undelivered after the last
//! attempt goes to the dead-letter topic (the caller's job), so nothing is dropped silently.

use std::{future::Future, time::Duration};

use rand::{Rng, RngExt};
use relec_plumbing::config::RetryConfig;
use tokio_util::sync::CancellationToken;

/// What one delivery attempt came to. Both channels classify their errors into this, so
/// the retry policy never needs to know about SMTP codes or HTTP statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it (SMTP 250, HTTP 2xx).
    Delivered,
    /// Worth trying again: 4xx SMTP replies, HTTP 5xx/408/429, timeouts, refused or broken
    /// connections. `after` is the receiver's own Retry-After, if it gave one.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Trying again would fail the same way: 5xx SMTP replies, other HTTP 4xx, a
    /// rejected signature or address, a template that does not render.
    Permanent { reason: String },
}

impl Outcome {
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }
}

/// Exponential backoff with full jitter (the AWS Architecture Blog's "full jitter"): before
/// retry `n` (0 for the first retry), wait a uniformly random time in
/// `[0, min(cap, base * 2^n)]`. The randomness spreads out the retries of many
/// notifications that failed together, so a recovering receiver is not hit all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the first backoff; it doubles with every retry, up to `cap`.
    pub base: Duration,
    /// The longest wait between two attempts. A receiver's Retry-After longer than this is
    /// cut to it, so one receiver cannot park a notification indefinitely.
    pub cap: Duration,
    /// Attempts in all, the first one included; at least 1.
    pub max_attempts: u32,
}

/// From `[notifier.retry]`: `initial_backoff`, `max_backoff`, `max_attempts`.
impl From<&RetryConfig> for RetryPolicy {
    fn from(config: &RetryConfig) -> Self {
        Self {
            base: config.initial_backoff,
            cap: config.max_backoff,
            max_attempts: config.max_attempts,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::from(&RetryConfig::default())
    }
}

impl RetryPolicy {
    /// How long to wait before retry `retry` (0 for the first retry). A Retry-After from the
    /// receiver is a lower bound: the receiver knows when it will be ready, and waiting
    /// less only earns another refusal.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        // 2^31 seconds is already far beyond any sensible cap; saturate rather than overflow.
        let growth = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(growth).min(self.cap);
        let jittered = Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos() as u64));
        match retry_after {
            Some(after) => jittered.max(after.min(self.cap)),
            None => jittered,
        }
    }
}

/// How a notification's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        attempts: u32,
    },
    /// Given up: a permanent failure, or the last allowed attempt failed. For the
    /// dead-letter topic, with the last reason.
    Failed {
        attempts: u32,
        permanent: bool,
        reason: String,
    },
    /// Shutdown came while waiting to retry. Not delivered and not dead-lettered: the
    /// notification log still shows it as pending, so the next run sends it again.
    Interrupted {
        attempts: u32,
    },
}

/// Runs `attempt` (given the attempt number, from 1) until it delivers, fails permanently,
/// or `policy.max_attempts` attempts are spent, sleeping per the policy in between. The
/// waits end early on `shutdown`; an attempt already under way is left to finish, since
/// every channel bounds its own attempts with a timeout.
pub async fn deliver<F, Fut>(
    policy: &RetryPolicy,
    rng: &mut impl Rng,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Delivery
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (after, reason) = match attempt(attempts).await {
            Outcome::Delivered => return Delivery::Delivered { attempts },
            Outcome::Permanent { reason } => {
                return Delivery::Failed {
                    attempts,
                    permanent: true,
                    reason,
                };
            }
            Outcome::Retry { after, reason } => (after, reason),
        };
        if attempts >= max_attempts {
            return Delivery::Failed {
                attempts,
                permanent: false,
                reason,
            };
        }
        let wait = policy.delay(attempts - 1, after, rng);
        tracing::debug!(attempts, ?wait, %reason, "delivery failed, will retry");
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Delivery::Interrupted { attempts },
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rand::{SeedableRng, rngs::SmallRng};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    #[test]
    fn delays_stay_under_a_doubling_ceiling_up_to_the_cap() {
        let policy = policy();
        let mut rng = SmallRng::seed_from_u64(7);
        for retry in 0..12 {
            let ceiling = Duration::from_secs(1 << retry.min(6)).min(policy.cap);
            for _ in 0..200 {
                let delay = policy.delay(retry, None, &mut rng);
                assert!(delay <= ceiling, "retry {retry}: {delay:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        // Full jitter, not "ceiling plus a little": the samples cover [0, ceiling] evenly.
        let policy = policy();
        let mut rng = SmallRng::seed_from_u64(42);
        let samples: Vec<f64> = (0..10_000)
            .map(|_| policy.delay(4, None, &mut rng).as_secs_f64())
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let below_quarter = samples.iter().filter(|s| **s < 4.0).count();
        assert!((7.5..8.5).contains(&mean), "mean {mean}, expected about 8");
        assert!((2_200..2_800).contains(&below_quarter), "{below_quarter}");
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let policy = policy();
        let run = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..6)
                .map(|n| policy.delay(n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn retry_after_is_a_lower_bound_cut_to_the_cap() {
        let policy = policy();
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..100 {
            let delay = policy.delay(0, Some(Duration::from_secs(30)), &mut rng);
            assert_eq!(delay, Duration::from_secs(30), "base ceiling is 1 s");
            let capped = policy.delay(0, Some(Duration::from_secs(3600)), &mut rng);
            assert_eq!(capped, policy.cap);
            // A short Retry-After does not shorten a longer jittered wait.
            let late = policy.delay(10, Some(Duration::from_millis(1)), &mut rng);
            assert!(late >= Duration::from_millis(1) && late <= policy.cap);
        }
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let mut rng = SmallRng::seed_from_u64(9);
        let delay = policy().delay(u32::MAX, None, &mut rng);
        assert!(delay <= Duration::from_secs(60));
    }

    #[test]
    fn policy_follows_the_retry_config() {
        let config: RetryConfig =
            toml::from_str("initial_backoff = \"500ms\"\nmax_backoff = \"2m\"\nmax_attempts = 3")
                .expect("parses");
        let policy = RetryPolicy::from(&config);
        assert_eq!(
            policy,
            RetryPolicy {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(120),
                max_attempts: 3
            }
        );
        assert_eq!(RetryPolicy::default().cap, Duration::from_secs(300));
    }

    /// Plays back `outcomes` one per attempt and records when each attempt started.
    async fn run_script(
        outcomes: Vec<Outcome>,
        shutdown: &CancellationToken,
    ) -> (Delivery, Vec<Duration>) {
        let start = tokio::time::Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let mut rng = SmallRng::seed_from_u64(5);
        let delivery = deliver(&policy(), &mut rng, shutdown, |n| {
            times.lock().unwrap().push(start.elapsed());
            let outcome = outcomes[n as usize - 1].clone();
            async move { outcome }
        })
        .await;
        let times = times.lock().unwrap().clone();
        (delivery, times)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_delivered_honouring_retry_after() {
        let script = vec![
            Outcome::retry("503"),
            Outcome::Retry {
                after: Some(Duration::from_secs(20)),
                reason: "429".into(),
            },
            Outcome::Delivered,
        ];
        let (delivery, times) = run_script(script, &CancellationToken::new()).await;
        assert_eq!(delivery, Delivery::Delivered { attempts: 3 });
        assert_eq!(times.len(), 3);
        assert!(times[1] <= Duration::from_secs(1));
        assert!(times[2] - times[1] >= Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_stops_at_once() {
        let script = vec![Outcome::permanent("550 no such user"), Outcome::Delivered];
        let (delivery, times) = run_script(script, &CancellationToken::new()).await;
        assert_eq!(
            delivery,
            Delivery::Failed {
                attempts: 1,
                permanent: true,
                reason: "550 no such user".into()
            }
        );
        assert_eq!(times.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_with_the_last_reason() {
        let script = (1..=9)
            .map(|n| Outcome::retry(format!("try {n}")))
            .collect();
        let (delivery, times) = run_script(script, &CancellationToken::new()).await;
        assert_eq!(
            delivery,
            Delivery::Failed {
                attempts: 5,
                permanent: false,
                reason: "try 5".into()
            }
        );
        assert_eq!(times.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let script = vec![Outcome::retry("timeout"), Outcome::Delivered];
        let (delivery, times) = run_script(script, &shutdown).await;
        assert_eq!(delivery, Delivery::Interrupted { attempts: 1 });
        assert_eq!(times.len(), 1);
    }
}
