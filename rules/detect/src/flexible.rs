//! The improved Farrington detector of Noufaily et al. (2013) as
//! `surveillance::farringtonFlexible` computes it: all weeks of the `b` previous years split
//! into `noPeriods` seasonal blocks (a factor in the GLM), the most recent weeks left out of
//! the baseline, a trend kept when its p-value is below a threshold, residuals reweighted
//! above a threshold, and a one-sided upper bound by the delta method or from a negative
//! binomial quantile (`nbPlugin`, `muan`).
//!
//! Series are indexed by position (R's `epochAsDate = FALSE`): the reference weeks of year i
//! back are exactly `period * i` points earlier.

use crate::{
    Error, Evaluation, TimeRange,
    dist::{qnbinom, qnorm, qpois},
    farrington::{
        DEFAULT_ALPHA, DEFAULT_B, DEFAULT_LIMIT54, DEFAULT_PERIOD, DEFAULT_W, MIN_YEARS_FOR_TREND,
        Model, PowerTrans, check_common, enough_cases, interval_upper,
    },
    glm::{Design, anscombe_residuals, assign_weights, at_least_one, fit_quasi_poisson},
    series::check_counts,
};

/// How the upper bound is computed from the fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdMethod {
    /// Farrington's power-transformed normal interval, by the delta method.
    Delta,
    /// The negative binomial quantile at the predicted mean.
    NbPlugin,
    /// The negative binomial quantile at the upper `1 - alpha` quantile of the mean.
    Muan,
}

impl ThresholdMethod {
    /// The package's name (case-insensitive on the way in).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "delta" => Self::Delta,
            "nbplugin" => Self::NbPlugin,
            "muan" => Self::Muan,
            _ => return None,
        })
    }
}

/// Residuals above this many (Anscombe) standard deviations are down-weighted.
pub const DEFAULT_WEIGHTS_THRESHOLD: f64 = 2.58;
/// A trend is kept when its p-value is below this.
pub const DEFAULT_P_THRESHOLD_TREND: f64 = 0.05;

/// `farringtonFlexible`'s `control` (without a population offset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlexibleParams {
    /// Default: `period * b + w + 1` to the end.
    pub range: Option<TimeRange>,
    pub b: usize,
    pub w: usize,
    pub reweight: bool,
    pub weights_threshold: f64,
    /// One-sided level.
    pub alpha: f64,
    pub trend: bool,
    pub p_threshold_trend: f64,
    /// `(cases, period)`: no bound (`None`) and no alarm unless the last `period` points
    /// hold at least `cases`.
    pub limit54: (f64, usize),
    /// Used by the `Delta` threshold only.
    pub powertrans: PowerTrans,
    /// Seasonal blocks per year; 1 fits no seasonal factor.
    pub no_periods: usize,
    /// Recent points left out of the baseline; `None` is R's `NULL`, which means `w`.
    pub past_weeks_not_included: Option<usize>,
    pub threshold_method: ThresholdMethod,
    /// Points per year (the series' frequency).
    pub period: usize,
}

impl Default for FlexibleParams {
    fn default() -> Self {
        Self {
            range: None,
            b: DEFAULT_B,
            w: DEFAULT_W,
            reweight: true,
            weights_threshold: DEFAULT_WEIGHTS_THRESHOLD,
            alpha: DEFAULT_ALPHA,
            trend: true,
            p_threshold_trend: DEFAULT_P_THRESHOLD_TREND,
            limit54: DEFAULT_LIMIT54,
            powertrans: PowerTrans::TwoThirds,
            no_periods: 1,
            past_weeks_not_included: None,
            threshold_method: ThresholdMethod::Delta,
            period: DEFAULT_PERIOD,
        }
    }
}

/// The baseline for one time point: response, time and seasonal block of each reference
/// point (`algo.farrington.data.glm`).
struct Baseline {
    response: Vec<f64>,
    wtime: Vec<f64>,
    /// The block of each point, 1..=noPeriods (noPeriods is the block around the reference
    /// weeks themselves).
    block: Vec<usize>,
}

