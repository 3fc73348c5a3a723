//! CUSUM as `surveillance::algo.cusum` computes it: counts standardised against the mean of
//! a reference period (the values before the range), accumulated above the reference value
//! `k`, alarming once the sum reaches `h`; the upper bound is the count that would reach `h`.

use crate::{
    Error, Evaluation, TimeRange,
    series::{check_counts, mean},
};

/// How a count is standardised against the reference mean `m` (`control$trans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CusumTrans {
    /// `(x - m) / sqrt(m)`.
    Standard,
    /// Rossi's approximate normal transform, `(x - 3m + 2 sqrt(x m)) / (2 sqrt(m))`.
    Rossi,
    /// The Anscombe residual, `3/2 (x^(2/3) - m^(2/3)) / m^(1/6)`.
    Anscombe,
    /// The Anscombe residual with the second-order mean correction.
    Anscombe2nd,
    /// The negative binomial Pearson residual, `(x - m) / sqrt(m + alpha m^2)`.
    PearsonNegBin,
    /// The raw counts.
    None,
}

impl CusumTrans {
    /// The package's name for the transform (case-insensitive on the way in).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "standard" => Self::Standard,
            "rossi" => Self::Rossi,
            "anscombe" => Self::Anscombe,
            "anscombe2nd" => Self::Anscombe2nd,
            "pearsonnegbin" => Self::PearsonNegBin,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// `algo.cusum`'s default reference value.
pub const DEFAULT_K: f64 = 1.04;
/// `algo.cusum`'s default decision interval.
pub const DEFAULT_H: f64 = 2.26;
/// `algo.cusum`'s default negative binomial dispersion for `pearsonNegBin`.
pub const DEFAULT_ALPHA: f64 = 0.1;

/// `algo.cusum`'s `control`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CusumParams {
    /// R has no default; here it is from t = 2 to the end, so the reference (everything
    /// before the range) is the first point alone. Give a range with a real reference period.
    pub range: Option<TimeRange>,
    pub k: f64,
    pub h: f64,
    /// The in-control mean; `None` is R's `m = NULL`: the mean of the values before the range.
    pub m: Option<f64>,
    pub trans: CusumTrans,
    /// Dispersion of the `pearsonNegBin` transform.
    pub alpha: f64,
}

impl Default for CusumParams {
    fn default() -> Self {
        Self {
            range: None,
            k: DEFAULT_K,
            h: DEFAULT_H,
            m: None,
            trans: CusumTrans::Standard,
            alpha: DEFAULT_ALPHA,
        }
    }
}

/// Runs CUSUM over `counts` (oldest first).
pub fn cusum(counts: &[f64], params: &CusumParams) -> Result<Vec<Evaluation>, Error> {
    check_counts(counts)?;
    let first_possible = if params.m.is_some() { 1 } else { 2 };
    let range = TimeRange::resolve(params.range, 2, first_possible, counts.len())?;
    let m = params.m.unwrap_or_else(|| mean(&counts[..range.from - 1]));
    let (k, h, alpha) = (params.k, params.h, params.alpha);
    let standardise = |x: f64| match params.trans {
        CusumTrans::Standard => (x - m) / m.sqrt(),
        CusumTrans::Rossi => (x - 3.0 * m + 2.0 * (x * m).sqrt()) / (2.0 * m.sqrt()),
        CusumTrans::Anscombe => 1.5 * (x.powf(2.0 / 3.0) - m.powf(2.0 / 3.0)) / m.powf(1.0 / 6.0),
        CusumTrans::Anscombe2nd => {
            (x.powf(2.0 / 3.0) - (m.powf(2.0 / 3.0) - m.powf(-1.0 / 3.0) / 9.0))
                / (2.0 / 3.0 * m.powf(1.0 / 6.0))
        }
        CusumTrans::PearsonNegBin => (x - m) / (m + alpha * m * m).sqrt(),
        CusumTrans::None => x,
    };
    // The count at which the sum, standing at `c` before it, would reach h.
    let bound = |c: f64, after: f64| match params.trans {
        CusumTrans::Rossi => {
            let root = m.sqrt();
            2.0 * h * root + 2.0 * k * root - 2.0 * c * root + 5.0 * m
                - 2.0
                    * (4.0 * m * m + 2.0 * m.powf(1.5) * h + 2.0 * m.powf(1.5) * k
                        - 2.0 * m.powf(1.5) * c)
                        .sqrt()
        }
        CusumTrans::Standard => (m.sqrt() * (h + k - c) + m).ceil(),
        CusumTrans::Anscombe => {
            let base = 2.0 / 3.0 * m.powf(1.0 / 6.0) * (h + k - c) + m.powf(2.0 / 3.0);
            if base < 0.0 { 0.0 } else { base.powf(1.5) }
        }
        CusumTrans::Anscombe2nd => {
            let base = 2.0 / 3.0 * m.powf(1.0 / 6.0) * (h + k - c)
                + (m.powf(2.0 / 3.0) - m.powf(1.0 / 3.0) / 9.0);
            if base < 0.0 { 0.0 } else { base.powf(1.5) }
        }
        CusumTrans::PearsonNegBin => (m + alpha * m * m).sqrt() * (h + k - c) + m,
        // The package reports h minus the sum here, not a count.
        CusumTrans::None => h - after,
    };
    let mut sum = 0.0_f64;
    let evaluations = range
        .iter()
        .map(|t| {
            let observed = counts[t - 1];
            let before = sum;
            // R's max(0, NaN) is NaN, and a NaN sum stays NaN.
            let next = before + (standardise(observed) - k);
            sum = if next.is_nan() { next } else { next.max(0.0) };
            let mut upperbound = bound(before, sum);
            // R sets NA and negative bounds to 0.
            if upperbound.is_nan() || upperbound < 0.0 {
                upperbound = 0.0;
            }
            let alarm = (!sum.is_nan()).then_some(sum >= h);
            Evaluation::new(t, observed, upperbound, alarm)
        })
        .collect();
    Ok(evaluations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_by_hand() {
        // Reference mean 4; standardised (x - 4) / 2.
        let counts = [4.0, 4.0, 4.0, 4.0, 10.0, 4.0];
        let params = CusumParams {
            range: Some(TimeRange::new(5, 6)),
            ..CusumParams::default()
        };
        let out = cusum(&counts, &params).expect("runs");
        // t=5: sum = 3 - 1.04 = 1.96 < 2.26, bound = ceil(2 (2.26 + 1.04) + 4) = 11.
        assert_eq!(out[0].alarm, Some(false));
        assert_eq!(out[0].upperbound, Some(11.0));
        // t=6: sum = 1.96 + 0 - 1.04 = 0.92; bound = ceil(2 (3.3 - 1.96) + 4) = 7.
        assert_eq!(out[1].upperbound, Some(7.0));
        assert_eq!(out[1].alarm, Some(false));
    }
}
