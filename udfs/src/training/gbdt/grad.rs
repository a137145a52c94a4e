//! Gradients in fixed point, so that histogram sums are exact.
//!
//! A histogram bin is a sum of per-row gradients. Summed in floating point,
//! the result depends on the order rows arrive in — which differs between an
//! embedded run and a cluster, and between runs on a cluster. Like XGBoost's
//! GPU `hist` (its "gradient quantiser"), Ember rounds every gradient and
//! Hessian to a multiple of 1/`scale` and sums `i64` integers: addition is
//! exact and associative, so every merge order gives bit-identical
//! histograms, splits and trees.
//!
//! The scale is a power of two chosen per round from quantities every
//! trainer knows identically — the row count and a bound on any row's
//! gradient — so that no sum of any subset of rows can overflow: `rows ×
//! bound × scale ≤ 2⁶²`. It is at most 2⁴⁰ (rounding ≤ 5·10⁻¹³ per row, far
//! below what a split or a leaf weight can resolve); a billion rows with
//! logistic loss still get 2³².

use serde::{Deserialize, Serialize};

use crate::training::error::{TrainError, TrainResult};
use crate::training::params::Objective;

/// The finest scale used: 2⁴⁰.
pub const MAX_SCALE_LOG2: i32 = 40;

/// A gradient/Hessian pair (or a sum of them) in units of 1/scale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradPair {
    /// Σ gradient.
    pub g: i64,
    /// Σ Hessian.
    pub h: i64,
}

impl GradPair {
    /// Adds `other` to `self`. Wrapping: exact whenever the true sum fits
    /// (the quantiser's scale is chosen so that it does), the same in any
    /// order, and never a panic on a crafted message.
    #[inline]
    pub fn add(&mut self, other: GradPair) {
        self.g = self.g.wrapping_add(other.g);
        self.h = self.h.wrapping_add(other.h);
    }

    /// `self − other` (wrapping, as [`Self::add`]).
    #[inline]
    pub fn minus(self, other: GradPair) -> GradPair {
        GradPair {
            g: self.g.wrapping_sub(other.g),
            h: self.h.wrapping_sub(other.h),
        }
    }
}

/// The fixed-point scale of one boosting round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantiser {
    /// log2 of the scale.
    pub scale_log2: i32,
}

impl Quantiser {
    /// The finest scale at which `rows` rows, each with |gradient| and
    /// Hessian at most `bound`, cannot overflow an `i64` sum.
    pub fn for_rows(function: &'static str, rows: u64, bound: f64) -> TrainResult<Self> {
        let total = rows.max(1) as f64 * bound.max(1.0);
        let room = (2f64.powi(62) / total).log2().floor();
        if !room.is_finite() || room < 0.0 {
            return Err(TrainError::Numeric {
                function,
                reason: format!(
                    "{rows} rows with gradients up to {bound:e} cannot be summed exactly; scale the label down"
                ),
            });
        }
        Ok(Self {
            scale_log2: (room as i32).min(MAX_SCALE_LOG2),
        })
    }

    /// 2^scale_log2, built from its exponent bits (exact, no `powi` loop).
    #[inline]
    fn scale(self) -> f64 {
        f64::from_bits(((1023 + i64::from(self.scale_log2)) as u64) << 52)
    }

    /// 2^−scale_log2: multiplying by it is exactly dividing by the scale.
    #[inline]
    fn inverse(self) -> f64 {
        f64::from_bits(((1023 - i64::from(self.scale_log2)) as u64) << 52)
    }

    /// `x` in fixed-point units (`x·scale`, exact: the scale is a power of two).
    #[inline]
    pub fn scaled(self, x: f64) -> f64 {
        x * self.scale()
    }

    /// Rounds a value to fixed point (|x| within the bound the scale was made for).
    #[inline]
    pub fn quantise(self, x: f64) -> i64 {
        round_to_i64(x * self.scale())
    }

    /// The gradient sum as a float.
    #[inline]
    pub fn grad(self, p: GradPair) -> f64 {
        p.g as f64 * self.inverse()
    }

    /// The Hessian sum as a float.
    #[inline]
    pub fn hess(self, p: GradPair) -> f64 {
        p.h as f64 * self.inverse()
    }

    /// The gradient pair of one row.
    #[inline]
    pub fn row_gradient(self, objective: Objective, margin: f64, label: f64) -> GradPair {
        match objective {
            Objective::SquaredError => GradPair {
                g: self.quantise(margin - label),
                h: self.quantise(1.0),
            },
            Objective::BinaryLogistic => {
                let p = 1.0 / (1.0 + (-margin).exp());
                GradPair {
                    g: self.quantise(p - label),
                    h: self.quantise((p * (1.0 - p)).max(1e-16)),
                }
            }
        }
    }
}

