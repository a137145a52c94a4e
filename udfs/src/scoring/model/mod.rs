//! Models Ember scores: tree ensembles and linear models from XGBoost,
//! LightGBM and Ember's own trainer, loaded into one in-memory form.
//!
//! A [`Model`] knows its features (names or positions), how many outputs it has
//! (one, or one per class), its output transform ([`Link`]) and the precision
//! its library computes in. [`Model::raw_scores`] evaluates it over Arrow
//! columns — the margins XGBoost calls `predict_type="margin"` and LightGBM
//! calls `raw_score=True` — and [`Model::transform`] turns them into
//! predictions. Evaluation reproduces each library's arithmetic exactly
//! (comparison operator, float width, summation order), so raw scores match the
//! library bit for bit.
//!
//! Rows are scored in blocks, in parallel with rayon when a batch is large
//! enough to be worth splitting.

pub mod ember_linear;
pub mod error;
pub mod lightgbm;
pub mod link;
pub mod xgboost;

use arrow::array::{Array, Float64Array};
use arrow::buffer::NullBuffer;
use rayon::prelude::*;

pub use error::{ModelError, ModelResult};
pub use link::{Link, Precision};

/// Rows per parallel work item: big enough to amortise rayon's scheduling,
/// small enough to balance a batch of a few thousand rows over the cores.
const PARALLEL_CHUNK_ROWS: usize = 2048;

/// The most features a model may read: a sanity bound on a field read from an
/// untrusted file, far above any dense model's feature count.
pub const MAX_FEATURES: usize = 1 << 20;
/// The most outputs (classes) a model may have, for the same reason.
pub const MAX_OUTPUTS: usize = 1 << 14;

/// Rows per evaluation block for a model reading `width` features: up to
/// `max`, fewer for very wide models so a block stays about 256 KiB.
pub(crate) fn block_rows(width: usize, max: usize) -> usize {
    ((1usize << 16) / width.max(1)).clamp(1, max)
}

/// Checks the feature and output counts read from a model file.
pub(crate) fn check_shape(
    file: &str,
    format: &'static str,
    features: usize,
    outputs: usize,
) -> ModelResult<()> {
    if features == 0 || features > MAX_FEATURES || outputs == 0 || outputs > MAX_OUTPUTS {
        return Err(ModelError::Malformed {
            file: file.to_string(),
            format,
            reason: format!(
                "{features} features and {outputs} outputs (expected 1..={MAX_FEATURES} features and 1..={MAX_OUTPUTS} outputs)"
            ),
        });
    }
    Ok(())
}

/// The file format a model was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// XGBoost `save_model("*.json")`.
    XgboostJson,
    /// XGBoost `save_model("*.ubj")`.
    XgboostUbjson,
    /// LightGBM `save_model("*.txt")`.
    LightgbmText,
    /// Ember's linear/logistic model JSON (see [`ember_linear`]).
    EmberLinear,
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelFormat::XgboostJson => "XGBoost JSON",
            ModelFormat::XgboostUbjson => "XGBoost UBJSON",
            ModelFormat::LightgbmText => "LightGBM text",
            ModelFormat::EmberLinear => "Ember linear JSON",
        })
    }
}

/// The evaluator behind a model.
#[derive(Debug)]
pub enum Predictor {
    /// XGBoost `gbtree` or `dart`.
    XgboostTrees(Box<xgboost::TreeEnsemble>),
    /// XGBoost `gblinear`.
    XgboostLinear(xgboost::LinearBooster),
    /// LightGBM `gbdt`, `dart`, `goss` or `rf`.
    LightgbmTrees(lightgbm::TreeEnsemble),
    /// Ember's linear or logistic regression.
    EmberLinear(ember_linear::LinearModel),
}

/// A loaded model, ready to score.
#[derive(Debug)]
pub struct Model {
    /// Where the model was loaded from (used in messages).
    pub source: String,
    /// The file format it was read from.
    pub format: ModelFormat,
    /// The objective as the library names it (`binary:logistic`, `multiclass`, ...).
    pub objective: String,
    /// Feature names in the model's order, or `None` for a model trained without
    /// names (it takes features by position).
    pub feature_names: Option<Vec<String>>,
    /// Number of features the model reads.
    pub num_features: usize,
    /// Number of outputs: 1, or the number of classes of a multiclass model.
    pub num_outputs: usize,
    /// How raw scores become predictions.
    pub link: Link,
    /// The precision the training library computes in.
    pub precision: Precision,
    /// For a random forest (LightGBM `average_output`), the number of
    /// iterations its summed raw score is divided by before the transform.
    pub average_over: Option<usize>,
    /// The evaluator.
    pub predictor: Predictor,
}

/// Raw scores of a batch: `rows × num_outputs` values, row-major, and which rows
/// have a score at all (Ember's linear models give no score for a row with a
/// null feature; tree models treat nulls as missing values and always score).
#[derive(Debug)]
pub struct Scores {
    /// Number of outputs per row.
    pub num_outputs: usize,
    /// Scores, row-major.
    pub values: Vec<f64>,
    /// Rows without a score, if any.
    pub nulls: Option<NullBuffer>,
}

