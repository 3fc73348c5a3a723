//! The quasi-Poisson log-linear GLM both Farrington detectors fit: R's `glm.fit` (IRLS with
//! LINPACK's limited-pivoting Householder QR, the same start, convergence test and step
//! halving), and the parts of `summary.glm`, `predict.glm` and `hatvalues` they read.
//!
//! It is ported step for step rather than solved by any other IRLS so that the iterates, and
//! with them the bounds, agree with R's to many digits: R stops at a relative deviance change
//! of 1e-8, and a different path to that point moves the bounds in the sixth digit.

/// `glm.control()`'s defaults.
const EPSILON: f64 = 1e-8;
const MAXIT: usize = 25;
/// `glm.fit`'s tolerance for declaring a column of the weighted design aliased.
const QR_TOL: f64 = 1e-11;

/// A design matrix, column-major.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    pub rows: usize,
    pub cols: usize,
    data: Vec<f64>,
}

impl Design {
    pub fn from_columns(columns: &[Vec<f64>]) -> Self {
        let rows = columns.first().map_or(0, Vec::len);
        Self {
            rows,
            cols: columns.len(),
            data: columns.concat(),
        }
    }

    fn at(&self, row: usize, col: usize) -> f64 {
        self.data[col * self.rows + row]
    }
}

/// A Householder QR in LINPACK's compact form (`dqrdc2`): `qr` holds R above the diagonal
/// and the reflections below it, `qraux` their leading elements.
#[derive(Debug, Clone)]
struct Qr {
    rows: usize,
    cols: usize,
    qr: Vec<f64>,
    qraux: Vec<f64>,
    /// Original column of each position.
    pivot: Vec<usize>,
    rank: usize,
}

impl Qr {
    /// `dqrdc2`: columns whose norm falls below `tol` times their original norm move to the
    /// end and are left out of the rank.
    fn new(rows: usize, cols: usize, mut x: Vec<f64>, tol: f64) -> Self {
        let n = rows;
        let p = cols;
        let idx = |i: usize, j: usize| j * n + i;
        let norm = |x: &[f64], from: usize, j: usize| -> f64 {
            x[idx(from, j)..idx(n, j)]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        };
        let mut qraux: Vec<f64> = (0..p).map(|j| norm(&x, 0, j)).collect();
        let mut work2: Vec<f64> = qraux
            .iter()
            .map(|&v| if v == 0.0 { 1.0 } else { v })
            .collect();
        let mut pivot: Vec<usize> = (0..p).collect();
        let mut k = p + 1; // 1-based as in the Fortran
        let lup = n.min(p);
        for l in 0..lup {
            // Cycle negligible columns to the end.
            while l + 1 < k && qraux[l] < work2[l] * tol {
                for i in 0..n {
                    let t = x[idx(i, l)];
                    for j in l + 1..p {
                        x[idx(i, j - 1)] = x[idx(i, j)];
                    }
                    x[idx(i, p - 1)] = t;
                }
                pivot[l..].rotate_left(1);
                qraux[l..].rotate_left(1);
                work2[l..].rotate_left(1);
                k -= 1;
            }
            if l + 1 == n {
                break;
            }
            let mut nrmxl = norm(&x, l, l);
            if nrmxl == 0.0 {
                continue;
            }
            if x[idx(l, l)] != 0.0 {
                nrmxl = nrmxl.copysign(x[idx(l, l)]);
            }
            for i in l..n {
                x[idx(i, l)] /= nrmxl;
            }
            x[idx(l, l)] += 1.0;
            for j in l + 1..p {
                let dot: f64 = (l..n).map(|i| x[idx(i, l)] * x[idx(i, j)]).sum();
                let t = -dot / x[idx(l, l)];
                for i in l..n {
                    x[idx(i, j)] += t * x[idx(i, l)];
                }
                if qraux[j] != 0.0 {
                    let tt = (1.0 - (x[idx(l, j)].abs() / qraux[j]).powi(2)).max(0.0);
                    if tt.abs() < 1e-6 {
                        qraux[j] = norm(&x, l + 1, j);
                    } else {
                        qraux[j] *= tt.sqrt();
                    }
                }
            }
            qraux[l] = x[idx(l, l)];
            x[idx(l, l)] = -nrmxl;
        }
        let rank = (k - 1).min(n);
        Self {
            rows,
            cols,
            qr: x,
            qraux,
            pivot,
            rank,
        }
    }

    fn r(&self, i: usize, j: usize) -> f64 {
        self.qr[j * self.rows + i]
    }