/// Runs Farrington-flexible over `counts` (oldest first).
pub fn farrington_flexible(
    counts: &[f64],
    params: &FlexibleParams,
) -> Result<Vec<Evaluation>, Error> {
    check_counts(counts)?;
    check_common(params.alpha, params.limit54, params.period, params.b)?;
    if params.no_periods == 0 {
        return Err(Error::invalid("no-periods", "must be at least 1"));
    }
    if params.p_threshold_trend.is_nan() || params.p_threshold_trend < 0.0 {
        return Err(Error::invalid("p-threshold-trend", "must be 0 or more"));
    }
    let (b, w, freq) = (params.b, params.w, params.period);
    let past_excluded = params.past_weeks_not_included.unwrap_or(w);
    // The oldest window must lie inside the series, and so must the excluded recent weeks.
    let first_possible = (freq * b + w + 1).max(past_excluded + 1);
    let range = TimeRange::resolve(params.range, freq * b + w + 1, first_possible, counts.len())?;
    let mut evaluations = Vec::with_capacity(range.to - range.from + 1);
    for k in range.iter() {
        let observed = counts[k - 1];
        let baseline = baseline(counts, k, params, past_excluded)?;
        let Some(prediction) = predict(&baseline, k, params) else {
            // R: "The model could not converge with nor without time trend".
            evaluations.push(Evaluation::new(k, observed, f64::NAN, None));
            continue;
        };
        let upper = match params.threshold_method {
            ThresholdMethod::Delta => interval_upper(
                prediction.fit,
                prediction.se,
                prediction.phi,
                params.powertrans,
                qnorm(1.0 - params.alpha, 0.0, 1.0),
            ),
            ThresholdMethod::NbPlugin | ThresholdMethod::Muan => noufaily_upper(
                prediction.fit,
                prediction.se,
                prediction.phi,
                params.alpha,
                params.threshold_method,
            ),
        };
        let evaluation = if enough_cases(counts, k, params.limit54) {
            // The score compares with the prediction on its own scale (the link scale for
            // the quantile methods), as the package does.
            let score = (observed - prediction.fit) / (upper - prediction.fit);
            let alarm = !score.is_nan() && score > 1.0 && observed != 0.0;
            Evaluation::new(k, observed, upper, Some(alarm))
        } else {
            Evaluation::new(k, observed, f64::NAN, Some(false))
        };
        evaluations.push(evaluation);
    }
    Ok(evaluations)
}

/// `blocks` and `algo.farrington.data.glm` for 1-based time point `k`.
fn baseline(
    counts: &[f64],
    k: usize,
    params: &FlexibleParams,
    past_excluded: usize,
) -> Result<Baseline, Error> {
    let (b, w, freq, p) = (params.b, params.w, params.period, params.no_periods);
    // 1-based positions, as in R; index 0 is unused.
    let mut blocks: Vec<Option<usize>> = vec![None; counts.len() + 1];
    let mut set = |from: usize, to: usize, value: usize| {
        // R's from:to counts down when from > to.
        let (lo, hi) = if from <= to { (from, to) } else { (to, from) };
        for slot in &mut blocks[lo..=hi] {
            *slot = Some(value);
        }
    };
    set(k - w, k, p);
    // The reference weeks, newest first: k, k - freq, ..., k - b freq.
    let reference: Vec<usize> = (0..=b).map(|i| k - freq * i).collect();
    for i in 1..=b {
        let week = reference[i];
        set(week - w, week + w, p);
        if p != 1 {
            let gap = reference[i - 1] as i64 - 2 * w as i64 - 1 - week as i64;
            if gap < p as i64 - (2 * w as i64 + 1) {
                return Err(Error::invalid(
                    "no-periods",
                    format!("too many periods ({p}) for a year of {freq} points with w={w}"),
                ));
            }
            let gap = gap.max(0) as usize;
            let (length, rest) = (gap / (p - 1), gap % (p - 1));
            let mut start = week + w + 1;
            for j in 1..p {
                let len = length + usize::from(j <= rest);
                // R assigns start:(start + len - 1), which for len 0 is start:(start - 1).
                set(start, start + len - 1, j);
                start += len;
            }
        }
    }
    for slot in &mut blocks[k - past_excluded..=k] {
        *slot = None;
    }
    let mut baseline = Baseline {
        response: Vec::new(),
        wtime: Vec::new(),
        block: Vec::new(),
    };
    for (t, block) in blocks.iter().enumerate() {
        if let Some(block) = block {
            baseline.response.push(counts[t - 1]);
            baseline.wtime.push(t as f64);
            baseline.block.push(*block);
        }
    }
    if baseline.response.is_empty() {
        return Err(Error::invalid(
            "past-weeks-not-included",
            format!("{past_excluded} leaves no baseline at t={k}"),
        ));
    }
    Ok(baseline)
}

