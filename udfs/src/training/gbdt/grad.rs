//! Gradients in fixed point, so that histogram sums are exact.
//!
//! A histogram bin is a sum of per-row gradients. Summed in floating point,
//! the result depends on the order rows arrive in — which differs between an
//! embedded run and a cluster, and between runs on a cluster. Like XGBoost's
//! GPU `hist` (its "gradient quantiser"), Ember rounds every gradient and
//! Hessian to a multiple of 2⁻⁴⁰ and sums integers: addition is exact and
//! associative, so every merge order gives bit-identical histograms, splits
//! and trees. The rounding (≤ 5·10⁻¹³ per row) is far below what a split or a
//! leaf weight can resolve.

use serde::{Deserialize, Serialize};

use crate::training::error::{TrainError, TrainResult};
use crate::training::params::Objective;

/// 2⁴⁰: one unit of a quantised gradient is 2⁻⁴⁰.
pub const SCALE: f64 = 1_099_511_627_776.0;

/// A gradient/Hessian pair (or a sum of them) in units of 2⁻⁴⁰.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradPair {
    /// Σ gradient.
    pub g: i128,
    /// Σ Hessian.
    pub h: i128,
}

impl GradPair {
    /// Adds `other` to `self`.
    #[inline]
    pub fn add(&mut self, other: GradPair) {
        self.g += other.g;
        self.h += other.h;
    }

    /// `self − other`.
    #[inline]
    pub fn minus(self, other: GradPair) -> GradPair {
        GradPair { g: self.g - other.g, h: self.h - other.h }
    }

    /// The gradient sum as a float.
    pub fn grad(self) -> f64 {
        self.g as f64 / SCALE
    }

    /// The Hessian sum as a float.
    pub fn hess(self) -> f64 {
        self.h as f64 / SCALE
    }
}

/// Rounds a finite value to fixed point.
#[inline]
pub fn quantise(x: f64) -> i128 {
    (x * SCALE).round() as i128
}

/// The gradient pair of one row.
#[inline]
pub fn row_gradient(objective: Objective, margin: f64, label: f64) -> GradPair {
    match objective {
        Objective::SquaredError => GradPair { g: quantise(margin - label), h: SCALE as i128 },
        Objective::BinaryLogistic => {
            let p = 1.0 / (1.0 + (-margin).exp());
            GradPair { g: quantise(p - label), h: quantise((p * (1.0 - p)).max(1e-16)) }
        }
    }
}

/// Checks a gradient is representable (a label of 10²⁰ is not a useful regression target).
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
        let rows: Vec<GradPair> = (0..1000)
            .map(|i| row_gradient(Objective::BinaryLogistic, (f64::from(i) * 0.37).sin() * 3.0, f64::from(i % 2)))
            .collect();
        let mut forward = GradPair::default();
        rows.iter().for_each(|r| forward.add(*r));
        let mut backward = GradPair::default();
        rows.iter().rev().for_each(|r| backward.add(*r));
        assert_eq!(forward, backward);
    }
}
