//! The simulator's randomness: a tiny seeded generator and the few distributions the
//! incident stream needs. Hand-written because the stream must be reproducible bit for bit
//! across platforms and crate upgrades, which a general-purpose `rand` does not promise.

/// splitmix64: one add and two multiplies per draw, well mixed, and seedable from any u64,
/// so every (seed, day, route) can have its own independent stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// Folds `words` into one well-mixed u64; used to derive stream seeds and id namespaces.
pub(crate) fn mix(words: &[u64]) -> u64 {
    let mut rng = Rng(0x6A09_E667_F3BC_C909);
    for &w in words {
        rng.0 ^= w;
        rng.next_u64();
    }
    rng.next_u64()
}

impl Rng {
    /// A stream of its own per `(seed, day, key)`: a scenario that changes one route's
    /// draws leaves every other route's incidents exactly as they were, so a test can
    /// compare a run with the scenario to one without it.
    pub(crate) fn stream(seed: u64, day: u32, key: u64) -> Self {
        Rng(mix(&[seed, u64::from(day), key]))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0). The modulo bias is below 2^-40 for the small n used here.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform integer in lo..=hi.
    pub(crate) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// With probability `p` a uniform count in lo..=hi, otherwise 0.
    pub(crate) fn maybe(&mut self, p: f64, lo: i32, hi: i32) -> i32 {
        if self.chance(p) {
            self.between(i64::from(lo), i64::from(hi)) as i32
        } else {
            0
        }
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// Index drawn with probability proportional to `weights` (not all zero).
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        // Rounding can leave x a hair above the last weight: take the last non-zero one.
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }

    /// Exponential with the given mean.
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }

    /// Standard normal (Box-Muller; the second value is dropped to keep the state simple).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson count with mean `lambda`. Knuth's product method below 30; above, the normal
    /// approximation, which is within a fraction of a percent there and costs one draw.
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 || !lambda.is_finite() {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut product = self.unit();
            let mut k = 0;
            while product > limit {
                product *= self.unit();
                k += 1;
            }
            return k;
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn poisson_has_the_requested_mean_on_both_sides_of_the_switch() {
        for lambda in [0.5, 4.0, 29.0, 31.0, 400.0] {
            let mut rng = Rng::stream(7, 0, 1);
            let n = 20_000;
            let mean = (0..n).map(|_| f64::from(rng.poisson(lambda))).sum::<f64>() / n as f64;
            assert!(
                (mean / lambda - 1.0).abs() < 0.03,
                "lambda {lambda}: mean {mean}"
            );
        }
    }

    #[test]
    fn weighted_never_picks_a_zero_weight() {
        let mut rng = Rng::stream(1, 2, 3);
        for _ in 0..10_000 {
            assert_ne!(rng.weighted(&[1.0, 0.0, 2.0, 0.0]) % 2, 1);
        }
    }
}
