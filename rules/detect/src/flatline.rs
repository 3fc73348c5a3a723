//! Flatline: a key that has gone quiet, with the semantics of ElastAlert's `flatline` rule
//! type: an alarm when fewer than `threshold` events fell within the `timeframe` ending now,
//! once the key has been watched for a whole timeframe since its first event.
//!
//! With the default threshold of 1 the count is known from the last sighting alone (no
//! event in the timeframe is a silence at least as long as the timeframe), so times at
//! millisecond precision are enough; a threshold above 1 needs the caller's count.

use crate::Error;

const HOUR_MS: i64 = 3_600_000;
/// Three days: the reporting-silence rule's timeframe.
pub const DEFAULT_TIMEFRAME_MS: i64 = 72 * HOUR_MS;
/// Fewer than one event: none.
pub const DEFAULT_THRESHOLD: f64 = 1.0;

/// The rule's options (ElastAlert's `timeframe` and `threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatlineParams {
    /// Positive. Default [`DEFAULT_TIMEFRAME_MS`].
    pub timeframe_ms: i64,
    /// Alarm when the timeframe holds fewer events than this; above 0. Default
    /// [`DEFAULT_THRESHOLD`].
    pub threshold: f64,
}

impl Default for FlatlineParams {
    fn default() -> Self {
        Self {
            timeframe_ms: DEFAULT_TIMEFRAME_MS,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// What is known of a key's activity at `now` (milliseconds, any epoch).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Activity {
    pub now: i64,
    /// The key's first event; `None` skips ElastAlert's wait of one timeframe after it.
    pub first_seen: Option<i64>,
    /// The key's latest event; `None` if never seen.
    pub last_seen: Option<i64>,
    /// Events in the timeframe ending at `now`, as the caller counted them; needed when the
    /// threshold is above 1.
    pub count: Option<f64>,
}

/// The verdict on one key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flatline {
    pub alarm: bool,
    /// Events in the timeframe: the caller's count, or 0 when the last sighting is a whole
    /// timeframe back; `None` when it is only known to be at least 1.
    pub count: Option<f64>,
    /// `now - last_seen`; `None` if never seen.
    pub silent_ms: Option<i64>,
}

/// Whether the key described by `activity` has flatlined.
pub fn flatline(activity: &Activity, params: &FlatlineParams) -> Result<Flatline, Error> {
    if params.timeframe_ms <= 0 {
        return Err(Error::invalid("timeframe", "must be longer than 0"));
    }
    if !(params.threshold > 0.0 && params.threshold.is_finite()) {
        return Err(Error::invalid("threshold", "must be a number above 0"));
    }
    if let Some(count) = activity.count
        && !(count >= 0.0 && count.is_finite())
    {
        return Err(Error::invalid("count", format!("{count} is not a count")));
    }
    let now = activity.now;
    let silent_ms = activity.last_seen.map(|last| now.saturating_sub(last));
    let silent = silent_ms.is_none_or(|s| s >= params.timeframe_ms);
    let count = match activity.count {
        Some(count) => Some(count),
        None if params.threshold > 1.0 => {
            return Err(Error::invalid(
                "count",
                "a threshold above 1 needs the count of events in the timeframe",
            ));
        }
        None => silent.then_some(0.0),
    };
    // A key never seen is not being watched; one seen is watched from its first event.
    let watched = match (activity.first_seen, activity.last_seen) {
        (Some(first), _) => now.saturating_sub(first) >= params.timeframe_ms,
        (None, Some(_)) => true,
        (None, None) => false,
    };
    let alarm = watched && count.is_some_and(|c| c < params.threshold);
    Ok(Flatline {
        alarm,
        count,
        silent_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * HOUR_MS;

    fn seen(first: Option<i64>, last: Option<i64>, count: Option<f64>) -> Activity {
        Activity {
            now: NOW,
            first_seen: first,
            last_seen: last,
            count,
        }
    }

    #[test]
    fn silence_of_a_timeframe_is_a_flatline() {
        let p = FlatlineParams::default();
        let at = |hours_ago: i64| {
            flatline(&seen(Some(0), Some(NOW - hours_ago * HOUR_MS), None), &p).unwrap()
        };
        assert_eq!(
            at(72),
            Flatline {
                alarm: true,
                count: Some(0.0),
                silent_ms: Some(72 * HOUR_MS)
            }
        );
        assert_eq!(
            at(71),
            Flatline {
                alarm: false,
                count: None,
                silent_ms: Some(71 * HOUR_MS)
            }
        );
    }

    #[test]
    fn no_alarm_until_watched_for_a_timeframe() {
        let p = FlatlineParams::default();
        let first = NOW - 80 * HOUR_MS;
        assert!(
            flatline(&seen(Some(first), Some(first), None), &p)
                .unwrap()
                .alarm
        );
        let first = NOW - 71 * HOUR_MS;
        assert!(
            !flatline(&seen(Some(first), Some(first), None), &p)
                .unwrap()
                .alarm
        );
        // Never seen: nothing to watch.
        assert!(!flatline(&seen(None, None, None), &p).unwrap().alarm);
        // No first sighting given: the wait is skipped.
        let last = NOW - 100 * HOUR_MS;
        assert!(flatline(&seen(None, Some(last), None), &p).unwrap().alarm);
    }

    #[test]
    fn a_threshold_above_one_counts() {
        let p = FlatlineParams {
            timeframe_ms: 24 * HOUR_MS,
            threshold: 10.0,
        };
        let last = Some(NOW - HOUR_MS);
        assert!(flatline(&seen(Some(0), last, Some(9.0)), &p).unwrap().alarm);
        assert!(
            !flatline(&seen(Some(0), last, Some(10.0)), &p)
                .unwrap()
                .alarm
        );
        assert!(matches!(flatline(&seen(Some(0), last, None), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "count"));
    }

    #[test]
    fn bad_options_name_themselves() {
        let p = FlatlineParams {
            timeframe_ms: 0,
            ..FlatlineParams::default()
        };
        assert!(matches!(flatline(&seen(None, None, None), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "timeframe"));
        let p = FlatlineParams {
            threshold: 0.0,
            ..FlatlineParams::default()
        };
        assert!(matches!(flatline(&seen(None, None, None), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "threshold"));
    }
}
