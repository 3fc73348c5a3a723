//! Circuit breaker of one delivery endpoint (a webhook origin, the SMTP relay): after
//! `breaker_failures` failed attempts in a row the endpoint rests for `breaker_open_for`,
//! and attempts in that time fail at once instead of waiting out a timeout each, so
//! a dead endpoint costs the others nothing and recovers without a storm. Pure: time is
//! passed in.

use std::time::{Duration, Instant};

/// One endpoint's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    /// Failed attempts in a row.
    failures: u32,
    /// Open until then; after it, the next attempt is a trial (half-open).
    open_until: Option<Instant>,
}

/// What the breaker says to an attempt about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Closed,
    /// The endpoint rests for this much longer: fail the attempt without trying.
    Open(Duration),
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: 0,
            open_until: None,
        }
    }

    pub fn check(&self, now: Instant) -> Gate {
        match self.open_until {
            Some(until) if now < until => Gate::Open(until - now),
            _ => Gate::Closed,
        }
    }

    /// The endpoint answered (a 4xx or a 5xx SMTP reply is an answer too: the endpoint
    /// is up, the message is the problem).
    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// The endpoint failed to answer in time or at all, or answered "try later". Returns
    /// true when this failure opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        // A failed trial after a rest opens it again at once.
        if self.failures >= self.threshold {
            let was_open = self.open_until.is_some_and(|until| now < until);
            self.open_until = Some(now + self.open_for);
            return !was_open;
        }
        false
    }

    pub fn is_open(&self, now: Instant) -> bool {
        matches!(self.check(now), Gate::Open(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REST: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_failures_in_a_row_and_rests() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, REST);
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert_eq!(b.check(t0), Gate::Closed);
        assert!(b.failure(t0), "the third failure opens it");
        assert_eq!(
            b.check(t0 + Duration::from_secs(10)),
            Gate::Open(REST - Duration::from_secs(10))
        );
        // After the rest, one trial goes through.
        assert_eq!(b.check(t0 + REST), Gate::Closed);
    }

    #[test]
    fn a_failed_trial_opens_it_again_and_a_success_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, REST);
        b.failure(t0);
        b.failure(t0);
        let trial = t0 + REST;
        assert_eq!(b.check(trial), Gate::Closed);
        assert!(b.failure(trial), "reopened");
        assert!(b.is_open(trial + Duration::from_secs(1)));
        b.success();
        assert_eq!(b.check(trial + Duration::from_secs(1)), Gate::Closed);
        assert!(!b.failure(trial), "the count starts again");
    }

    #[test]
    fn successes_in_between_keep_it_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, REST);
        for _ in 0..10 {
            b.failure(t0);
            b.success();
        }
        assert!(!b.is_open(t0));
    }
}
