//! Least squares (optionally ridge) from mergeable moments.
//!
//! The state is the count, means and co-moments of the features and the label
//! (Chan et al.'s parallel update): partial states from any number of
//! partitions merge exactly like sums do, but without the cancellation that
//! raw `XᵀX` sums suffer when features have large means. Solving
//! `(Cxx + l2·I) w = Cxy` on the centred moments gives the coefficients, and
//! the intercept is `ȳ − x̄·w` — the same solution as least squares with an
//! unpenalised intercept (scikit-learn's `LinearRegression` / `Ridge`).

use crate::training::error::{TrainError, TrainResult};
use crate::training::solve::cholesky_solve;

/// Count, means and co-moments of `k` variables (features, then the label).
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    /// Rows seen.
    pub count: u64,
    /// Mean of each variable.
    pub means: Vec<f64>,
    /// Upper triangle (row-major, `k(k+1)/2`) of Σ (xᵢ − x̄ᵢ)(xⱼ − x̄ⱼ).
    pub comoments: Vec<f64>,
}

fn tri(k: usize) -> usize {
    k * (k + 1) / 2
}

impl Moments {
    /// Empty moments of `k` variables.
    pub fn new(k: usize) -> Self {
        Self {
            count: 0,
            means: vec![0.0; k],
            comoments: vec![0.0; tri(k)],
        }
    }

    /// Number of variables.
    pub fn width(&self) -> usize {
        self.means.len()
    }

    /// Adds rows given column-major (`columns[v][row]`); every value must be finite.
    // Index loops over several parallel arrays read better than zipped iterators here.
    #[allow(clippy::needless_range_loop)]
    pub fn add_columns(&mut self, columns: &[Vec<f64>]) {
        let k = self.width();
        let rows = columns.first().map_or(0, Vec::len);
        if rows == 0 {
            return;
        }
        // Two passes over the batch (mean, then centred products), then merge.
        let means: Vec<f64> = columns
            .iter()
            .map(|c| c.iter().sum::<f64>() / rows as f64)
            .collect();
        let mut comoments = vec![0.0; tri(k)];
        let mut centred = vec![0.0; k];
        for r in 0..rows {
            for v in 0..k {
                centred[v] = columns[v][r] - means[v];
            }
            let mut idx = 0;
            for i in 0..k {
                let ci = centred[i];
                for cj in &centred[i..] {
                    comoments[idx] += ci * cj;
                    idx += 1;
                }
            }
        }
        self.merge(&Moments {
            count: rows as u64,
            means,
            comoments,
        });
    }

    /// Merges another partial state into this one.
    #[allow(clippy::needless_range_loop)]
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let k = self.width();
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta: Vec<f64> = (0..k).map(|v| other.means[v] - self.means[v]).collect();
        let mut idx = 0;
        for i in 0..k {
            for j in i..k {
                self.comoments[idx] += other.comoments[idx] + delta[i] * delta[j] * na * nb / n;
                idx += 1;
            }
        }
        for v in 0..k {
            self.means[v] += delta[v] * nb / n;
        }
        self.count += other.count;
    }

    fn comoment(&self, i: usize, j: usize) -> f64 {
        let (i, j) = if i <= j { (i, j) } else { (j, i) };
        let k = self.width();
        // Row r of the packed upper triangle holds k - r entries.
        let offset = i * k - i * i.saturating_sub(1) / 2;
        self.comoments[offset + (j - i)]
    }
}

/// A fitted linear model.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    /// One coefficient per feature.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

/// Solves least squares from the moments of `features..., label` (label last).
pub fn solve_linear(
    function: &'static str,
    moments: &Moments,
    l2: f64,
    feature_names: &[String],
) -> TrainResult<LinearFit> {
    let d = moments.width().saturating_sub(1);
    if moments.count == 0 {
        return Err(TrainError::NoRows {
            function,
            reason: "every row has a null label or feature".into(),
        });
    }
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for i in 0..d {
        for j in 0..d {
            a[i * d + j] = moments.comoment(i, j);
        }
        a[i * d + i] += l2;
        b[i] = moments.comoment(i, d);
    }
    let w = cholesky_solve(&a, &b).map_err(|pivot| {
        let name = feature_names
            .get(pivot)
            .map_or_else(|| format!("#{pivot}"), Clone::clone);
        TrainError::Feature {
            function,
            feature: name,
            reason:
                "is constant or a linear combination of the other features; drop it or set l2 > 0"
                    .into(),
        }
    })?;
    let intercept = moments.means[d] - (0..d).map(|i| moments.means[i] * w[i]).sum::<f64>();
    Ok(LinearFit {
        coefficients: w,
        intercept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_moments_equal_one_pass_moments() {
        let x: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.37 + 1e6).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v - 3.0 + (v * 7.0).sin()).collect();
        let mut whole = Moments::new(2);
        whole.add_columns(&[x.clone(), y.clone()]);
        let mut a = Moments::new(2);
        a.add_columns(&[x[..30].to_vec(), y[..30].to_vec()]);
        let mut b = Moments::new(2);
        b.add_columns(&[x[30..].to_vec(), y[30..].to_vec()]);
        a.merge(&b);
        assert_eq!(a.count, whole.count);
        for (p, q) in a.comoments.iter().zip(&whole.comoments) {
            assert!((p - q).abs() <= 1e-9 * q.abs().max(1.0), "{p} vs {q}");
        }
    }

    #[test]
    fn recovers_exact_coefficients_and_names_a_constant_feature() {
        let x1: Vec<f64> = (0..50).map(f64::from).collect();
        let x2: Vec<f64> = (0..50).map(|i| f64::from(i * i % 17)).collect();
        let y: Vec<f64> = x1
            .iter()
            .zip(&x2)
            .map(|(a, b)| 1.5 * a - 0.25 * b + 4.0)
            .collect();
        let mut m = Moments::new(3);
        m.add_columns(&[x1.clone(), x2, y]);
        let names = vec!["a".to_string(), "b".to_string()];
        let fit = solve_linear("train_linear", &m, 0.0, &names).unwrap();
        assert!(
            (fit.coefficients[0] - 1.5).abs() < 1e-12 && (fit.coefficients[1] + 0.25).abs() < 1e-12
        );
        assert!((fit.intercept - 4.0).abs() < 1e-10);

        let mut c = Moments::new(3);
        c.add_columns(&[x1.clone(), vec![2.0; 50], x1]);
        let err = solve_linear("train_linear", &c, 0.0, &names)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("feature 'b'") && err.contains("constant"),
            "{err}"
        );
    }
}
