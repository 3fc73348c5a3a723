//! The ingest side of idempotency: `event_id`s accepted within a window are remembered, so
//! a re-sent event is acknowledged again but written once. The rules stage deduplicates by
//! `event_id` too; this keeps the topic itself clean for every other reader.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

/// What a claim on an `event_id` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen: the caller writes it, then [`Dedup::confirm`]s or [`Dedup::release`]s.
    New,
    /// Accepted before, within the window.
    Duplicate,
    /// Another request is writing it right now.
    InFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Done,
}

/// Remembered event ids, bounded in time and in count.
#[derive(Debug)]
pub struct Dedup {
    window_ms: i64,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<String, State>,
    /// Confirmed ids in the order they were accepted, for eviction.
    order: VecDeque<(i64, String)>,
}

impl Dedup {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window_ms: window.as_millis() as i64,
            capacity,
            inner: Mutex::default(),
        }
    }

    pub fn claim(&self, id: &str) -> Claim {
        let mut inner = self.lock();
        match inner.ids.get(id) {
            Some(State::Done) => Claim::Duplicate,
            Some(State::InFlight) => Claim::InFlight,
            None => {
                inner.ids.insert(id.to_owned(), State::InFlight);
                Claim::New
            }
        }
    }

    /// The claimed id was acknowledged by the brokers at `now_ms`.
    pub fn confirm(&self, id: &str, now_ms: i64) {
        self.remember(id, now_ms);
    }

    /// The claimed id was not written; a later attempt may claim it again.
    pub fn release(&self, id: &str) {
        let mut inner = self.lock();
        if inner.ids.get(id) == Some(&State::InFlight) {
            inner.ids.remove(id);
        }
    }

    /// Records `id` as accepted at `at_ms` (also used to rebuild the window from the topic).
    pub fn remember(&self, id: &str, at_ms: i64) {
        let mut inner = self.lock();
        inner.ids.insert(id.to_owned(), State::Done);
        inner.order.push_back((at_ms, id.to_owned()));
        self.evict(&mut inner, at_ms);
    }

    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms as u64)
    }

    fn evict(&self, inner: &mut Inner, now_ms: i64) {
        let oldest_kept = now_ms - self.window_ms;
        while let Some((at, _)) = inner.order.front() {
            if *at >= oldest_kept && inner.order.len() <= self.capacity {
                break;
            }
            if let Some((_, id)) = inner.order.pop_front()
                && inner.ids.get(&id) == Some(&State::Done)
            {
                inner.ids.remove(&id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn claim_confirm_and_release() {
        let d = Dedup::new(Duration::from_secs(86_400), 10);
        assert_eq!(d.claim("a"), Claim::New);
        assert_eq!(d.claim("a"), Claim::InFlight);
        d.release("a");
        assert_eq!(d.claim("a"), Claim::New);
        d.confirm("a", 0);
        assert_eq!(d.claim("a"), Claim::Duplicate);
    }

    #[test]
    fn forgets_by_age_and_by_count() {
        let d = Dedup::new(Duration::from_secs(86_400), 2);
        d.remember("old", 0);
        d.remember("b", 2 * DAY);
        assert_eq!(d.claim("old"), Claim::New, "older than the window");
        d.release("old");
        d.remember("c", 2 * DAY);
        d.remember("e", 2 * DAY);
        assert_eq!(d.len(), 2);
        assert_eq!(d.claim("b"), Claim::New, "beyond the capacity");
        assert_eq!(d.claim("e"), Claim::Duplicate);
    }
}