    /// Applies the reflections to `y` in place: `Q'y` (`transpose`) or `Qy`.
    fn apply(&self, y: &mut [f64], transpose: bool) {
        let n = self.rows;
        let steps = self.rank.min(n.saturating_sub(1));
        let mut apply_one = |j: usize| {
            if self.qraux[j] == 0.0 {
                return;
            }
            let col = &self.qr[j * n..(j + 1) * n];
            let diag = self.qraux[j];
            let dot = diag * y[j] + (j + 1..n).map(|i| col[i] * y[i]).sum::<f64>();
            let t = -dot / diag;
            y[j] += t * diag;
            for i in j + 1..n {
                y[i] += t * col[i];
            }
        };
        if transpose {
            (0..steps).for_each(&mut apply_one);
        } else {
            (0..steps).rev().for_each(&mut apply_one);
        }
    }

    /// Least-squares coefficients for `y`, in original column order; aliased ones are 0 as
    /// `dqrls` leaves them.
    fn solve(&self, y: &[f64]) -> Vec<f64> {
        let mut qty = y.to_vec();
        self.apply(&mut qty, true);
        let k = self.rank;
        let mut b = qty[..k].to_vec();
        for j in (0..k).rev() {
            b[j] /= self.r(j, j);
            let t = -b[j];
            for (i, bi) in b[..j].iter_mut().enumerate() {
                *bi += t * self.r(i, j);
            }
        }
        let mut coefficients = vec![0.0; self.cols];
        for (position, value) in b.into_iter().enumerate() {
            coefficients[self.pivot[position]] = value;
        }
        coefficients
    }

    /// `v` with `R'v = x[pivot]` over the first `rank` pivoted columns: `|v|^2` is
    /// `x' (X'WX)^-1 x`.
    fn solve_r_transpose(&self, x: &[f64]) -> Vec<f64> {
        let k = self.rank;
        let mut v: Vec<f64> = (0..k).map(|position| x[self.pivot[position]]).collect();
        for j in 0..k {
            let s: f64 = (0..j).map(|i| self.r(i, j) * v[i]).sum();
            v[j] = (v[j] - s) / self.r(j, j);
        }
        v
    }
}

/// A converged (or given-up) quasi-Poisson fit, holding what `glm.fit` returns.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    /// Per design column; aliased columns are `None` (R's `NA`).
    pub coefficients: Vec<Option<f64>>,
    pub y: Vec<f64>,
    pub mu: Vec<f64>,
    /// The working weights of the last IRLS step (`model$weights`).
    pub working_weights: Vec<f64>,
    /// The working residuals `(y - mu) / mu` (`model$residuals`).
    pub residuals: Vec<f64>,
    pub df_residual: f64,
    pub converged: bool,
    qr: Qr,
    /// The rows with a positive prior weight, the only ones in the QR.
    good: Vec<usize>,
}

/// Why IRLS could not produce a fit at all (R stops with an error in these cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FitFailed;

/// R's log link: `exp(eta)` kept at least machine epsilon.
fn linkinv(eta: f64) -> f64 {
    eta.exp().max(f64::EPSILON)
}

fn deviance(y: &[f64], mu: &[f64], weights: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .zip(weights)
        .map(|((&y, &mu), &w)| {
            2.0 * if y > 0.0 {
                w * (y * (y / mu).ln() - (y - mu))
            } else {
                mu * w
            }
        })
        .sum()
}

fn linear_predictor(design: &Design, coefficients: &[f64]) -> Vec<f64> {
    (0..design.rows)
        .map(|i| {
            (0..design.cols)
                .map(|j| design.at(i, j) * coefficients[j])
                .sum()
        })
        .collect()
}

