//! Logistic regression by Newton's method over mergeable gradient and Hessian sums.
//!
//! One Newton iteration needs `Σ (p−y)·x` and `Σ p(1−p)·x·xᵀ` over every row at
//! the current coefficients: [`NewtonSums`] holds exactly that and merges by
//! addition, so an iteration is one aggregate over the data wherever it lives
//! (a group's rows in `train_logistic`, a whole table on a cluster in `ember
//! train`). The driver solves the small `p × p` system and repeats until the
//! step is below the tolerance. Converged, this is the maximum-likelihood
//! solution scikit-learn's `LogisticRegression(penalty=None,
//! solver="newton-cholesky")` finds; with `l2` it is the ridge-penalised one
//! with an unpenalised intercept.

use serde::{Deserialize, Serialize};

use crate::training::error::{TrainError, TrainResult};
use crate::training::params::LogisticParams;
use crate::training::solve::cholesky_solve;

/// Gradient and Hessian sums of the log loss at fixed coefficients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewtonSums {
    /// Rows summed.
    pub count: u64,
    /// Σ (p − y)·(1, x).
    pub gradient: Vec<f64>,
    /// Upper triangle of Σ p(1 − p)·(1, x)(1, x)ᵀ, row-major.
    pub hessian: Vec<f64>,
    /// Σ log loss, for reporting.
    pub loss: f64,
}

impl NewtonSums {
    /// Empty sums for `d` features (plus the intercept).
    pub fn new(d: usize) -> Self {
        let p = d + 1;
        Self {
            count: 0,
            gradient: vec![0.0; p],
            hessian: vec![0.0; p * (p + 1) / 2],
            loss: 0.0,
        }
    }

    /// Adds rows (features column-major, labels 0/1, all finite) at coefficients
    /// `beta` = (intercept, w...).
    pub fn add_rows(&mut self, beta: &[f64], columns: &[&[f64]], labels: &[f64]) {
        let p = beta.len();
        let mut x = vec![1.0; p];
        for (r, &y) in labels.iter().enumerate() {
            let mut z = beta[0];
            for (j, column) in columns.iter().enumerate() {
                x[j + 1] = column[r];
                z += beta[j + 1] * column[r];
            }
            let prob = 1.0 / (1.0 + (-z).exp());
            let weight = prob * (1.0 - prob);
            let residual = prob - y;
            // log(1 + e^z) − y·z, computed without overflow.
            self.loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
            let mut idx = 0;
            for i in 0..p {
                self.gradient[i] += residual * x[i];
                let wi = weight * x[i];
                for xj in &x[i..] {
                    self.hessian[idx] += wi * xj;
                    idx += 1;
                }
            }
        }
        self.count += labels.len() as u64;
    }

    /// Adds another partial sum.
    pub fn merge(&mut self, other: &NewtonSums) {
        self.count += other.count;
        self.loss += other.loss;
        for (a, b) in self.gradient.iter_mut().zip(&other.gradient) {
            *a += b;
        }
        for (a, b) in self.hessian.iter_mut().zip(&other.hessian) {
            *a += b;
        }
    }
}

/// The coefficients after one Newton step, and the step's size relative to
/// the coefficients (the convergence measure).
pub fn newton_step(
    function: &'static str,
    beta: &[f64],
    sums: &NewtonSums,
    l2: f64,
    feature_names: &[String],
) -> TrainResult<(Vec<f64>, f64)> {
    let p = beta.len();
    if sums.count == 0 {
        return Err(TrainError::NoRows {
            function,
            reason: "every row has a null label or feature".into(),
        });
    }
    let mut h = vec![0.0; p * p];
    let mut idx = 0;
    for i in 0..p {
        for j in i..p {
            h[i * p + j] = sums.hessian[idx];
            h[j * p + i] = sums.hessian[idx];
            idx += 1;
        }
    }
    let mut g = sums.gradient.clone();
    for i in 1..p {
        h[i * p + i] += l2;
        g[i] += l2 * beta[i];
    }
    let delta = cholesky_solve(&h, &g).map_err(|pivot| {
        let what = if pivot == 0 {
            "the intercept".to_string()
        } else {
            format!("feature '{}'", feature_names.get(pivot - 1).map_or("?", String::as_str))
        };
        TrainError::Numeric {
            function,
            reason: format!(
                "the Hessian is singular at {what}: a constant or collinear feature, or probabilities saturated at 0/1 (perfect separation); drop the feature or set l2 > 0"
            ),
        }
    })?;
    let mut next = beta.to_vec();
    let mut step = 0.0_f64;
    for i in 0..p {
        next[i] -= delta[i];
        step = step.max(delta[i].abs() / next[i].abs().max(1.0));
    }
    if next.iter().any(|b| !b.is_finite()) {
        return Err(TrainError::Numeric {
            function,
            reason: "coefficients diverged (perfectly separable classes?); set l2 > 0".into(),
        });
    }
    Ok((next, step))
}

/// Fits logistic regression in memory by repeated [`newton_step`]s; returns
/// (intercept, coefficients...) and the number of iterations.
pub fn fit_in_memory(
    function: &'static str,
    params: &LogisticParams,
    columns: &[Vec<f64>],
    labels: &[f64],
    feature_names: &[String],
) -> TrainResult<(Vec<f64>, usize)> {
    let mut beta = vec![0.0; columns.len() + 1];
    let views: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    for iteration in 1..=params.max_iter {
        let mut sums = NewtonSums::new(columns.len());
        sums.add_rows(&beta, &views, labels);
        let (next, step) = newton_step(function, &beta, &sums, params.l2, feature_names)?;
        beta = next;
        if step <= params.tol {
            return Ok((beta, iteration));
        }
    }
    Err(not_converged(function, params.max_iter))
}

/// The error for a fit that used up its iterations.
pub fn not_converged(function: &'static str, max_iter: usize) -> TrainError {
    TrainError::Numeric {
        function,
        reason: format!(
            "did not converge in {max_iter} Newton iterations (perfectly separable classes?); set l2 > 0 or raise max_iter"
        ),
    }
}

/// Checks that a label is 0 or 1.
pub fn check_binary_label(function: &'static str, label: &str, y: f64) -> TrainResult<()> {
    if y == 0.0 || y == 1.0 {
        Ok(())
    } else {
        Err(TrainError::Label {
            function,
            label: label.to_string(),
            reason: format!("holds {y}; logistic regression needs labels 0 or 1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_finds_the_mle_of_a_noisy_problem() {
        // y = 1 for x > 0 except a few flipped rows: not separable.
        let x: Vec<f64> = (0..200).map(|i| f64::from(i - 100) / 25.0).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| f64::from(u8::from((*v > 0.0) ^ (i % 7 == 0))))
            .collect();
        let (beta, iterations) = fit_in_memory(
            "train_logistic",
            &LogisticParams::default(),
            std::slice::from_ref(&x),
            &y,
            &["x".into()],
        )
        .unwrap();
        assert!(iterations < 30, "{iterations}");
        // At the MLE the gradient vanishes.
        let mut sums = NewtonSums::new(1);
        sums.add_rows(&beta, &[&x], &y);
        assert!(
            sums.gradient.iter().all(|g| g.abs() < 1e-9),
            "{:?}",
            sums.gradient
        );
    }

    #[test]
    fn separable_classes_are_reported() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| f64::from(u8::from(*v >= 10.0))).collect();
        let err = fit_in_memory(
            "train_logistic",
            &LogisticParams::default(),
            &[x],
            &y,
            &["x".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("l2 > 0"), "{err}");
    }
}