/// The prediction at the current time point and what the threshold needs with it.
struct Prediction {
    /// On the response scale for `Delta`, the link scale otherwise.
    fit: f64,
    se: f64,
    phi: f64,
}

/// `algo.farrington.glm`: fit with the trend, keep it only if it is significant, fitted over
/// at least three years and does not extrapolate beyond the largest baseline count; predict.
fn predict(baseline: &Baseline, k: usize, params: &FlexibleParams) -> Option<Prediction> {
    let levels = {
        let mut levels = baseline.block.clone();
        levels.sort_unstable();
        levels.dedup();
        levels
    };
    let factors = params.no_periods != 1;
    let now = k as f64;
    // The current time point's row of the design: intercept, trend, and block noPeriods.
    let row = |trend: bool| {
        let mut x = vec![1.0];
        if trend {
            x.push(now);
        }
        if factors {
            x.extend(
                levels[1..]
                    .iter()
                    .map(|&l| f64::from(l == params.no_periods)),
            );
        }
        x
    };
    let (mut model, mut weights, mut with_trend) =
        fit(baseline, &levels, factors, params.trend, params)?;
    if with_trend {
        let x0 = row(true);
        let dispersion = model.fit.dispersion(&weights);
        let fit = model.fit.predict_link(&x0).exp();
        let p = model.fit.p_value(1, dispersion).unwrap_or(f64::NAN);
        let significant = p < params.p_threshold_trend;
        let max_response = baseline
            .response
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let keep = params.b >= MIN_YEARS_FOR_TREND && significant && fit <= max_response;
        if !keep {
            (model, weights, with_trend) = fit_no_trend(baseline, &levels, factors, params)?;
        }
    }
    let x0 = row(with_trend);
    // predict.glm's dispersion here is summary.glm's estimate, not phi: the package passes
    // phi inside newdata, where predict.glm does not look for it.
    let dispersion = model.fit.dispersion(&weights);
    let eta = model.fit.predict_link(&x0);
    let se_eta = model.fit.se_link(&x0, dispersion);
    Some(match params.threshold_method {
        ThresholdMethod::Delta => {
            let mu = eta.exp();
            Prediction {
                fit: mu,
                se: se_eta * mu,
                phi: model.phi,
            }
        }
        ThresholdMethod::NbPlugin | ThresholdMethod::Muan => Prediction {
            fit: eta,
            se: se_eta,
            phi: model.phi,
        },
    })
}

fn fit_no_trend(
    baseline: &Baseline,
    levels: &[usize],
    factors: bool,
    params: &FlexibleParams,
) -> Option<(Model, Vec<f64>, bool)> {
    fit(baseline, levels, factors, false, params)
}

/// `algo.farrington.fitGLM.flexible`. Returns the model, the weights `summary.glm` will see
/// (the package overwrites the reweighted model's working weights with the prior weights),
/// and whether the trend term is in. `None` when neither model converges.
fn fit(
    baseline: &Baseline,
    levels: &[usize],
    factors: bool,
    trend: bool,
    params: &FlexibleParams,
) -> Option<(Model, Vec<f64>, bool)> {
    let n = baseline.response.len();
    let design_for = |trend: bool| {
        let mut columns = vec![vec![1.0; n]];
        if trend {
            columns.push(baseline.wtime.clone());
        }
        if factors {
            for &level in &levels[1..] {
                columns.push(
                    baseline
                        .block
                        .iter()
                        .map(|&b| f64::from(b == level))
                        .collect(),
                );
            }
        }
        Design::from_columns(&columns)
    };
    let ones = vec![1.0; n];
    let mut design = design_for(trend);
    let mut with_trend = trend;
    let mut model = fit_quasi_poisson(&design, &baseline.response, &ones).ok()?;
    if !model.converged {
        if trend {
            design = design_for(false);
            with_trend = false;
            model = fit_quasi_poisson(&design, &baseline.response, &ones).ok()?;
        }
        if !model.converged {
            return None;
        }
    }
    let mut phi = at_least_one(model.dispersion(&model.working_weights));
    let mut summary_weights = model.working_weights.clone();
    if params.reweight {
        let s = anscombe_residuals(&model, phi);
        let omega = assign_weights(&s, params.weights_threshold);
        model = fit_quasi_poisson(&design, &baseline.response, &omega).ok()?;
        phi = at_least_one(model.dispersion(&model.working_weights));
        summary_weights = omega;
    }
    Some((Model { fit: model, phi }, summary_weights, with_trend))
}

