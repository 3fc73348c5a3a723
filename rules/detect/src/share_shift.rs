//! Share shift: how far a sub-key's share of a total moved between two windows (a
//! nationality's share of a route, week on week), tested by the pooled two-proportion z-test
//! (R's `prop.test(c(x1, x2), c(n1, n2), correct = FALSE)`), with minimum counts so that a
//! handful of cases cannot make a shift.
//!
//! The test counts units as independent. Persons come in groups, so a share of persons
//! varies more than the test assumes and its p-values are too small; a share of events is
//! closer to what the test expects. Either way, the minimum shift is what an analyst should
//! tune first.

use crate::{Error, dist::pnorm};

/// The direction of shift that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The share rose.
    Greater,
    /// The share fell.
    Less,
    /// Either.
    TwoSided,
}

impl Alternative {
    /// R's names (`greater`, `less`, `two.sided`), and `two_sided`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "greater" => Self::Greater,
            "less" => Self::Less,
            "two.sided" | "two_sided" | "two-sided" => Self::TwoSided,
            _ => return None,
        })
    }
}

/// The conventional level of a single test.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Below about 30 units a window's share is too coarse for the normal approximation.
pub const DEFAULT_MIN_TOTAL: f64 = 30.0;
/// The z-test's rule of thumb: at least 5 of the sub-key.
pub const DEFAULT_MIN_PART: f64 = 5.0;

/// The test's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShareShiftParams {
    /// The smallest shift (a fraction: 0.2 is 20 percentage points) that alarms, in the
    /// direction of `alternative`. Default 0: any significant shift.
    pub min_shift: f64,
    /// The level the p-value must be below. Default [`DEFAULT_ALPHA`].
    pub alpha: f64,
    /// Default [`Alternative::Greater`].
    pub alternative: Alternative,
    /// Both windows' totals must reach this. Default [`DEFAULT_MIN_TOTAL`].
    pub min_total: f64,
    /// The sub-key's count must reach this in the window its share is measured from: the
    /// current one for a rise, the earlier one for a fall, the larger of the two for either.
    /// Default [`DEFAULT_MIN_PART`].
    pub min_part: f64,
}

impl Default for ShareShiftParams {
    fn default() -> Self {
        Self {
            min_shift: 0.0,
            alpha: DEFAULT_ALPHA,
            alternative: Alternative::Greater,
            min_total: DEFAULT_MIN_TOTAL,
            min_part: DEFAULT_MIN_PART,
        }
    }
}

/// A sub-key's count and the total it is a share of, in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    pub part: f64,
    pub total: f64,
}

/// The shift and its test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShareShift {
    /// The current share; `None` if the current total is 0.
    pub share: Option<f64>,
    /// The earlier share; `None` if the earlier total is 0.
    pub share_before: Option<f64>,
    /// `share - share_before`.
    pub shift: Option<f64>,
    /// The z statistic of the shift; `None` without both shares, or when the pooled share is
    /// 0 or 1 (then both shares are equal and nothing moved).
    pub z: Option<f64>,
    /// Its p-value for `alternative`.
    pub p_value: Option<f64>,
    /// Minimum counts met, shift at least `min_shift` in the tested direction, and
    /// `p_value < alpha`.
    pub alarm: bool,
}

/// Tests the shift from `before` to `now`.
pub fn share_shift(
    now: Proportion,
    before: Proportion,
    params: &ShareShiftParams,
) -> Result<ShareShift, Error> {
    check(params)?;
    for (name, p) in [("now", now), ("before", before)] {
        if !(p.part >= 0.0 && p.total.is_finite() && p.part <= p.total) {
            return Err(Error::invalid(
                name,
                format!("{} of {} is not a count within its total", p.part, p.total),
            ));
        }
    }
    let share = |p: Proportion| (p.total > 0.0).then(|| p.part / p.total);
    let (share_now, share_before) = (share(now), share(before));
    let shift = share_now.zip(share_before).map(|(a, b)| a - b);
    let pooled = (now.part + before.part) / (now.total + before.total);
    let z = shift.and_then(|d| {
        let se = (pooled * (1.0 - pooled) * (1.0 / now.total + 1.0 / before.total)).sqrt();
        (se > 0.0).then(|| d / se)
    });
    let p_value = z.map(|z| match params.alternative {
        Alternative::Greater => pnorm(z, false),
        Alternative::Less => pnorm(z, true),
        Alternative::TwoSided => (2.0 * pnorm(z.abs(), false)).min(1.0),
    });
    let part = match params.alternative {
        Alternative::Greater => now.part,
        Alternative::Less => before.part,
        Alternative::TwoSided => now.part.max(before.part),
    };
    let enough = now.total >= params.min_total
        && before.total >= params.min_total
        && part >= params.min_part;
    let far_enough = shift.is_some_and(|d| match params.alternative {
        Alternative::Greater => d >= params.min_shift,
        Alternative::Less => -d >= params.min_shift,
        Alternative::TwoSided => d.abs() >= params.min_shift,
    });
    let significant = p_value.is_some_and(|p| p < params.alpha);
    Ok(ShareShift {
        share: share_now,
        share_before,
        shift,
        z,
        p_value,
        alarm: enough && far_enough && significant,
    })
}

