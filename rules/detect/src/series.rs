//! What every detector returns per time point, the range of time points it evaluates, and
//! the summary statistics computed the way R computes them.

use crate::Error;

/// One detector's verdict at one time point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// 1-based position in the series.
    pub t: usize,
    /// The count at `t`.
    pub observed: f64,
    /// The threshold the count is held against; `None` where the method yields none (R's
    /// `NA`, including `NaN` from a zero standard deviation).
    pub upperbound: Option<f64>,
    /// Whether the method raises an alarm at `t`; `None` where R gives `NA`.
    pub alarm: Option<bool>,
}

impl Evaluation {
    /// A verdict from R-style numbers: a `NaN` bound or alarm is `NA`.
    pub(crate) fn new(t: usize, observed: f64, upperbound: f64, alarm: Option<bool>) -> Self {
        Self {
            t,
            observed,
            upperbound: (!upperbound.is_nan()).then_some(upperbound),
            alarm,
        }
    }
}

/// The time points to evaluate, 1-based and inclusive at both ends (R's `range = from:to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: usize,
    pub to: usize,
}

impl TimeRange {
    pub fn new(from: usize, to: usize) -> Self {
        Self { from, to }
    }

    /// This range, or the method's default (`default_from` to the end), checked against a
    /// series of `n` points and the first point the method can evaluate.
    pub(crate) fn resolve(
        range: Option<Self>,
        default_from: usize,
        first_possible: usize,
        n: usize,
    ) -> Result<Self, Error> {
        let range = match range {
            Some(range) => range,
            None if default_from > n => {
                return Err(Error::TooShort(format!(
                    "the method needs {} points of history before its first evaluation and \
                     the series has {n}",
                    default_from - 1
                )));
            }
            None => Self::new(default_from, n),
        };
        if range.from < 1 || range.from > range.to {
            return Err(Error::invalid(
                "range",
                format!("{}:{} is empty or starts before 1", range.from, range.to),
            ));
        }
        if range.to > n {
            return Err(Error::TooShort(format!(
                "the range ends at {} but the series has {n} points",
                range.to
            )));
        }
        if range.from < first_possible {
            return Err(Error::TooShort(format!(
                "the method needs {} points of history, so the range must start at {} or \
                 later (it starts at {})",
                first_possible - 1,
                first_possible,
                range.from
            )));
        }
        Ok(range)
    }

    pub(crate) fn iter(self) -> std::ops::RangeInclusive<usize> {
        self.from..=self.to
    }
}

/// Every count finite and non-negative, or the first that is not (1-based).
pub(crate) fn check_counts(counts: &[f64]) -> Result<(), Error> {
    match counts.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
        Some(i) => Err(Error::InvalidCount {
            t: i + 1,
            value: counts[i],
        }),
        None => Ok(()),
    }
}

/// The arithmetic mean; `NaN` for no values.
pub(crate) fn mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    // R refines the mean with a second pass; it keeps sums of large counts exact.
    m + x.iter().map(|v| v - m).sum::<f64>() / n
}

/// The sample standard deviation (denominator n - 1); `NaN` for fewer than two values.
pub(crate) fn sd(x: &[f64]) -> f64 {
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() as f64 - 1.0)).sqrt()
}

/// R's `pmax(a, b)` for two numbers: `NaN` if either is, unlike `f64::max`.
pub(crate) fn pmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// R's `a > b` as a logical: `NA` if either side is `NaN`.
pub(crate) fn greater(a: f64, b: f64) -> Option<bool> {
    (!a.is_nan() && !b.is_nan()).then_some(a > b)
}