/// `x.round() as i64` (halves away from zero, saturating), without the
/// call to libm's `round` that `f64::round` becomes on baseline x86-64 (no
/// SSE4.1): every row's gradient is rounded every round.
///
/// Truncation gives the integer part and `x − trunc(x)` is exact in `f64`
/// (it is `0` once `|x| ≥ 2⁵²`, where every `f64` is an integer).
#[inline]
pub fn round_to_i64(x: f64) -> i64 {
    let whole = x as i64;
    let fraction = x - whole as f64;
    whole
        .saturating_add(i64::from(fraction >= 0.5))
        .saturating_sub(i64::from(fraction <= -0.5))
}

/// A bound on any row's |gradient| (and Hessian) in a round, from the label
/// range, the starting margin and how far the trees so far can have moved a
/// margin (`drift` = Σ over trees of the largest |leaf value|).
pub fn gradient_bound(
    objective: Objective,
    label_min: f64,
    label_max: f64,
    base_margin: f64,
    drift: f64,
) -> f64 {
    match objective {
        Objective::BinaryLogistic => 1.0,
        Objective::SquaredError => {
            ((label_max - base_margin)
                .abs()
                .max((label_min - base_margin).abs())
                + drift)
                * (1.0 + 1e-9)
                + 1.0
        }
    }
}

/// Checks a label is representable (a label of 10²⁰ is not a useful regression target).
pub fn check_label_range(function: &'static str, label: &str, y: f64) -> TrainResult<()> {
    if y.abs() < 1e15 {
        Ok(())
    } else {
        Err(TrainError::Label {
            function,
            label: label.to_string(),
            reason: format!("holds {y}; labels must be below 1e15 in magnitude"),
        })
    }
}

/// The initial prediction (XGBoost's `base_score`, in output space) for
/// labels with the given mean, rounded to `f32` as XGBoost stores it.
pub fn base_score(objective: Objective, label_mean: f64) -> f32 {
    match objective {
        Objective::SquaredError => label_mean as f32,
        Objective::BinaryLogistic => label_mean.clamp(1e-6, 1.0 - 1e-6) as f32,
    }
}

/// The margin a `base_score` starts every row at.
pub fn base_margin(objective: Objective, base_score: f32) -> f64 {
    let b = f64::from(base_score);
    match objective {
        Objective::SquaredError => b,
        Objective::BinaryLogistic => (b / (1.0 - b)).ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_order_independent() {
        let q = Quantiser::for_rows("t", 1000, 1.0).unwrap();
        assert_eq!(q.scale_log2, MAX_SCALE_LOG2);
        assert_eq!(q.scale(), 2f64.powi(40));
        assert_eq!(q.grad(GradPair { g: 3 << 39, h: 0 }), 1.5);
        let rows: Vec<GradPair> = (0..1000)
            .map(|i| {
                q.row_gradient(
                    Objective::BinaryLogistic,
                    (f64::from(i) * 0.37).sin() * 3.0,
                    f64::from(i % 2),
                )
            })
            .collect();
        let mut forward = GradPair::default();
        rows.iter().for_each(|r| forward.add(*r));
        let mut backward = GradPair::default();
        rows.iter().rev().for_each(|r| backward.add(*r));
        assert_eq!(forward, backward);
    }

    #[test]
    fn rounding_matches_f64_round() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999999999999994,
            -0.49999999999999994,
            4503599627370495.5,
            -4503599627370495.5,
            4503599627370497.0,
            9007199254740993.0,
            9.3e18,
            -9.3e18,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
        ];
        let mut seed = 5u64;
        for _ in 0..100_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let x = (unit - 0.5) * 2f64.powi((seed % 70) as i32);
            values.extend([x, x.floor() + 0.5, -(x.floor() + 0.5)]);
        }
        for x in values {
            assert_eq!(round_to_i64(x), x.round() as i64, "{x:e}");
        }
    }

    #[test]
    fn the_scale_leaves_room_for_every_row() {
        let q = Quantiser::for_rows("t", 1_000_000_000, 1.0).unwrap();
        assert!(q.scale_log2 <= 32, "{q:?}");
        let worst = q.quantise(1.0) as i128 * 1_000_000_000;
        assert!(worst < i128::from(i64::MAX));
        assert!(Quantiser::for_rows("t", 1 << 40, 1e12).is_err());
    }
}
