//! What a scoring function returns, and building it from raw scores.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, exec_err, plan_err};

use super::model::{Model, Precision, Scores};

/// The kind of value a scoring function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// `predict`: the transformed prediction of a single-output model.
    Prediction,
    /// `predict_raw`: the margin / raw score of a single-output model.
    Raw,
    /// `predict_proba`: class probabilities of a classifier, as a list.
    Probabilities,
    /// `predict_class`: the predicted class index of a classifier.
    Class,
    /// `predict_raw_scores`: every raw score (one per class), as a list.
    RawScores,
}

impl OutputKind {
    /// Every kind, in a fixed order.
    pub const ALL: [OutputKind; 5] = [
        OutputKind::Prediction,
        OutputKind::Raw,
        OutputKind::Probabilities,
        OutputKind::Class,
        OutputKind::RawScores,
    ];

    /// The SQL function returning this kind.
    pub fn function_name(self) -> &'static str {
        match self {
            OutputKind::Prediction => "predict",
            OutputKind::Raw => "predict_raw",
            OutputKind::Probabilities => "predict_proba",
            OutputKind::Class => "predict_class",
            OutputKind::RawScores => "predict_raw_scores",
        }
    }

    /// Parses [`Self::function_name`].
    pub fn from_function_name(name: &str) -> Option<OutputKind> {
        Self::ALL.into_iter().find(|k| k.function_name() == name)
    }

    /// The Arrow type of the result.
    pub fn data_type(self) -> DataType {
        match self {
            OutputKind::Prediction | OutputKind::Raw => DataType::Float64,
            OutputKind::Class => DataType::Int64,
            OutputKind::Probabilities | OutputKind::RawScores => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
            }
        }
    }

    /// Checks at planning time that `model` can produce this kind.
    pub fn check(self, model: &Model) -> Result<()> {
        let name = self.function_name();
        let classifier = model.link.is_binary_classifier() || model.link.is_multiclass();
        match self {
            OutputKind::Prediction | OutputKind::Raw if model.num_outputs > 1 => plan_err!(
                "{name}: model {} is multiclass ({} classes); use predict_proba(...) for the class probabilities, predict_class(...) for the class, or predict_raw_scores(...) for the raw scores",
                model.describe(),
                model.num_outputs
            ),
            OutputKind::Probabilities | OutputKind::Class if !classifier => plan_err!(
                "{name}: model {} is not a classifier; use predict(...) for its prediction",
                model.describe()
            ),
            _ => Ok(()),
        }
    }

    /// Builds the result column from a batch's raw scores.
    pub fn build(self, model: &Model, mut scores: Scores) -> Result<ArrayRef> {
        let k = scores.num_outputs;
        Ok(match self {
            OutputKind::Raw => Arc::new(Float64Array::new(scores.values.into(), scores.nulls)),
            OutputKind::RawScores => list(scores.values, k, scores.nulls)?,
            OutputKind::Prediction => {
                model.transform(&mut scores);
                Arc::new(Float64Array::new(scores.values.into(), scores.nulls))
            }
            OutputKind::Probabilities => {
                model.transform(&mut scores);
                if k == 1 {
                    let one_minus = |p: f64| match model.precision {
                        Precision::F32 => f64::from(1.0f32 - p as f32),
                        Precision::F64 => 1.0 - p,
                    };
                    let pairs = scores
                        .values
                        .iter()
                        .flat_map(|p| [one_minus(*p), *p])
                        .collect();
                    list(pairs, 2, scores.nulls)?
                } else {
                    list(scores.values, k, scores.nulls)?
                }
            }
            OutputKind::Class => {
                let classes: Vec<i64> = if k == 1 {
                    // The libraries' rule: the positive class when p > 0.5.
                    model.transform(&mut scores);
                    scores.values.iter().map(|p| i64::from(*p > 0.5)).collect()
                } else {
                    // XGBoost's multi:softmax takes the first largest margin; the
                    // scikit-learn interfaces take the first largest probability
                    // (which can differ when probabilities round to a tie).
                    if model.objective != "multi:softmax" {
                        model.transform(&mut scores);
                    }
                    scores
                        .values
                        .chunks(k)
                        .map(|row| argmax(row) as i64)
                        .collect()
                };
                Arc::new(Int64Array::new(classes.into(), scores.nulls))
            }
        })
    }
}

/// The first index of the largest score (the softmax is monotonic, so raw
/// scores and probabilities give the same class).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

fn list(values: Vec<f64>, width: usize, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
    let rows = values.len() / width.max(1);
    if i32::try_from(values.len()).is_err() {
        return exec_err!(
            "scoring: {rows} rows × {width} outputs do not fit one list array; use a smaller batch size"
        );
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from_iter(
        (0..=rows).map(|r| (r * width) as i32),
    ));
    let field = Arc::new(Field::new_list_field(DataType::Float64, true));
    let values = Arc::new(Float64Array::from(values));
    Ok(Arc::new(ListArray::try_new(field, offsets, values, nulls)?))
}
