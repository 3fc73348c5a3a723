//! An EWMA control chart with exact, time-varying limits (Montgomery, *Introduction to
//! Statistical Quality Control*, 6th ed., §9.2). R's surveillance package has no EWMA, so
//! the definition is ours:
//!
//! - the in-control mean `mu0` and standard deviation `sigma` (denominator n - 1) are those
//!   of the reference period, every value before the range;
//! - `z_0 = mu0` and `z_i = lambda x_i + (1 - lambda) z_{i-1}` for the i-th point of the range;
//! - the upper control limit is
//!   `UCL_i = mu0 + L sigma sqrt(lambda / (2 - lambda) (1 - (1 - lambda)^(2 i)))`;
//! - the alarm is `z_i > UCL_i`; the chart is not reset after an alarm;
//! - the reported upper bound is on the scale of the counts, the count at which `z_i` would
//!   reach the limit, `(UCL_i - (1 - lambda) z_{i-1}) / lambda`, so that the alarm is exactly
//!   `observed > upperbound`. It is not floored at 0: after a run of high counts it can be
//!   negative, and then any count alarms.

use crate::{
    Error, Evaluation, TimeRange,
    series::{check_counts, greater, mean, sd},
};

/// The smoothing weight of the newest count; 0.2 is the textbook choice for detecting shifts
/// of about one standard deviation.
pub const DEFAULT_LAMBDA: f64 = 0.2;
/// Width of the control limit in standard deviations of the EWMA statistic.
pub const DEFAULT_L: f64 = 3.0;
/// Values the reference period needs for a standard deviation.
const MIN_REFERENCE: usize = 2;

/// The chart's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EwmaParams {
    /// Default: from t = 3 (the smallest reference with a standard deviation) to the end.
    pub range: Option<TimeRange>,
    /// In (0, 1].
    pub lambda: f64,
    /// Positive.
    pub l: f64,
}

impl Default for EwmaParams {
    fn default() -> Self {
        Self {
            range: None,
            lambda: DEFAULT_LAMBDA,
            l: DEFAULT_L,
        }
    }
}

/// Runs the EWMA chart over `counts` (oldest first).
pub fn ewma(counts: &[f64], params: &EwmaParams) -> Result<Vec<Evaluation>, Error> {
    check_counts(counts)?;
    let lambda = params.lambda;
    if !(lambda > 0.0 && lambda <= 1.0) {
        return Err(Error::invalid("lambda", "must lie in (0, 1]"));
    }
    if !(params.l > 0.0 && params.l.is_finite()) {
        return Err(Error::invalid("l", "must be a positive number"));
    }
    let first = MIN_REFERENCE + 1;
    let range = TimeRange::resolve(params.range, first, first, counts.len())?;
    let reference = &counts[..range.from - 1];
    let (mu0, sigma) = (mean(reference), sd(reference));
    let mut z = mu0;
    let evaluations = range
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let steps = (i + 1) as i32;
            let width = (lambda / (2.0 - lambda) * (1.0 - (1.0 - lambda).powi(2 * steps))).sqrt();
            let ucl = mu0 + params.l * sigma * width;
            let upperbound = (ucl - (1.0 - lambda) * z) / lambda;
            let observed = counts[t - 1];
            z = lambda * observed + (1.0 - lambda) * z;
            Evaluation::new(t, observed, upperbound, greater(z, ucl))
        })
        .collect();
    Ok(evaluations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // Reference 2, 4, 6: mu0 = 4, sigma = 2. lambda = 0.5, L = 2.
        let counts = [2.0, 4.0, 6.0, 4.0, 10.0, 4.0];
        let params = EwmaParams {
            range: Some(TimeRange::new(4, 6)),
            lambda: 0.5,
            l: 2.0,
        };
        let out = ewma(&counts, &params).expect("runs");
        // i=1: width sqrt(1/3 (1 - 0.25)) = 0.5, UCL = 4 + 2*2*0.5 = 6; z = 4.
        // bound = (6 - 0.5*4)/0.5 = 8.
        assert!((out[0].upperbound.expect("bound") - 8.0).abs() < 1e-12);
        assert_eq!(out[0].alarm, Some(false));
        // i=2: width sqrt(1/3 (1 - 1/16)) = sqrt(0.3125), UCL = 4 + 4 sqrt(0.3125);
        // z = 0.5*10 + 0.5*4 = 7 > UCL (6.236...); bound = (UCL - 2)/0.5.
        let ucl2 = 4.0 + 4.0 * 0.3125_f64.sqrt();
        assert!((out[1].upperbound.expect("bound") - (ucl2 - 2.0) / 0.5).abs() < 1e-12);
        assert_eq!(out[1].alarm, Some(true));
        // i=3: z = 0.5*4 + 0.5*7 = 5.5; UCL = 4 + 4 sqrt(1/3 (1 - 1/64)).
        let ucl3 = 4.0 + 4.0 * (1.0_f64 / 3.0 * (1.0 - 1.0 / 64.0)).sqrt();
        assert!((out[2].upperbound.expect("bound") - (ucl3 - 3.5) / 0.5).abs() < 1e-12);
        assert_eq!(out[2].alarm, Some(5.5 > ucl3));
    }
}
