//! Output transforms: from raw scores (margins) to predictions.
//!
//! Each library applies its objective's transform in its own precision, and
//! Ember does the same so transformed outputs agree to the last few ulps:
//! XGBoost in `f32` (`1.0f / (1.0f + expf(-x))`), LightGBM and Ember's own
//! models in `f64`.

/// The precision a library computes its scores in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// XGBoost: features, thresholds, margins and transforms in `f32`.
    F32,
    /// LightGBM and Ember: everything in `f64`.
    F64,
}

/// How raw scores become predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// The raw score is the prediction (squared error, L1, Huber, ranking, logitraw).
    Identity,
    /// `1 / (1 + exp(-scale * x))`: binary classification.
    Sigmoid {
        /// LightGBM's `sigmoid` parameter; 1 for XGBoost and Ember.
        scale: f64,
    },
    /// `exp(x)`: Poisson, gamma and Tweedie regression.
    Exp,
    /// `sign(x) * x * x`: LightGBM regression trained with `reg_sqrt`.
    SignedSquare,
    /// `log(1 + exp(x))`: LightGBM `cross_entropy_lambda`.
    Log1pExp,
    /// Softmax over the classes: multiclass probabilities.
    Softmax,
    /// One sigmoid per class (LightGBM `multiclassova`); the values need not sum to 1.
    SigmoidPerClass {
        /// LightGBM's `sigmoid` parameter.
        scale: f64,
    },
}

impl Link {
    /// Whether the model predicts one class among several (its predictions are
    /// class probabilities, one per output).
    pub fn is_multiclass(&self) -> bool {
        matches!(self, Link::Softmax | Link::SigmoidPerClass { .. })
    }

    /// Whether the model is a binary classifier (its prediction is a probability).
    pub fn is_binary_classifier(&self) -> bool {
        matches!(self, Link::Sigmoid { .. })
    }

    /// Transforms one row's raw scores in place.
    pub fn apply(&self, precision: Precision, row: &mut [f64]) {
        match precision {
            Precision::F32 => self.apply_f32(row),
            Precision::F64 => self.apply_f64(row),
        }
    }

    fn apply_f64(&self, row: &mut [f64]) {
        match *self {
            Link::Identity => {}
            Link::Sigmoid { scale } | Link::SigmoidPerClass { scale } => {
                for x in row.iter_mut() {
                    *x = 1.0 / (1.0 + (-scale * *x).exp());
                }
            }
            Link::Exp => row.iter_mut().for_each(|x| *x = x.exp()),
            Link::SignedSquare => row.iter_mut().for_each(|x| *x = x.signum() * *x * *x),
            Link::Log1pExp => row.iter_mut().for_each(|x| *x = x.exp().ln_1p()),
            Link::Softmax => {
                let max = row.iter().skip(1).fold(row[0], |m, x| m.max(*x));
                let mut sum = 0.0;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                row.iter_mut().for_each(|x| *x /= sum);
            }
        }
    }

    fn apply_f32(&self, row: &mut [f64]) {
        match *self {
            Link::Identity => {}
            Link::Sigmoid { scale } | Link::SigmoidPerClass { scale } => {
                // XGBoost's `common::Sigmoid`: the exponent is clamped at 88.7 so
                // very negative margins give a tiny positive probability, not 0.
                let scale = scale as f32;
                for x in row.iter_mut() {
                    let v = *x as f32;
                    *x = f64::from(1.0f32 / ((-scale * v).min(88.7f32).exp() + 1.0f32));
                }
            }
            Link::Exp => row
                .iter_mut()
                .for_each(|x| *x = f64::from((*x as f32).exp())),
            Link::SignedSquare => row.iter_mut().for_each(|x| {
                let v = *x as f32;
                *x = f64::from(v.signum() * v * v)
            }),
            Link::Log1pExp => row
                .iter_mut()
                .for_each(|x| *x = f64::from((*x as f32).exp().ln_1p())),
            Link::Softmax => {
                // XGBoost's `common::Softmax`: exponentials in f32, their sum in
                // f64, each divided by the sum rounded to f32.
                let max = row
                    .iter()
                    .skip(1)
                    .fold(row[0] as f32, |m, x| m.max(*x as f32));
                let mut sum = 0.0f64;
                for x in row.iter_mut() {
                    let e = (*x as f32 - max).exp();
                    sum += f64::from(e);
                    *x = f64::from(e);
                }
                let sum = sum as f32;
                row.iter_mut().for_each(|x| *x = f64::from(*x as f32 / sum));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_of_zero_is_one_half_in_both_precisions() {
        for precision in [Precision::F32, Precision::F64] {
            let mut row = [0.0];
            Link::Sigmoid { scale: 1.0 }.apply(precision, &mut row);
            assert_eq!(row[0], 0.5);
        }
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_margins() {
        let mut row = [1000.0, 1001.0, 999.0];
        Link::Softmax.apply(Precision::F64, &mut row);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(row[1] > row[0] && row[0] > row[2]);
    }

    #[test]
    fn signed_square_keeps_the_sign() {
        let mut row = [-3.0, 2.0];
        Link::SignedSquare.apply(Precision::F64, &mut row);
        assert_eq!(row, [-9.0, 4.0]);
    }
}
