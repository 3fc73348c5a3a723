//! The Farrington et al. (1996) detector as `surveillance::algo.farrington` computes it: a
//! quasi-Poisson GLM (with a linear trend when it is significant) over windows of `2w + 1`
//! weeks around the same week of the `b` previous years, reweighted by Anscombe residuals,
//! and a two-sided prediction interval on a power-transformed scale.

use crate::{
    Error, Evaluation, TimeRange,
    dist::qnorm,
    glm::{Design, Fit, anscombe_residuals, assign_weights, at_least_one, fit_quasi_poisson},
    series::check_counts,
};

/// The power transformation for the prediction interval's skewness correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerTrans {
    /// `"2/3"`, the package's default.
    TwoThirds,
    /// `"1/2"`.
    Half,
    /// `"none"`.
    None,
}

impl PowerTrans {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "2/3" => Self::TwoThirds,
            "1/2" => Self::Half,
            "none" => Self::None,
            _ => return None,
        })
    }

    fn exponent(self) -> f64 {
        match self {
            Self::TwoThirds => 2.0 / 3.0,
            Self::Half => 0.5,
            Self::None => 1.0,
        }
    }
}

/// Years back.
pub const DEFAULT_B: usize = 5;
/// Half-width of each year's window.
pub const DEFAULT_W: usize = 3;
/// `algo.farrington`'s default level (two-sided).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// No alarm unless at least 5 cases in the last 4 periods.
pub const DEFAULT_LIMIT54: (f64, usize) = (5.0, 4);
/// Weekly data.
pub const DEFAULT_PERIOD: usize = 52;
/// `algo.farrington` keeps a trend only when its p-value is below this.
const TREND_P_THRESHOLD: f64 = 0.05;
/// `algo.farrington.fitGLM.fast` reweights residuals above this (the weights' default).
const WEIGHTS_THRESHOLD: f64 = 1.0;
/// A trend is fitted only over at least this many years.
pub(crate) const MIN_YEARS_FOR_TREND: usize = 3;

/// `algo.farrington`'s `control` (with `fitFun = "algo.farrington.fitGLM.fast"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FarringtonParams {
    /// Default: `period * b - w` to the end, as R (the first points then have fewer than `b`
    /// years of reference values).
    pub range: Option<TimeRange>,
    pub b: usize,
    pub w: usize,
    pub reweight: bool,
    pub trend: bool,
    pub alpha: f64,
    pub powertrans: PowerTrans,
    /// `(cases, period)`: no alarm (and a bound of 0) unless the last `period` points hold
    /// at least `cases`.
    pub limit54: (f64, usize),
    /// Points per year (the series' frequency).
    pub period: usize,
}

impl Default for FarringtonParams {
    fn default() -> Self {
        Self {
            range: None,
            b: DEFAULT_B,
            w: DEFAULT_W,
            reweight: true,
            trend: true,
            alpha: DEFAULT_ALPHA,
            powertrans: PowerTrans::TwoThirds,
            limit54: DEFAULT_LIMIT54,
            period: DEFAULT_PERIOD,
        }
    }
}

pub(crate) fn check_common(
    alpha: f64,
    limit54: (f64, usize),
    period: usize,
    b: usize,
) -> Result<(), Error> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::invalid("alpha", "must lie strictly between 0 and 1"));
    }
    if limit54.0.is_nan() || limit54.0 < 0.0 || limit54.1 == 0 {
        return Err(Error::invalid(
            "limit54",
            "out of bounds: cases must be >= 0 and period > 0",
        ));
    }
    if period == 0 {
        return Err(Error::invalid("period", "must be at least 1"));
    }
    if b == 0 {
        return Err(Error::invalid("b", "must be at least 1"));
    }
    Ok(())
}

/// Whether the last `limit54.1` points up to `t` hold at least `limit54.0` cases.
pub(crate) fn enough_cases(counts: &[f64], t: usize, limit54: (f64, usize)) -> bool {
    let from = t.saturating_sub(limit54.1);
    counts[from..t].iter().sum::<f64>() >= limit54.0
}