/// `glm.fit(x, y, weights, family = quasipoisson(link = "log"))`.
pub(crate) fn fit_quasi_poisson(
    design: &Design,
    y: &[f64],
    prior_weights: &[f64],
) -> Result<Fit, FitFailed> {
    let n = design.rows;
    let p = design.cols;
    let good: Vec<usize> = (0..n).filter(|&i| prior_weights[i] > 0.0).collect();
    let mut mu: Vec<f64> = y.iter().map(|y| y + 0.1).collect();
    let mut eta: Vec<f64> = mu.iter().map(|m| m.ln()).collect();
    let mut devold = deviance(y, &mu, prior_weights);
    let mut coefold: Option<Vec<f64>> = None;
    let mut coef = vec![0.0; p];
    let mut converged = false;
    let mut last: Option<(Qr, Vec<f64>)> = None;
    for _ in 0..MAXIT {
        // mu.eta and the variance are both mu under the log link.
        let rows = good.len();
        let mut w = Vec::with_capacity(rows);
        let mut z = Vec::with_capacity(rows);
        for &i in &good {
            let mu_eta = linkinv(eta[i]);
            z.push(eta[i] + (y[i] - mu[i]) / mu_eta);
            w.push((prior_weights[i] * mu_eta * mu_eta / mu[i]).sqrt());
        }
        let mut x = Vec::with_capacity(rows * p);
        for j in 0..p {
            for (r, &i) in good.iter().enumerate() {
                x.push(design.at(i, j) * w[r]);
            }
        }
        let zw: Vec<f64> = z.iter().zip(&w).map(|(z, w)| z * w).collect();
        let qr = Qr::new(rows, p, x, QR_TOL);
        let mut start = qr.solve(&zw);
        if start.iter().any(|c| !c.is_finite()) {
            last = Some((qr, w));
            break;
        }
        eta = linear_predictor(design, &start);
        mu = eta.iter().map(|&e| linkinv(e)).collect();
        let mut dev = deviance(y, &mu, prior_weights);
        let valid = |mu: &[f64]| mu.iter().all(|m| m.is_finite() && *m > 0.0);
        if !dev.is_finite() || !valid(&mu) {
            // Step halving towards the last good coefficients.
            let Some(old) = &coefold else {
                return Err(FitFailed);
            };
            let mut tries = 0;
            while !dev.is_finite() || !valid(&mu) {
                tries += 1;
                if tries > MAXIT {
                    return Err(FitFailed);
                }
                start = start.iter().zip(old).map(|(s, o)| (s + o) / 2.0).collect();
                eta = linear_predictor(design, &start);
                mu = eta.iter().map(|&e| linkinv(e)).collect();
                dev = deviance(y, &mu, prior_weights);
            }
        }
        last = Some((qr, w));
        if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
            converged = true;
            coef = start;
            break;
        }
        devold = dev;
        coef.clone_from(&start);
        coefold = Some(start);
    }
    let (qr, w) = last.ok_or(FitFailed)?;
    let mut working_weights = vec![0.0; n];
    for (r, &i) in good.iter().enumerate() {
        working_weights[i] = w[r] * w[r];
    }
    let residuals = (0..n).map(|i| (y[i] - mu[i]) / linkinv(eta[i])).collect();
    let mut coefficients: Vec<Option<f64>> = coef.into_iter().map(Some).collect();
    for position in qr.rank..p {
        coefficients[qr.pivot[position]] = None;
    }
    let n_ok = good.len();
    Ok(Fit {
        good,
        coefficients,
        y: y.to_vec(),
        mu,
        working_weights,
        residuals,
        df_residual: n_ok as f64 - qr.rank as f64,
        converged,
        qr,
    })
}

