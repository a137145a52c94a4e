//! `auc(score, label)`: the area under the ROC curve.
//!
//! Exactly scikit-learn's `roc_auc_score(label, score)`: the Mann–Whitney
//! statistic `U / (n₀ · n₁)`, the probability that a random positive scores
//! above a random negative, a tie counting one half (the average-rank rule).
//! `label` is 0/1, as a boolean or a number; any other value is an error
//! naming it. Rows with a null score or label are skipped; a NaN score is an
//! error (no rank for it). With only one class present the AUC is undefined
//! and the result is null (scikit-learn raises an error there).
//!
//! The state is the scores of each class, two `List<Float64>` per partition,
//! concatenated on merge. `2U` is counted exactly as an integer over the
//! sorted scores, so the result does not depend on partitioning or row order.

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};

use crate::features::args::{
    check_arity, extend_from_f64_lists, f64_list_field, f64_list_state, float_column,
};

const NAME: &str = "auc";

/// The `auc` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Auc {
    signature: Signature,
}

impl Default for Auc {
    fn default() -> Self {
        Self::new()
    }
}

impl Auc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn coerce(argument: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || t.is_null() || (argument == "label" && *t == DataType::Boolean) {
        Ok(DataType::Float64)
    } else {
        plan_err!(
            "{NAME}: argument '{argument}' must be numeric{}, got {t}",
            if argument == "label" {
                " or boolean"
            } else {
                ""
            }
        )
    }
}

impl AggregateUDFImpl for Auc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 2, 2, "(score, label)")?;
        Ok(vec![
            coerce("score", &arg_types[0])?,
            coerce("label", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            f64_list_field(format!("{}[negative_scores]", args.name)),
            f64_list_field(format!("{}[positive_scores]", args.name)),
        ])
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(AucAccumulator::default()))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            DocumentationBuilder::new_with_details(
                DocSection {
                    include: true,
                    label: "Ember Metric Functions",
                    description: None,
                },
                "ROC AUC of scores against 0/1 labels, identical to scikit-learn's roc_auc_score \
                 (ties count one half). Rows with a null score or label are skipped; a label other \
                 than 0/1 or a NaN score is an error. Null when only one class is present.",
                "auc(score, label)",
            )
            .with_sql_example("SELECT auc(predict('churn', age, income), churned) FROM holdout")
            .with_argument(
                "score",
                "Numeric expression: higher means more likely positive.",
            )
            .with_argument(
                "label",
                "Boolean or numeric 0/1 expression: the true class.",
            )
            .build()
        }))
    }
}

/// The scores seen, by class.
#[derive(Debug, Default)]
pub struct AucAccumulator {
    negatives: Vec<f64>,
    positives: Vec<f64>,
}

/// `2U` for sorted scores: for every positive, 2 per negative below it and 1
/// per negative equal to it.
fn twice_u(negatives: &[f64], positives: &[f64]) -> u128 {
    let mut total = 0_u128;
    let mut rest = positives;
    while let Some(&score) = rest.first() {
        let same = rest.partition_point(|p| *p <= score);
        let below = negatives.partition_point(|n| *n < score);
        let at_or_below = negatives.partition_point(|n| *n <= score);
        total += same as u128 * (below + at_or_below) as u128;
        rest = &rest[same..];
    }
    total
}