/// Runs the 1996 Farrington detector over `counts` (oldest first).
pub fn farrington(counts: &[f64], params: &FarringtonParams) -> Result<Vec<Evaluation>, Error> {
    check_counts(counts)?;
    check_common(params.alpha, params.limit54, params.period, params.b)?;
    let (b, w, freq) = (params.b, params.w, params.period);
    let default_from = (freq * b).saturating_sub(w).max(1);
    let range = TimeRange::resolve(params.range, default_from, 1, counts.len())?;
    let mut evaluations = Vec::with_capacity(range.to - range.from + 1);
    for k in range.iter() {
        let wtime: Vec<f64> = (1..=b)
            .rev()
            .flat_map(|i| {
                let centre = k as i64 - (freq * i) as i64;
                (centre - w as i64)..=(centre + w as i64)
            })
            .filter(|&t| t > 0)
            .map(|t| t as f64)
            .collect();
        if wtime.is_empty() {
            return Err(Error::TooShort(format!(
                "no reference values exist for t={k} with b={b} and w={w}"
            )));
        }
        let response: Vec<f64> = wtime.iter().map(|&t| counts[t as usize - 1]).collect();
        let observed = counts[k - 1];
        let kf = k as f64;
        let Some((mut model, mut with_trend)) =
            fit(&response, &wtime, params.trend, params.reweight)
        else {
            evaluations.push(Evaluation::new(k, observed, f64::NAN, None));
            continue;
        };
        if with_trend {
            let p = model
                .fit
                .p_value(1, model.fit.dispersion(&model.fit.working_weights))
                .unwrap_or(f64::NAN);
            let significant = p < TREND_P_THRESHOLD;
            let mu0_hat = model.fit.predict_link(&[1.0, kf]).exp();
            let max_response = response.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let no_extrapolation = mu0_hat <= max_response;
            if !(b >= MIN_YEARS_FOR_TREND && significant && no_extrapolation) {
                match fit(&response, &wtime, false, params.reweight) {
                    Some(refit) => (model, with_trend) = refit,
                    None => {
                        evaluations.push(Evaluation::new(k, observed, f64::NAN, None));
                        continue;
                    }
                }
            }
        }
        let x0: &[f64] = if with_trend { &[1.0, kf] } else { &[1.0] };
        let mu0 = model.fit.predict_link(x0).exp();
        let se = model.fit.se_link(x0, model.phi) * mu0;
        let upper = interval_upper(
            mu0,
            se,
            model.phi,
            params.powertrans,
            qnorm(1.0 - params.alpha / 2.0, 0.0, 1.0),
        );
        let (upperbound, alarm) = if enough_cases(counts, k, params.limit54) {
            let x = (observed - mu0) / (upper - mu0);
            (upper, (!x.is_nan()).then_some(x > 1.0))
        } else {
            (0.0, Some(false))
        };
        evaluations.push(Evaluation::new(k, observed, upperbound, alarm));
    }
    Ok(evaluations)
}

/// A fitted model with its overdispersion `phi` (at least 1).
pub(crate) struct Model {
    pub fit: Fit,
    pub phi: f64,
}

/// `algo.farrington.fitGLM.fast`: the GLM with or without trend (falling back to none when
/// the trend model does not converge), then refitted with Anscombe-residual weights.
/// Returns the model and whether it has the trend term.
fn fit(response: &[f64], wtime: &[f64], trend: bool, reweight: bool) -> Option<(Model, bool)> {
    let n = response.len();
    let design_for = |trend: bool| {
        if trend {
            Design::from_columns(&[vec![1.0; n], wtime.to_vec()])
        } else {
            Design::from_columns(&[vec![1.0; n]])
        }
    };
    let ones = vec![1.0; n];
    let mut design = design_for(trend);
    let mut with_trend = trend;
    let mut model = fit_quasi_poisson(&design, response, &ones).ok()?;
    if !model.converged && trend {
        design = design_for(false);
        with_trend = false;
        model = fit_quasi_poisson(&design, response, &ones).ok()?;
    }
    let mut phi = at_least_one(model.dispersion(&model.working_weights));
    if reweight {
        let s = anscombe_residuals(&model, phi);
        let omega = assign_weights(&s, WEIGHTS_THRESHOLD);
        model = fit_quasi_poisson(&design, response, &omega).ok()?;
        phi = at_least_one(model.dispersion(&model.working_weights));
    }
    Some((Model { fit: model, phi }, with_trend))
}

/// The upper end of `algo.farrington.threshold`'s interval
/// `(mu0^e ± z se_e)^(1/e)` (sorted, `NaN` first, as R's `sort(na.last = FALSE)`), where
/// `se_e` is the delta-method standard error on the transformed scale. Also the `"delta"`
/// threshold of farringtonFlexible, with a one-sided `z`.
pub(crate) fn interval_upper(mu0: f64, se_fit: f64, phi: f64, trans: PowerTrans, z: f64) -> f64 {
    let tau = phi + se_fit * se_fit / mu0;
    let se = match trans {
        PowerTrans::None => (mu0 * tau).sqrt(),
        PowerTrans::Half => (0.25 * tau).sqrt(),
        PowerTrans::TwoThirds => (4.0 / 9.0 * mu0.powf(1.0 / 3.0) * tau).sqrt(),
    };
    let e = trans.exponent();
    let centre = mu0.powf(e);
    let low = (centre - z * se).powf(1.0 / e);
    let high = (centre + z * se).powf(1.0 / e);
    match (low.is_nan(), high.is_nan()) {
        (false, false) => low.max(high),
        (true, false) => high,
        (false, true) => low,
        (true, true) => f64::NAN,
    }
}