impl Model {
    /// Parses a model from its bytes, recognising the format from the content.
    pub fn from_bytes(source: &str, bytes: &[u8]) -> ModelResult<Model> {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .ok_or_else(|| ModelError::UnknownFormat {
                file: source.to_string(),
                reason: "the file is empty".to_string(),
            })?;
        let head = &bytes[start..];
        if head.starts_with(b"tree") {
            return lightgbm::parse_text(source, bytes);
        }
        if head.starts_with(b"{") {
            let second = head[1..].iter().find(|b| !b.is_ascii_whitespace());
            if matches!(second, Some(b'"') | Some(b'}')) {
                let value: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|e| ModelError::Malformed {
                        file: source.to_string(),
                        format: "JSON",
                        reason: e.to_string(),
                    })?;
                if value.get("learner").is_some() {
                    return xgboost::from_json_value(source, ModelFormat::XgboostJson, &value);
                }
                if value.get("format").is_some() {
                    return ember_linear::from_json_value(source, value);
                }
                return Err(ModelError::UnknownFormat {
                    file: source.to_string(),
                    reason: "a JSON document with neither 'learner' (XGBoost) nor 'format' (Ember) at the top".to_string(),
                });
            }
            let value = xgboost::ubjson::decode(source, head)?;
            return xgboost::from_json_value(source, ModelFormat::XgboostUbjson, &value);
        }
        Err(ModelError::UnknownFormat {
            file: source.to_string(),
            reason: format!(
                "it starts with {:?}",
                String::from_utf8_lossy(&head[..head.len().min(16)])
            ),
        })
    }

    /// Raw scores (margins) for every row of `columns`, which hold the model's
    /// features in the model's order as `Float64`; nulls are missing values.
    pub fn raw_scores(&self, columns: &[&Float64Array]) -> ModelResult<Scores> {
        let rows = columns.first().map_or(0, |c| c.len());
        if columns.len() != self.num_features || columns.iter().any(|c| c.len() != rows) {
            return Err(ModelError::Input {
                file: self.source.clone(),
                reason: format!(
                    "expected {} feature columns of equal length, got {} columns",
                    self.num_features,
                    columns.len()
                ),
            });
        }
        let k = self.num_outputs;
        let mut values = vec![0.0; rows * k];
        let score_chunk = |chunk_index: usize, out: &mut [f64]| {
            let start = chunk_index * PARALLEL_CHUNK_ROWS;
            match &self.predictor {
                Predictor::XgboostTrees(p) => p.score(columns, start, out),
                Predictor::XgboostLinear(p) => p.score(columns, start, out),
                Predictor::LightgbmTrees(p) => p.score(columns, start, out),
                Predictor::EmberLinear(p) => p.score(columns, start, out),
            }
        };
        if rows >= 2 * PARALLEL_CHUNK_ROWS {
            values
                .par_chunks_mut(PARALLEL_CHUNK_ROWS * k)
                .enumerate()
                .for_each(|(i, out)| score_chunk(i, out));
        } else if rows > 0 {
            score_chunk(0, &mut values);
        }
        let nulls = match &self.predictor {
            Predictor::EmberLinear(_) => {
                let nulls = columns
                    .iter()
                    .fold(None, |acc, c| NullBuffer::union(acc.as_ref(), c.nulls()));
                // A NaN feature gives no score either.
                let nan = NullBuffer::from_iter(values.iter().map(|v| !v.is_nan()));
                if nan.null_count() > 0 {
                    NullBuffer::union(nulls.as_ref(), Some(&nan))
                } else {
                    nulls
                }
            }
            _ => None,
        };
        Ok(Scores {
            num_outputs: k,
            values,
            nulls,
        })
    }

    /// Turns raw scores into predictions in place (probabilities for
    /// classifiers, values for regressors).
    pub fn transform(&self, scores: &mut Scores) {
        if let Some(n) = self.average_over.filter(|n| *n > 0) {
            scores.values.iter_mut().for_each(|v| *v /= n as f64);
        }
        if self.link == Link::Identity {
            return;
        }
        for row in scores.values.chunks_mut(scores.num_outputs) {
            self.link.apply(self.precision, row);
        }
    }

    /// A short description for messages: `'churn.json' (XGBoost JSON, binary:logistic)`.
    pub fn describe(&self) -> String {
        format!("'{}' ({}, {})", self.source, self.format, self.objective)
    }
}

/// Copies rows `start..start + rows` of `columns` into a row-major block,
/// nulls as NaN, converted by `convert`.
#[inline]
pub(crate) fn fill_row_block<T: Copy>(
    columns: &[&Float64Array],
    start: usize,
    rows: usize,
    nan: T,
    convert: impl Fn(f64) -> T,
    block: &mut Vec<T>,
) {
    let width = columns.len();
    block.clear();
    block.resize(rows * width, nan);
    for (f, column) in columns.iter().enumerate() {
        let values = &column.values()[start..start + rows];
        match column.nulls() {
            None => {
                for (r, v) in values.iter().enumerate() {
                    block[r * width + f] = convert(*v);
                }
            }
            Some(nulls) => {
                for (r, v) in values.iter().enumerate() {
                    if nulls.is_valid(start + r) {
                        block[r * width + f] = convert(*v);
                    }
                }
            }
        }
    }
}