impl Accumulator for AucAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [score, label] = values else {
            return exec_err!(
                "{NAME}: expected (score, label), got {} argument(s)",
                values.len()
            );
        };
        let score = float_column(NAME, "score", score)?;
        let label = float_column(NAME, "label", label)?;
        for (s, l) in score.iter().zip(label.iter()) {
            let (Some(s), Some(l)) = (s, l) else { continue };
            if s.is_nan() {
                return exec_err!(
                    "{NAME}: argument 'score' is NaN; scores must be numbers (filter or impute them)"
                );
            }
            // -0.0 and 0.0 are one score, whichever comes first.
            let s = s + 0.0;
            if l == 0.0 {
                self.negatives.push(s);
            } else if l == 1.0 {
                self.positives.push(s);
            } else {
                return exec_err!(
                    "{NAME}: argument 'label' must be 0 or 1 (or a boolean), got {l}"
                );
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [negatives, positives] = states else {
            return exec_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        extend_from_f64_lists(NAME, negatives, &mut self.negatives)?;
        extend_from_f64_lists(NAME, positives, &mut self.positives)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            f64_list_state(&self.negatives),
            f64_list_state(&self.positives),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.negatives.is_empty() || self.positives.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        self.negatives.sort_unstable_by(f64::total_cmp);
        self.positives.sort_unstable_by(f64::total_cmp);
        let twice_u = twice_u(&self.negatives, &self.positives);
        let pairs = 2 * self.negatives.len() as u128 * self.positives.len() as u128;
        Ok(ScalarValue::Float64(Some(twice_u as f64 / pairs as f64)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 8 * (self.negatives.capacity() + self.positives.capacity())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;
    use std::sync::Arc;

    /// One partition: its scores and labels.
    type Part = (Vec<Option<f64>>, Vec<Option<f64>>);

    fn auc_of(parts: &[Part]) -> Result<Option<f64>> {
        let mut merged = AucAccumulator::default();
        for (scores, labels) in parts {
            let mut partial = AucAccumulator::default();
            let s: ArrayRef = Arc::new(Float64Array::from(scores.clone()));
            let l: ArrayRef = Arc::new(Float64Array::from(labels.clone()));
            partial.update_batch(&[s, l])?;
            let state: Vec<ArrayRef> = partial
                .state()?
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state)?;
        }
        match merged.evaluate()? {
            ScalarValue::Float64(v) => Ok(v),
            other => exec_err!("not a float: {other:?}"),
        }
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().map(|v| Some(*v)).collect()
    }

    #[test]
    fn scikit_learn_documentation_example() {
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75: of the four
        // (positive, negative) pairs only (0.35, 0.4) is ordered wrongly.
        let got = auc_of(&[(some(&[0.1, 0.4, 0.35, 0.8]), some(&[0.0, 0.0, 1.0, 1.0]))]).unwrap();
        assert_eq!(got, Some(0.75));
    }

    #[test]
    fn ties_count_one_half() {
        // Positives 0.5, 0.9; negatives 0.5, 0.1. Pairs: (0.5,0.5) tie = 0.5,
        // (0.5,0.1) = 1, (0.9,0.5) = 1, (0.9,0.1) = 1: 3.5 / 4.
        let got = auc_of(&[(some(&[0.5, 0.9, 0.5, 0.1]), some(&[1.0, 1.0, 0.0, 0.0]))]).unwrap();
        assert_eq!(got, Some(0.875));
        // All scores equal: 0.5.
        let got = auc_of(&[(some(&[2.0, 2.0, 2.0]), some(&[1.0, 0.0, 0.0]))]).unwrap();
        assert_eq!(got, Some(0.5));
        // -0.0 and 0.0 tie.
        let got = auc_of(&[(some(&[-0.0, 0.0]), some(&[1.0, 0.0]))]).unwrap();
        assert_eq!(got, Some(0.5));
    }

    #[test]
    fn nulls_are_skipped_and_one_class_is_null() {
        let got = auc_of(&[(
            vec![Some(0.3), None, Some(0.1)],
            vec![Some(1.0), Some(0.0), None],
        )])
        .unwrap();
        assert_eq!(got, None, "only a positive remains");
        assert_eq!(auc_of(&[]).unwrap(), None);
    }

    #[test]
    fn merged_partial_states_give_the_same_result() {
        let scores: Vec<f64> = (0..60).map(|i| f64::from((i * 7) % 13) / 13.0).collect();
        let labels: Vec<f64> = (0..60)
            .map(|i| f64::from(u8::from((i * 5) % 3 == 0)))
            .collect();
        let whole = auc_of(&[(some(&scores), some(&labels))]).unwrap();
        let split = auc_of(&[
            (some(&scores[25..]), some(&labels[25..])),
            (vec![], vec![]),
            (some(&scores[..25]), some(&labels[..25])),
        ])
        .unwrap();
        assert!(whole.is_some());
        assert_eq!(whole, split);
    }

    #[test]
    fn bad_labels_and_nan_scores_are_errors() {
        let err = auc_of(&[(some(&[0.1]), some(&[2.0]))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auc: argument 'label' must be 0 or 1") && err.contains("got 2"),
            "{err}"
        );
        let err = auc_of(&[(some(&[f64::NAN]), some(&[1.0]))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auc: argument 'score' is NaN"), "{err}");
    }

    #[test]
    fn strings_are_rejected_at_planning() {
        let err = Auc::new()
            .coerce_types(&[DataType::Float64, DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auc: argument 'label' must be numeric or boolean"),
            "{err}"
        );
    }
}