fn check(params: &ShareShiftParams) -> Result<(), Error> {
    if !(params.min_shift >= 0.0 && params.min_shift <= 1.0) {
        return Err(Error::invalid(
            "min-shift",
            "must lie in [0, 1] (a fraction: 0.2 is 20 points)",
        ));
    }
    if !(params.alpha > 0.0 && params.alpha <= 1.0) {
        return Err(Error::invalid("alpha", "must lie in (0, 1]"));
    }
    for (flag, value) in [
        ("min-total", params.min_total),
        ("min-part", params.min_part),
    ] {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(Error::invalid(flag, "must be a number >= 0"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(part: f64, total: f64) -> Proportion {
        Proportion { part, total }
    }

    fn test(alternative: Alternative) -> ShareShiftParams {
        ShareShiftParams {
            alternative,
            ..ShareShiftParams::default()
        }
    }

    /// R 4: `prop.test(c(30, 20), c(100, 100), correct = FALSE)`: X-squared 8/3, p-value
    /// 0.10247043485974931 (two-sided), 0.051235217429874719 (greater); p-values to 1e-10
    /// relative (statrs' normal tail).
    #[test]
    fn matches_prop_test() {
        let r = share_shift(
            of(30.0, 100.0),
            of(20.0, 100.0),
            &test(Alternative::TwoSided),
        )
        .unwrap();
        assert!((r.shift.unwrap() - 0.1).abs() < 1e-15);
        assert!((r.z.unwrap().powi(2) - 8.0 / 3.0).abs() < 1e-12);
        assert!((r.p_value.unwrap() / 0.102_470_434_859_749_31 - 1.0).abs() < 1e-10);
        assert!(!r.alarm);
        let r = share_shift(
            of(30.0, 100.0),
            of(20.0, 100.0),
            &test(Alternative::Greater),
        )
        .unwrap();
        assert!((r.p_value.unwrap() / 0.051_235_217_429_874_72 - 1.0).abs() < 1e-10);
        assert!(!r.alarm, "p just above 0.05");
        // prop.test(c(120, 300), c(400, 500), correct = FALSE, alternative = "less"):
        // p-value 1.5625000930385102e-19, X-squared 80.357...
        let r = share_shift(of(120.0, 400.0), of(300.0, 500.0), &test(Alternative::Less)).unwrap();
        assert!((r.p_value.unwrap() / 1.562_500_093_038_510_2e-19 - 1.0).abs() < 1e-9);
        assert!((r.z.unwrap() + 8.964_214_570_007_952).abs() < 1e-12);
        assert!(r.alarm);
        let r = share_shift(
            of(120.0, 400.0),
            of(300.0, 500.0),
            &test(Alternative::Greater),
        )
        .unwrap();
        assert!(!r.alarm, "a fall is not a rise");
        assert!(r.p_value.unwrap() > 0.999_999);
    }

    #[test]
    fn minimum_shift_and_counts() {
        let p = ShareShiftParams {
            min_shift: 0.2,
            ..ShareShiftParams::default()
        };
        // 60% from 30%: a rise of 30 points, highly significant.
        assert!(
            share_shift(of(120.0, 200.0), of(60.0, 200.0), &p)
                .unwrap()
                .alarm
        );
        // 45% from 30%: significant, but under 20 points.
        assert!(
            !share_shift(of(90.0, 200.0), of(60.0, 200.0), &p)
                .unwrap()
                .alarm
        );
        // A big shift on a tiny total: held back by min_total (30).
        let small = share_shift(of(20.0, 20.0), of(0.0, 20.0), &p).unwrap();
        assert!(small.p_value.unwrap() < 1e-6 && !small.alarm);
        // ... and by min_part (5) for the current part.
        let p = ShareShiftParams {
            min_total: 0.0,
            ..p
        };
        assert!(
            share_shift(of(20.0, 20.0), of(0.0, 20.0), &p)
                .unwrap()
                .alarm
        );
        assert!(!share_shift(of(4.0, 4.0), of(0.0, 40.0), &p).unwrap().alarm);
    }

    #[test]
    fn empty_windows_give_no_statistic() {
        let p = ShareShiftParams::default();
        let r = share_shift(of(0.0, 0.0), of(5.0, 50.0), &p).unwrap();
        assert_eq!(
            (r.share, r.shift, r.z, r.p_value, r.alarm),
            (None, None, None, None, false)
        );
        assert_eq!(r.share_before, Some(0.1));
        let r = share_shift(of(0.0, 50.0), of(0.0, 50.0), &p).unwrap();
        assert_eq!((r.shift, r.z, r.alarm), (Some(0.0), None, false));
    }

    #[test]
    fn bad_input_names_itself() {
        let p = ShareShiftParams::default();
        assert!(matches!(share_shift(of(6.0, 5.0), of(1.0, 5.0), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "now"));
        assert!(matches!(share_shift(of(1.0, 5.0), of(-1.0, 5.0), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "before"));
        let p = ShareShiftParams {
            min_shift: 20.0,
            ..p
        };
        assert!(matches!(share_shift(of(1.0, 5.0), of(1.0, 5.0), &p),
            Err(Error::InvalidParameter { flag, .. }) if flag == "min-shift"));
    }
}
