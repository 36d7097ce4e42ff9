//! Zipf-distributed block numbers (`--random_distribution zipf:THETA`): a hot set of blocks
//! drawn far more often than the rest, as fio's option of the same name.
//!
//! [`Zipf`] draws ranks `1..=n` with probability proportional to `1 / rank^theta`, by
//! rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to generate variates
//! from monotone discrete distributions", ACM TOMACS 6(3), 1996): exact for any `theta > 0`,
//! constant time per draw (about one logarithm and one exponential, a retry now and then), no
//! table of `n` entries. [`Scramble`] then maps ranks to block numbers by a fixed permutation,
//! so the popular blocks are spread over the whole file rather than packed at its start (fio
//! does the same with a hash).

/// Ranks `1..=n`, rank `k` drawn with probability proportional to `k^-theta`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    theta: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// Over `n` ranks (at least 1) with exponent `theta` (finite, greater than 0).
    pub fn new(n: u64, theta: f64) -> Zipf {
        assert!(n >= 1, "Zipf over no ranks");
        assert!(theta.is_finite() && theta > 0.0, "Zipf exponent {theta}");
        let mut z = Zipf { n: n as f64, theta, h_integral_x1: 0.0, h_integral_n: 0.0, s: 0.0 };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`, from uniform numbers in `[0, 1)` taken from `uniform` (one per try).
    #[inline]
    pub fn sample(&self, mut uniform: impl FnMut() -> f64) -> u64 {
        loop {
            // u is uniform in (h_integral_x1, h_integral_n].
            let u = self.h_integral_n + uniform() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            // Accept at once when k is close enough to x (most draws), else test under the hat.
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `x^-theta`.
    #[inline]
    fn h(&self, x: f64) -> f64 {
        (-self.theta * x.ln()).exp()
    }

    /// An antiderivative of `h`: `(x^(1-theta) - 1) / (1 - theta)`, `ln x` for `theta = 1`.
    #[inline]
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.theta) * log_x) * log_x
    }

    /// The inverse of [`h_integral`](Self::h_integral).
    #[inline]
    fn h_integral_inverse(&self, x: f64) -> f64 {
        // Rounding may take t just below -1, where the logarithm is undefined.
        let t = (x * (1.0 - self.theta)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0 (where it tends to 1).
#[inline]
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0 (where it tends to 1).
#[inline]
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// A fixed permutation of `0..n`: rank `r` (from 0) goes to block `(r * step + shift) mod n`,
/// `step` coprime with `n` and close to `n` times the golden ratio's fraction, so consecutive
/// ranks land far apart and the first ones are spread evenly over the whole range (a Weyl
/// sequence). `shift` comes from a seed.
#[derive(Debug, Clone, Copy)]
pub struct Scramble {
    n: u64,
    step: u64,
    shift: u64,
}

impl Scramble {
    /// The permutation of `0..n` (`n` at least 1) for `seed`.
    pub fn new(n: u64, seed: u64) -> Scramble {
        assert!(n >= 1, "a permutation of nothing");
        let mut step = ((n as f64 * 0.618_033_988_749_894_9) as u64).clamp(1, n);
        while gcd(step, n) != 1 {
            step += 1;
        }
        Scramble { n, step, shift: seed % n }
    }

    /// Where rank `r` (from 0, below `n`) goes.
    #[inline]
    pub fn map(&self, r: u64) -> u64 {
        ((u128::from(r) * u128::from(self.step) + u128::from(self.shift)) % u128::from(self.n))
            as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::splitmix64;

    fn uniform(state: &mut u64) -> f64 {
        (splitmix64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Draws `count` ranks and counts each.
    fn histogram(n: u64, theta: f64, count: usize) -> Vec<u64> {
        let z = Zipf::new(n, theta);
        let mut state = 42;
        let mut seen = vec![0u64; n as usize + 1];
        for _ in 0..count {
            let k = z.sample(|| uniform(&mut state));
            assert!((1..=n).contains(&k), "rank {k} outside 1..={n}");
            seen[k as usize] += 1;
        }
        seen
    }

    #[test]
    fn the_most_popular_rank_dominates_and_frequencies_follow_the_law() {
        let (n, theta, count) = (100_000u64, 1.2, 400_000usize);
        let seen = histogram(n, theta, count);
        // P(1) = 1 / H(n, theta), about 0.18 for theta 1.2: far more than rank 1000's share.
        let harmonic: f64 = (1..=n).map(|k| (k as f64).powf(-theta)).sum();
        let p1 = seen[1] as f64 / count as f64;
        assert!(
            (p1 - 1.0 / harmonic).abs() < 0.01,
            "P(rank 1) = {p1}, expected {}",
            1.0 / harmonic
        );
        assert!(
            seen[1] > 1000 * seen[1000].max(1) / 2,
            "rank 1: {}, rank 1000: {}",
            seen[1],
            seen[1000]
        );
        // Rank 2 is drawn about 2^-1.2 = 0.435 times as often as rank 1.
        let r = seen[2] as f64 / seen[1] as f64;
        assert!((r - 2f64.powf(-theta)).abs() < 0.03, "rank 2 / rank 1 = {r}");
        // The top ten ranks together, against the law.
        let top: u64 = seen[1..=10].iter().sum();
        let expected: f64 = (1..=10).map(|k| (k as f64).powf(-theta)).sum::<f64>() / harmonic;
        let got = top as f64 / count as f64;
        assert!((got - expected).abs() < 0.01, "top 10: {got}, expected {expected}");
    }

    #[test]
    fn other_exponents_including_one_and_tiny_ranges() {
        for theta in [0.5, 0.99, 1.0, 1.01, 2.0, 3.5] {
            let seen = histogram(1000, theta, 50_000);
            assert!(seen[1] > seen[2] && seen[2] > seen[10], "theta {theta}: {:?}", &seen[..11]);
            assert!(seen[1] > seen[1000], "theta {theta}");
        }
        // One rank: always it.
        assert!(histogram(1, 1.2, 100)[1] == 100);
        // Two ranks: 1 drawn 2^theta times as often as 2.
        let seen = histogram(2, 1.0, 30_000);
        let r = seen[1] as f64 / seen[2] as f64;
        assert!((r - 2.0).abs() < 0.15, "{seen:?}");
    }

    #[test]
    fn scramble_is_a_permutation_that_spreads_the_first_ranks() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4096, 65_537] {
            for seed in [0u64, 1, 12345, u64::MAX] {
                let s = Scramble::new(n, seed);
                let mut hit = vec![false; n as usize];
                for r in 0..n {
                    let b = s.map(r);
                    assert!(b < n, "n {n}: rank {r} -> {b}");
                    assert!(!hit[b as usize], "n {n} seed {seed}: block {b} twice");
                    hit[b as usize] = true;
                }
            }
        }
        // The 100 most popular of 2^20 blocks: about as many in each half of the file, and no
        // two within 1000 blocks of each other.
        let n = 1 << 20;
        let s = Scramble::new(n, 7);
        let mut top: Vec<u64> = (0..100).map(|r| s.map(r)).collect();
        let low = top.iter().filter(|&&b| b < n / 2).count();
        assert!((35..=65).contains(&low), "{low} of the top 100 in the first half");
        top.sort_unstable();
        assert!(top.windows(2).all(|w| w[1] - w[0] > 1000), "{top:?}");
        // Another seed moves the set.
        assert_ne!(Scramble::new(n, 8).map(0), s.map(0));
    }
}
