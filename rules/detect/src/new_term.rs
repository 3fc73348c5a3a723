//! New term: a value (a crossing point, a nationality on a route) first seen within the last
//! few days, as ElastAlert's `new_term` rule type finds one. ElastAlert first learns the
//! terms of a past window (`terms_window_size`, 30 days by default) and only then calls a
//! term new; here the same guard is a minimum of days watched before the first sighting, so
//! a term is not "new" merely because the watch has just begun.

use crate::Error;

/// New means first seen today.
pub const DEFAULT_WITHIN_DAYS: i64 = 1;
/// ElastAlert's default `terms_window_size`.
pub const DEFAULT_MIN_HISTORY_DAYS: i64 = 30;

/// The rule's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewTermParams {
    /// A term first seen fewer than this many days before today (today is 0 days) is new;
    /// at least 1. Default [`DEFAULT_WITHIN_DAYS`].
    pub within_days: i64,
    /// Days watched before the first sighting needed to call it new; 0 trusts any history.
    /// Default [`DEFAULT_MIN_HISTORY_DAYS`].
    pub min_history_days: i64,
}

impl Default for NewTermParams {
    fn default() -> Self {
        Self {
            within_days: DEFAULT_WITHIN_DAYS,
            min_history_days: DEFAULT_MIN_HISTORY_DAYS,
        }
    }
}

/// The verdict on one term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewTerm {
    pub alarm: bool,
    /// Days from the first sighting to today (0: first seen today); `None` if never seen.
    pub age_days: Option<i64>,
}

/// Whether a term first seen on day `first_seen` (days since any epoch; `None`: never) is new
/// on day `today`, for a watch that has covered `history_days` days up to and including today.
pub fn new_term(
    first_seen: Option<i64>,
    today: i64,
    history_days: i64,
    params: &NewTermParams,
) -> Result<NewTerm, Error> {
    if params.within_days < 1 {
        return Err(Error::invalid("within-days", "must be at least 1"));
    }
    if params.min_history_days < 0 {
        return Err(Error::invalid("min-history-days", "must be 0 or more"));
    }
    if history_days < 0 {
        return Err(Error::invalid("history-days", "must be 0 or more"));
    }
    let age_days = first_seen.map(|first| today.saturating_sub(first));
    let alarm = age_days.is_some_and(|age| {
        let watched_before = history_days.saturating_sub(1).saturating_sub(age);
        (0..params.within_days).contains(&age) && watched_before >= params.min_history_days
    });
    Ok(NewTerm { alarm, age_days })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_seen_within_the_days() {
        let p = NewTermParams {
            within_days: 3,
            min_history_days: 0,
        };
        let at = |first| new_term(first, 100, 365, &p).unwrap();
        assert_eq!(
            at(Some(100)),
            NewTerm {
                alarm: true,
                age_days: Some(0)
            }
        );
        assert!(at(Some(98)).alarm);
        assert_eq!(
            at(Some(97)),
            NewTerm {
                alarm: false,
                age_days: Some(3)
            }
        );
        assert_eq!(
            at(None),
            NewTerm {
                alarm: false,
                age_days: None
            }
        );
        assert!(
            !at(Some(101)).alarm,
            "seen after today: not a sighting of today"
        );
    }

    #[test]
    fn nothing_is_new_before_the_watch_has_history() {
        let p = NewTermParams::default();
        // Watched 31 days including today: 30 days before a first sighting today.
        assert!(new_term(Some(100), 100, 31, &p).unwrap().alarm);
        assert!(!new_term(Some(100), 100, 30, &p).unwrap().alarm);
        // Seen yesterday is not new with the default of "today".
        assert!(!new_term(Some(99), 100, 365, &p).unwrap().alarm);
    }

    #[test]
    fn bad_options_name_themselves() {
        let p = NewTermParams {
            within_days: 0,
            ..NewTermParams::default()
        };
        assert!(matches!(new_term(Some(1), 1, 1, &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "within-days"));
        assert!(
            matches!(new_term(Some(1), 1, -1, &NewTermParams::default()),
            Err(Error::InvalidParameter { flag, .. }) if flag == "history-days")
        );
    }
}