impl Fit {
    /// `summary.glm`'s estimated dispersion, `sum(w * r^2) / df` over positive `weights`:
    /// the working weights normally, but the surveillance package overwrites them with the
    /// prior weights in farringtonFlexible's reweighted model, so the weights are a choice.
    pub fn dispersion(&self, weights: &[f64]) -> f64 {
        if self.df_residual <= 0.0 {
            return f64::NAN;
        }
        let ss: f64 = weights
            .iter()
            .zip(&self.residuals)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, r)| w * r * r)
            .sum();
        ss / self.df_residual
    }

    /// `hatvalues(model)`: the diagonal of the hat matrix of the last weighted fit.
    pub fn hat_values(&self) -> Vec<f64> {
        let n = self.qr.rows;
        let mut hat = vec![0.0; n];
        for j in 0..self.qr.rank {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            self.qr.apply(&mut e, false);
            for (h, q) in hat.iter_mut().zip(&e) {
                *h += q * q;
            }
        }
        // lm.influence rounds hat values within 10 ulps of 1 up to 1.
        for h in &mut hat {
            if *h > 1.0 - 10.0 * f64::EPSILON {
                *h = 1.0;
            }
        }
        // Rows with a zero prior weight never reached the QR; they have no leverage. (R
        // drops them from hatvalues; a weight is 0 only for an infinite residual.)
        let mut all = vec![0.0; self.y.len()];
        for (&row, h) in self.good.iter().zip(hat) {
            all[row] = h;
        }
        all
    }

    /// The linear predictor at `x0` (one value per design column).
    pub fn predict_link(&self, x0: &[f64]) -> f64 {
        x0.iter()
            .zip(&self.coefficients)
            .map(|(x, c)| x * c.unwrap_or(0.0))
            .sum()
    }

    /// The standard error of the linear predictor at `x0` for the given dispersion
    /// (`predict.lm`'s `se.fit` with `scale = sqrt(dispersion)`).
    pub fn se_link(&self, x0: &[f64], dispersion: f64) -> f64 {
        let v = self.qr.solve_r_transpose(x0);
        (v.iter().map(|v| v * v).sum::<f64>() * dispersion).sqrt()
    }

    /// `summary.glm(model)$coefficients[column, 4]`: the two-sided t-test p-value of one
    /// coefficient with the given dispersion; `None` if the column is aliased.
    pub fn p_value(&self, column: usize, dispersion: f64) -> Option<f64> {
        let estimate = self.coefficients[column]?;
        let position = self.qr.pivot.iter().position(|&c| c == column)?;
        // The unscaled variance is entry (position, position) of chol2inv(R) = R^-1 R^-T,
        // the squared norm of that row of R^-1.
        let k = self.qr.rank;
        let mut row_sq = 0.0;
        for col in position..k {
            // Column `col` of R^-1 by back substitution; only its entry `position` is needed.
            let mut u = vec![0.0; k];
            for i in (0..=col).rev() {
                let e = if i == col { 1.0 } else { 0.0 };
                let s: f64 = (i + 1..=col).map(|j| self.qr.r(i, j) * u[j]).sum();
                u[i] = (e - s) / self.qr.r(i, i);
            }
            row_sq += u[position] * u[position];
        }
        if self.df_residual <= 0.0 {
            return Some(f64::NAN);
        }
        let t = estimate / (dispersion * row_sq).sqrt();
        Some(2.0 * crate::dist::pt(-t.abs(), self.df_residual))
    }
}

/// `anscombe.residuals(model, phi)` from the surveillance package.
pub(crate) fn anscombe_residuals(fit: &Fit, phi: f64) -> Vec<f64> {
    let hat = fit.hat_values();
    fit.y
        .iter()
        .zip(&fit.mu)
        .zip(hat)
        .map(|((&y, &mu), h)| {
            let a = 1.5 * (y.powf(2.0 / 3.0) * mu.powf(-1.0 / 6.0) - mu.sqrt());
            a / (phi * (1.0 - h)).sqrt()
        })
        .collect()
}

/// `algo.farrington.assign.weights(s, weightsThreshold)`: residuals above the threshold
/// are down-weighted by `s^-2`, and all weights rescaled to sum to n.
pub(crate) fn assign_weights(s: &[f64], threshold: f64) -> Vec<f64> {
    let denominator: f64 = s
        .iter()
        .map(|&s| if s > threshold { s.powi(-2) } else { 1.0 })
        .sum();
    let gamma = s.len() as f64 / denominator;
    s.iter()
        .map(|&s| {
            if s > threshold {
                gamma * s.powi(-2)
            } else {
                gamma
            }
        })
        .collect()
}

/// R's `max(x, 1)`: `NaN` stays `NaN`.
pub(crate) fn at_least_one(x: f64) -> f64 {
    if x.is_nan() { x } else { x.max(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_as_in_the_package_tests() {
        // tests/testthat/test-farringtonFlexible.R: all below the threshold gives 1s, and the
        // hand-checked case gives 1.6 and 0.4.
        assert_eq!(assign_weights(&[0.0; 10], 0.0), vec![1.0; 10]);
        let mut s = vec![2.0; 10];
        s[..5].fill(0.0);
        let w = assign_weights(&s, 0.0);
        for w in &w[..5] {
            assert!((w - 1.6).abs() < 1e-12);
        }
        for w in &w[5..] {
            assert!((w - 0.4).abs() < 1e-12);
        }
    }

    #[test]
    fn intercept_only_fit_is_the_mean() {
        let y = [3.0, 5.0, 4.0, 8.0];
        let design = Design::from_columns(&[vec![1.0; 4]]);
        let fit = fit_quasi_poisson(&design, &y, &[1.0; 4]).expect("fit");
        assert!(fit.converged);
        let mean: f64 = 5.0;
        assert!((fit.predict_link(&[1.0]) - mean.ln()).abs() < 1e-8);
        // R: summary(glm(c(3,5,4,8) ~ 1, family = quasipoisson))$dispersion, which is not
        // quite Pearson's 14/15 because the working weights are those of the last step.
        let disp = fit.dispersion(&fit.working_weights);
        assert!((disp - 0.9333352509754836).abs() < 1e-13, "{disp}");
    }
}
