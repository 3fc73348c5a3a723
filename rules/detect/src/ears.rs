//! EARS C1, C2 and C3 as `surveillance::earsC` computes them: a mean and standard deviation
//! over a short moving baseline (C2 and C3 skip the two most recent points, the guard band),
//! and C3's sum of the last three C2 statistics turned back into a count threshold.

use crate::{
    Error, Evaluation, TimeRange,
    dist::qnorm,
    series::{check_counts, greater, mean, pmax, sd},
};

/// Which EARS statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarsMethod {
    C1,
    C2,
    C3,
}

/// Points between the end of the C2/C3 baseline and the time point evaluated.
const GUARD_BAND: usize = 2;
/// `earsC`'s default baseline length.
pub const DEFAULT_BASELINE: usize = 7;
/// `earsC`'s alpha for C1 and C2 when none is given.
pub const DEFAULT_ALPHA_C1_C2: f64 = 0.001;
/// `earsC`'s alpha for C3 when none is given (it differs from C1's and C2's).
pub const DEFAULT_ALPHA_C3: f64 = 0.025;

/// `earsC`'s `control`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarsParams {
    pub method: EarsMethod,
    /// Default: from the first point with a full baseline (`baseline + 1`, `+ 3` for C2,
    /// `+ 5` for C3) to the end.
    pub range: Option<TimeRange>,
    /// Points in the moving baseline; at least 3.
    pub baseline: usize,
    /// One-sided level: the bound is the mean plus `qnorm(1 - alpha)` standard deviations.
    pub alpha: f64,
    /// A floor for the baseline's standard deviation (0 keeps R's behaviour, where a flat
    /// baseline gives a zero or undefined spread).
    pub min_sigma: f64,
}

impl EarsParams {
    /// The package's defaults for `method`, alpha included (0.001 for C1 and C2, 0.025 for C3).
    pub fn new(method: EarsMethod) -> Self {
        Self {
            method,
            range: None,
            baseline: DEFAULT_BASELINE,
            alpha: match method {
                EarsMethod::C1 | EarsMethod::C2 => DEFAULT_ALPHA_C1_C2,
                EarsMethod::C3 => DEFAULT_ALPHA_C3,
            },
            min_sigma: 0.0,
        }
    }

    /// How far back the earliest reference value lies from the point evaluated.
    fn max_lag(&self) -> usize {
        self.baseline
            + match self.method {
                EarsMethod::C1 => 0,
                EarsMethod::C2 => GUARD_BAND,
                EarsMethod::C3 => 2 * GUARD_BAND,
            }
    }
}

impl Default for EarsParams {
    fn default() -> Self {
        Self::new(EarsMethod::C1)
    }
}

/// Runs EARS C1, C2 or C3 over `counts` (oldest first).
pub fn ears_c(counts: &[f64], params: &EarsParams) -> Result<Vec<Evaluation>, Error> {
    check_counts(counts)?;
    if params.min_sigma.is_nan() || params.min_sigma < 0.0 {
        return Err(Error::invalid("min-sigma", "must be 0 or more"));
    }
    if params.baseline < 3 {
        return Err(Error::invalid("baseline", "the minimum baseline is 3"));
    }
    if !(params.alpha > 0.0 && params.alpha < 1.0) {
        return Err(Error::invalid("alpha", "must lie strictly between 0 and 1"));
    }
    let first = params.max_lag() + 1;
    let range = TimeRange::resolve(params.range, first, first, counts.len())?;
    let z = qnorm(1.0 - params.alpha, 0.0, 1.0);
    let baseline = params.baseline;
    // The baseline of the C2 statistic at 1-based t: t-baseline-2 ..= t-3.
    let c2_reference = |t: usize| &counts[t - 1 - baseline - GUARD_BAND..t - 1 - GUARD_BAND];
    let spread = |reference: &[f64]| pmax(sd(reference), params.min_sigma);
    let evaluations = range
        .iter()
        .map(|t| {
            let observed = counts[t - 1];
            let upperbound = match params.method {
                EarsMethod::C1 => {
                    let reference = &counts[t - 1 - baseline..t - 1];
                    mean(reference) + z * spread(reference)
                }
                EarsMethod::C2 => {
                    let reference = c2_reference(t);
                    mean(reference) + z * spread(reference)
                }
                EarsMethod::C3 => {
                    let c2 = |s: usize| {
                        let reference = c2_reference(s);
                        (counts[s - 1] - mean(reference)) / spread(reference)
                    };
                    let lag2 = pmax(0.0, c2(t - 2) - 1.0);
                    let lag1 = pmax(0.0, c2(t - 1) - 1.0);
                    let bound = observed + spread(c2_reference(t)) * (z - (lag2 + lag1));
                    pmax(0.0, bound)
                }
            };
            Evaluation::new(t, observed, upperbound, greater(observed, upperbound))
        })
        .collect();
    Ok(evaluations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_errors() {
        let counts = vec![1.0; 30];
        let mut params = EarsParams {
            baseline: 2,
            ..EarsParams::default()
        };
        assert!(matches!(
            ears_c(&counts, &params),
            Err(Error::InvalidParameter { flag, .. }) if flag == "baseline"
        ));
        params.baseline = 7;
        params.min_sigma = -2.0;
        assert!(matches!(
            ears_c(&counts, &params),
            Err(Error::InvalidParameter { flag, .. }) if flag == "min-sigma"
        ));
        params.min_sigma = 0.0;
        params.range = Some(TimeRange::new(5, 30));
        assert!(matches!(ears_c(&counts, &params), Err(Error::TooShort(_))));
    }

    #[test]
    fn c1_by_hand() {
        // Baseline 1..7 (mean 4, sd sqrt(14/3)), then 20.
        let counts = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 20.0];
        let out = ears_c(&counts, &EarsParams::default()).expect("runs");
        assert_eq!(out.len(), 1);
        let expected = 4.0 + 3.090232306167813 * (28.0_f64 / 6.0).sqrt();
        assert!((out[0].upperbound.expect("bound") - expected).abs() < 1e-12);
        assert_eq!(out[0].alarm, Some(true));
    }
}