/// `algo.farrington.threshold.noufaily`'s upper bound: the `1 - alpha` quantile of a negative
/// binomial with mean `mu` and variance `phi mu` (Poisson when `phi` is 1), where `mu` is the
/// predicted mean (`NbPlugin`) or its own upper `1 - alpha` quantile (`Muan`).
fn noufaily_upper(eta: f64, se_eta: f64, phi: f64, alpha: f64, method: ThresholdMethod) -> f64 {
    let mu = if method == ThresholdMethod::NbPlugin {
        eta.exp()
    } else {
        qnorm(1.0 - alpha, eta, se_eta).exp()
    };
    if mu == f64::INFINITY {
        return f64::NAN;
    }
    if phi > 1.0 {
        qnbinom(1.0 - alpha, mu / (phi - 1.0), 1.0 / phi)
    } else {
        qpois(1.0 - alpha, mu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's own values (tests/testthat/test-farringtonFlexible.R, "THRESHOLD
    /// FUNCTION NOUFAILY"): predFit log(5), predSeFit log(2), alpha 0.05.
    #[test]
    fn noufaily_thresholds_as_published() {
        let (eta, se) = (5.0_f64.ln(), 2.0_f64.ln());
        assert_eq!(
            noufaily_upper(eta, se, 1.5, 0.05, ThresholdMethod::Muan),
            24.0
        );
        assert_eq!(
            noufaily_upper(eta, se, 1.0, 0.05, ThresholdMethod::Muan),
            22.0
        );
        assert_eq!(
            noufaily_upper(eta, se, 1.5, 0.05, ThresholdMethod::NbPlugin),
            10.0
        );
        assert_eq!(
            noufaily_upper(eta, se, 1.0, 0.05, ThresholdMethod::NbPlugin),
            9.0
        );
    }

    /// The same file's "THRESHOLD FUNCTION FARRINGTON": predFit 5, predSeFit 0.2, phi 1,
    /// alpha 0.05; the upper ends are 8.6926872, 9.3744842 and 9.1154825.
    #[test]
    fn delta_thresholds_as_published() {
        let z = qnorm(0.95, 0.0, 1.0);
        for (trans, expected) in [
            (PowerTrans::None, 8.6926872),
            (PowerTrans::Half, 9.3744842),
            (PowerTrans::TwoThirds, 9.1154825),
        ] {
            let upper = interval_upper(5.0, 0.2, 1.0, trans, z);
            assert!((upper - expected).abs() < 1e-6, "{trans:?}: {upper}");
        }
    }

    #[test]
    fn blocks_cover_each_year_with_the_window_and_the_periods() {
        // The package's blocks test: w + 1 + b (2w + 1) points in block p.
        let counts = vec![1.0; 400];
        let params = FlexibleParams {
            b: 3,
            w: 3,
            no_periods: 8,
            past_weeks_not_included: Some(0),
            ..FlexibleParams::default()
        };
        let k = 300;
        let baseline = baseline(&counts, k, &params, 0).expect("baseline");
        let in_p = baseline.block.iter().filter(|&&b| b == 8).count();
        // The current week itself is left out (pastWeeksNotIncluded 0 removes k..=k).
        assert_eq!(in_p, 3 + 3 * 7);
        // Every point from the oldest window on belongs to some block.
        assert_eq!(baseline.wtime.len(), k - 1 - (k - 3 * 52 - 3) + 1);
    }
}
