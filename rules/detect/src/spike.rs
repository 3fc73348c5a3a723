//! The spike ratio of ElastAlert's `spike` rule type: the count of the current window against
//! the count of the window before it (the reference), alarming when one is `spike_height`
//! times the other, once both windows hold their minimum counts.
//!
//! ElastAlert's `find_matches(ref, cur)`, for counts: no match if `cur < threshold_cur` or
//! `ref < threshold_ref`; a spike up if `cur >= ref * spike_height`, a spike down if
//! `cur <= ref / spike_height`. With both thresholds at their default of 0 an empty reference
//! makes any current count a spike up (and two empty windows are both), as in ElastAlert: set
//! `threshold_ref` or `threshold_cur` to at least 1 to ask for data.

use crate::Error;

/// Which direction counts as a spike (ElastAlert's `spike_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeType {
    /// The current window is `spike_height` times the reference or more.
    Up,
    /// The current window is the reference divided by `spike_height` or less.
    Down,
    /// Either.
    Both,
}

impl SpikeType {
    /// ElastAlert's names: `up`, `down`, `both`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "up" => Self::Up,
            "down" => Self::Down,
            "both" => Self::Both,
            _ => return None,
        })
    }
}

/// ElastAlert requires a spike height and gives none; 3 is its example rule's, and the
/// route-spike rule's factor.
pub const DEFAULT_SPIKE_HEIGHT: f64 = 3.0;

/// The spike rule's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeParams {
    /// The ratio that makes a spike; greater than 0 (below 1 up and down swap meaning, as in
    /// ElastAlert). Default [`DEFAULT_SPIKE_HEIGHT`].
    pub spike_height: f64,
    /// Default [`SpikeType::Up`].
    pub spike_type: SpikeType,
    /// No alarm while the reference window holds fewer than this. Default 0, as ElastAlert.
    pub threshold_ref: f64,
    /// No alarm while the current window holds fewer than this. Default 0, as ElastAlert.
    pub threshold_cur: f64,
}

impl Default for SpikeParams {
    fn default() -> Self {
        Self {
            spike_height: DEFAULT_SPIKE_HEIGHT,
            spike_type: SpikeType::Up,
            threshold_ref: 0.0,
            threshold_cur: 0.0,
        }
    }
}

/// The verdict on one pair of windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub alarm: bool,
    /// `cur / ref`; `None` when the reference is empty.
    pub ratio: Option<f64>,
    /// The current count at or above which it is a spike up, minimum count included:
    /// `max(ref * spike_height, threshold_cur)`.
    pub upper: f64,
    /// The current count at or below which it is a spike down: `ref / spike_height`.
    pub lower: f64,
}

/// Compares the current window's count `cur` with the reference window's `reference`.
pub fn spike(cur: f64, reference: f64, params: &SpikeParams) -> Result<Spike, Error> {
    if !(params.spike_height > 0.0 && params.spike_height.is_finite()) {
        return Err(Error::invalid("spike-height", "must be a number above 0"));
    }
    for (flag, value) in [
        ("threshold-ref", params.threshold_ref),
        ("threshold-cur", params.threshold_cur),
    ] {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(Error::invalid(flag, "must be a number >= 0"));
        }
    }
    for (name, value) in [("cur", cur), ("ref", reference)] {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(Error::invalid(
                name,
                format!("{value} is not a count (finite, >= 0)"),
            ));
        }
    }
    let height = params.spike_height;
    let enough = cur >= params.threshold_cur && reference >= params.threshold_ref;
    let up = cur >= reference * height;
    let down = cur <= reference / height;
    let alarm = enough
        && match params.spike_type {
            SpikeType::Up => up,
            SpikeType::Down => down,
            SpikeType::Both => up || down,
        };
    Ok(Spike {
        alarm,
        ratio: (reference > 0.0).then(|| cur / reference),
        upper: (reference * height).max(params.threshold_cur),
        lower: reference / height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(spike_type: SpikeType, threshold_ref: f64, threshold_cur: f64) -> SpikeParams {
        SpikeParams {
            spike_height: 4.0,
            spike_type,
            threshold_ref,
            threshold_cur,
        }
    }

    #[test]
    fn up_down_and_both() {
        let up = with(SpikeType::Up, 0.0, 0.0);
        assert!(
            spike(40.0, 10.0, &up).unwrap().alarm,
            "exactly 4x is a spike"
        );
        assert!(!spike(39.0, 10.0, &up).unwrap().alarm);
        assert!(
            !spike(2.0, 10.0, &up).unwrap().alarm,
            "a dip is not a spike up"
        );
        let down = with(SpikeType::Down, 0.0, 0.0);
        assert!(
            spike(2.5, 10.0, &down).unwrap().alarm,
            "exactly 1/4 is a dip"
        );
        assert!(!spike(3.0, 10.0, &down).unwrap().alarm);
        assert!(!spike(40.0, 10.0, &down).unwrap().alarm);
        let both = with(SpikeType::Both, 0.0, 0.0);
        assert!(spike(40.0, 10.0, &both).unwrap().alarm);
        assert!(spike(2.0, 10.0, &both).unwrap().alarm);
        assert!(!spike(20.0, 10.0, &both).unwrap().alarm);
        let s = spike(40.0, 10.0, &both).unwrap();
        assert_eq!((s.ratio, s.upper, s.lower), (Some(4.0), 40.0, 2.5));
    }

    /// ElastAlert's documented example: "at least 15 events within two hours and less than
    /// a quarter of that number in the two hours before" (spike_height 4, threshold_cur 15).
    #[test]
    fn the_minimum_counts_hold_back_small_windows() {
        let p = with(SpikeType::Up, 0.0, 15.0);
        assert!(
            !spike(10.0, 0.0, &p).unwrap().alarm,
            "threshold_cur not met"
        );
        assert!(!spike(15.0, 5.0, &p).unwrap().alarm, "spike_height not met");
        assert!(spike(45.0, 10.0, &p).unwrap().alarm);
        assert_eq!(spike(1.0, 0.0, &p).unwrap().upper, 15.0);
        let p = with(SpikeType::Down, 20.0, 0.0);
        assert!(
            !spike(0.0, 19.0, &p).unwrap().alarm,
            "threshold_ref not met"
        );
        assert!(spike(0.0, 20.0, &p).unwrap().alarm);
    }

    #[test]
    fn an_empty_reference_is_a_spike_unless_a_minimum_is_set() {
        let s = spike(3.0, 0.0, &SpikeParams::default()).unwrap();
        assert!(s.alarm);
        assert_eq!(s.ratio, None);
        assert!(spike(0.0, 0.0, &SpikeParams::default()).unwrap().alarm);
        let p = SpikeParams {
            threshold_ref: 1.0,
            ..SpikeParams::default()
        };
        assert!(!spike(3.0, 0.0, &p).unwrap().alarm);
    }

    #[test]
    fn bad_options_name_themselves() {
        let p = SpikeParams {
            spike_height: 0.0,
            ..SpikeParams::default()
        };
        assert!(matches!(spike(1.0, 1.0, &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "spike-height"));
        let p = SpikeParams {
            threshold_cur: -1.0,
            ..SpikeParams::default()
        };
        assert!(matches!(spike(1.0, 1.0, &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "threshold-cur"));
        assert!(matches!(spike(f64::NAN, 1.0, &SpikeParams::default()),
            Err(Error::InvalidParameter { flag, .. }) if flag == "cur"));
    }
}
