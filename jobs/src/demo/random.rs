//! Seeded randomness for the generated data sets.
//!
//! Every customer (and every customer-month of telemetry) draws from its own
//! generator, seeded from the data set's seed, a stream number and the
//! customer's id. A customer's data therefore does not depend on how many
//! customers come before it or in which order they are generated.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A generator for one stream of one entity (customer, customer-month).
pub(crate) fn stream_rng(seed: u64, stream: u64, entity: u64) -> StdRng {
    let mixed = splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ entity);
    StdRng::seed_from_u64(mixed)
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `true` with probability `p` (never for `p <= 0`, always for `p >= 1`).
pub(crate) fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// A uniform integer in `low..=high` (`low` when the range is empty).
pub(crate) fn between(rng: &mut StdRng, low: i64, high: i64) -> i64 {
    if high <= low {
        low
    } else {
        rng.random_range(low..=high)
    }
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: the logarithm stays finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An exponential draw with the given mean.
pub(crate) fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// A Poisson draw (Knuth's method: for the small means used here).
pub(crate) fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    let limit = (-mean.max(0.0)).exp();
    let mut product = rng.random::<f64>();
    let mut count = 0;
    while product > limit && count < 64 {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}

/// Picks an item with probability proportional to its weight (the last
/// item when the weights do not add up, so callers need not normalise).
pub(crate) fn pick<'a, T>(rng: &mut StdRng, choices: &'a [(T, f64)]) -> &'a T {
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let mut target = rng.random::<f64>() * total;
    for (item, weight) in choices {
        if target < *weight {
            return item;
        }
        target -= weight;
    }
    // Rounding left `target` just above the last weight; `choices` is never
    // empty (every call site passes a constant table).
    &choices[choices.len() - 1].0
}

/// The logistic function.
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream_rng(7, 1, 42).random();
        let b: u64 = stream_rng(7, 1, 42).random();
        let c: u64 = stream_rng(7, 1, 43).random();
        let d: u64 = stream_rng(7, 2, 42).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn draws_have_the_expected_means() {
        let mut rng = stream_rng(1, 0, 0);
        let n = 20_000;
        let normal_mean = (0..n).map(|_| normal(&mut rng)).sum::<f64>() / n as f64;
        let poisson_mean = (0..n).map(|_| poisson(&mut rng, 1.5) as f64).sum::<f64>() / n as f64;
        let picks = (0..n)
            .filter(|_| *pick(&mut rng, &[("a", 1.0), ("b", 3.0)]) == "b")
            .count() as f64
            / n as f64;
        assert!(normal_mean.abs() < 0.05, "{normal_mean}");
        assert!((poisson_mean - 1.5).abs() < 0.05, "{poisson_mean}");
        assert!((picks - 0.75).abs() < 0.02, "{picks}");
    }
}
