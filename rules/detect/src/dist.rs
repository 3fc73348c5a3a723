//! The distribution functions the detectors take from R (`qnorm`, `pnorm`, `pt`, `qpois`,
//! `qnbinom`), on top of `statrs`.

use statrs::distribution::{
    ContinuousCDF, DiscreteCDF, NegativeBinomial, Normal, Poisson, StudentsT,
};

/// R's `qnorm(p, mean, sd)`.
pub(crate) fn qnorm(p: f64, mean: f64, sd: f64) -> f64 {
    if sd.is_nan() || mean.is_nan() || p.is_nan() {
        return f64::NAN;
    }
    if sd == 0.0 {
        return mean;
    }
    match Normal::new(mean, sd) {
        Ok(normal) => normal.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// R's `pnorm(q)` for the standard normal, lower or upper tail; each tail is computed
/// directly, so a far tail keeps its precision instead of rounding `1 - p` to 0.
pub(crate) fn pnorm(q: f64, lower_tail: bool) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    let normal = Normal::standard();
    if lower_tail {
        normal.cdf(q)
    } else {
        normal.sf(q)
    }
}

/// R's `pt(q, df)`, the lower tail.
pub(crate) fn pt(q: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) if !q.is_nan() => t.cdf(q),
        _ => f64::NAN,
    }
}

/// R's `qpois(p, lambda)` for 0 < p < 1.
pub(crate) fn qpois(p: f64, lambda: f64) -> f64 {
    if lambda.is_nan() || lambda < 0.0 || !lambda.is_finite() {
        return f64::NAN;
    }
    if lambda == 0.0 {
        return 0.0;
    }
    let Ok(poisson) = Poisson::new(lambda) else {
        return f64::NAN;
    };
    discrete_quantile(p, lambda, lambda.sqrt(), 1.0 / lambda.sqrt(), |x| {
        poisson.cdf(x)
    })
}

/// R's `qnbinom(p, size, prob)` for 0 < p < 1: failures before the `size`-th success.
pub(crate) fn qnbinom(p: f64, size: f64, prob: f64) -> f64 {
    if size.is_nan() || prob.is_nan() || size < 0.0 || !(prob > 0.0 && prob <= 1.0) {
        return f64::NAN;
    }
    if size == 0.0 || prob == 1.0 {
        return 0.0;
    }
    if !size.is_finite() {
        return f64::NAN;
    }
    let Ok(nb) = NegativeBinomial::new(size, prob) else {
        return f64::NAN;
    };
    let q = 1.0 - prob;
    let mu = size * q / prob;
    let sigma = (size * q).sqrt() / prob;
    let gamma = (1.0 + q) / (size * q).sqrt();
    discrete_quantile(p, mu, sigma, gamma, |x| nb.cdf(x))
}

/// The smallest integer `x >= 0` with `cdf(x) >= p`, searched from the Cornish-Fisher guess
/// as R's discrete quantiles are, with R's fuzz so that a `p` computed as a cdf value lands
/// on its own point.
fn discrete_quantile(p: f64, mu: f64, sigma: f64, gamma: f64, cdf: impl Fn(u64) -> f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let p = p * (1.0 - 64.0 * f64::EPSILON);
    let z = qnorm(p, 0.0, 1.0);
    let guess = (mu + sigma * (z + gamma * (z * z - 1.0) / 6.0)).round();
    let mut x = if guess.is_finite() && guess > 0.0 {
        guess as u64
    } else {
        0
    };
    if cdf(x) >= p {
        while x > 0 && cdf(x - 1) >= p {
            x -= 1;
        }
    } else {
        while cdf(x) < p {
            x += 1;
        }
    }
    x as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_r() {
        // Values from R 4.2: qnorm(0.999), qpois(0.95, 5), qnbinom(0.95, 10, 0.5), pt(-2, 7).
        assert!((qnorm(0.999, 0.0, 1.0) - 3.090232306167813).abs() < 1e-12);
        assert_eq!(qpois(0.95, 5.0), 9.0);
        assert_eq!(qnbinom(0.95, 10.0, 0.5), 18.0);
        assert!((pt(-2.0, 7.0) - 0.04280966428148798).abs() < 1e-10);
        assert_eq!(qpois(0.5, 0.0), 0.0);
        assert_eq!(qnbinom(0.5, 0.0, 0.5), 0.0);
        // pnorm(-1.6329931618554521) and pnorm(-8.9642145700079521) in R 4.
        let z = 1.632_993_161_855_452;
        // statrs' erfc is good to about 1e-10 relative, far inside what a threshold needs.
        assert!((pnorm(z, false) / 0.051_235_217_429_874_72 - 1.0).abs() < 1e-10);
        assert!((pnorm(-z, true) - pnorm(z, false)).abs() < 1e-17);
        let far = pnorm(8.964_214_570_007_952, false);
        assert!(
            (far / 1.562_500_093_038_510_2e-19 - 1.0).abs() < 1e-9,
            "{far}"
        );
    }
}
