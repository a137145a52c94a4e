//! XGBoost's linear booster (`gblinear`).
//!
//! The margin of output group `g` is `bias[g] + base_margin[0] + Σ w[f][g]·x[f]`
//! in `f32`, summing features in index order and skipping missing values (NaN
//! or null), as XGBoost's `GBLinear::PredictBatch` does over a dense matrix.
//! XGBoost stores the weights feature-major, `weights[f * groups + g]`, with the
//! biases as one extra feature row at the end.

use arrow::array::Float64Array;

use super::fields::Doc;
use crate::scoring::model::{ModelResult, block_rows, fill_row_block};

const BLOCK_ROWS: usize = 256;

/// A loaded `gblinear` booster.
#[derive(Debug)]
pub struct LinearBooster {
    /// `weights[f * groups + g]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    base_margin: Vec<f32>,
    num_features: usize,
}

impl LinearBooster {
    pub(crate) fn new(
        doc: &Doc<'_>,
        all_weights: Vec<f32>,
        base_margin: Vec<f32>,
        num_features: usize,
    ) -> ModelResult<LinearBooster> {
        let groups = base_margin.len();
        let expected = (num_features + 1) * groups;
        if all_weights.len() != expected {
            return Err(doc.malformed(format!(
                "gblinear has {} weights, expected (features + 1) × groups = {expected}",
                all_weights.len()
            )));
        }
        let bias = all_weights[num_features * groups..].to_vec();
        let mut weights = all_weights;
        weights.truncate(num_features * groups);
        Ok(LinearBooster {
            weights,
            bias,
            base_margin,
            num_features,
        })
    }

    /// Margins for rows `start..`, written to `out` (`rows × groups`, row-major).
    pub fn score(&self, columns: &[&Float64Array], start: usize, out: &mut [f64]) {
        let k = self.base_margin.len();
        let rows = out.len() / k;
        let width = self.num_features;
        let mut block = Vec::with_capacity(block_rows(width, BLOCK_ROWS) * width);
        let mut first = 0;
        while first < rows {
            let n = block_rows(width, BLOCK_ROWS).min(rows - first);
            fill_row_block(
                columns,
                start + first,
                n,
                f32::NAN,
                |v| v as f32,
                &mut block,
            );
            for r in 0..n {
                let row = &block[r * width..(r + 1) * width];
                for g in 0..k {
                    // XGBoost adds `base_score[0]` (as a margin) to every group.
                    let mut sum = self.bias[g] + self.base_margin[0];
                    for (f, x) in row.iter().enumerate() {
                        if !x.is_nan() {
                            sum += x * self.weights[f * k + g];
                        }
                    }
                    out[(first + r) * k + g] = f64::from(sum);
                }
            }
            first += n;
        }
    }
}
