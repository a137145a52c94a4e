//! `fit_imputer(x, strategy)`: the value that stands in for a missing one.
//!
//! Returns `{"value":v}`, scikit-learn's `SimpleImputer(strategy=…)`
//! `statistics_`, with `strategy` a constant `'mean'` or `'median'`; nulls and
//! NaN are skipped, and fitting on no value at all is an error.
//! [`impute`](super::impute) applies it.
//!
//! The mean is an [`ExactSum`], rounded once, so it does not depend on
//! partitioning. The median is exact (the average of the two middle values
//! for an even count, as numpy): its state is the values themselves, a
//! `List<Float64>` per partition, merged by concatenation — memory grows with
//! the row count of a group, which is the price of an exact median.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};
use serde::{Deserialize, Serialize};

use super::args::{
    check_arity, coerce_float, coerce_text, extend_from_f64_lists, f64_list_field, f64_list_state,
    for_each_finite, json_result, literal_argument, no_values,
};
use super::exact_sum::ExactSum;

const NAME: &str = "fit_imputer";

/// The parameters `fit_imputer` returns and `impute` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImputerParams {
    /// The value that replaces a null or NaN.
    pub value: f64,
}

/// How the replacement value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The mean of the fitted values.
    Mean,
    /// Their median.
    Median,
}

impl Strategy {
    fn parse(text: &str) -> Result<Self> {
        match text {
            "mean" => Ok(Strategy::Mean),
            "median" => Ok(Strategy::Median),
            other => {
                plan_err!("{NAME}: argument 'strategy' must be 'mean' or 'median', got '{other}'")
            }
        }
    }
}

/// The `fit_imputer` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitImputer {
    signature: Signature,
}

impl Default for FitImputer {
    fn default() -> Self {
        Self::new()
    }
}

impl FitImputer {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FitImputer {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 2, 2, "(x, strategy)")?;
        Ok(vec![
            coerce_float(NAME, "x", &arg_types[0])?,
            coerce_text(NAME, "strategy", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Both strategies share one layout: `values` is filled for `'median'`,
    /// `exact_sum` for `'mean'`, the other left empty.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            f64_list_field(format!("{}[values]", args.name)),
            Arc::new(Field::new(
                format!("{}[exact_sum]", args.name),
                DataType::LargeBinary,
                true,
            )),
        ])
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let strategy = match acc_args.exprs.get(1).and_then(literal_argument) {
            Some(ScalarValue::Utf8(Some(text))) => Strategy::parse(&text)?,
            _ => {
                return plan_err!(
                    "{NAME}: argument 'strategy' must be a constant 'mean' or 'median'"
                );
            }
        };
        Ok(Box::new(ImputerAccumulator::new(strategy)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            DocumentationBuilder::new_with_details(
                DocSection {
                    include: true,
                    label: "Ember Feature Functions",
                    description: None,
                },
                "Fits an imputer: returns the JSON object {\"value\":v}, the mean or the exact \
                 median of the non-null, non-NaN values (scikit-learn's SimpleImputer). Fitting \
                 on no value is an error. Apply it with impute.",
                "fit_imputer(x, strategy)",
            )
            .with_sql_example("SELECT fit_imputer(income, 'median') FROM customers")
            .with_argument("x", "Numeric expression to fit.")
            .with_argument("strategy", "Constant string: 'mean' or 'median'.")
            .build()
        }))
    }
}

/// The state of one strategy.
#[derive(Debug)]
pub struct ImputerAccumulator {
    strategy: Strategy,
    sum: ExactSum,
    values: Vec<f64>,
}

impl ImputerAccumulator {
    /// An empty accumulator for `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            sum: ExactSum::new(),
            values: Vec::new(),
        }
    }
}

/// The median of `values` (reordered in place): the middle value, or the
/// mean of the two middle values.
fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (_, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    // The lower middle is the largest value left of n / 2.
    let lower = values[..n / 2].iter().copied().max_by(f64::total_cmp)?;
    let mid = (lower + upper) / 2.0;
    Some(if mid.is_finite() {
        mid
    } else {
        lower / 2.0 + upper / 2.0
    })
}

impl Accumulator for ImputerAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("{NAME}: missing argument 'x'");
        };
        match self.strategy {
            Strategy::Mean => for_each_finite(NAME, "x", x, |v| self.sum.add(v)),
            Strategy::Median => for_each_finite(NAME, "x", x, |v| self.values.push(v)),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, sums] = states else {
            return exec_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        match self.strategy {
            Strategy::Median => extend_from_f64_lists(NAME, values, &mut self.values),
            Strategy::Mean => {
                let Some(binary) = sums.as_binary_opt::<i64>() else {
                    return exec_err!("{NAME}: state is not LargeBinary");
                };
                for bytes in binary.iter().flatten() {
                    self.sum.merge(&ExactSum::from_bytes(NAME, bytes)?);
                }
                Ok(())
            }
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match self.strategy {
            Strategy::Mean => vec![
                f64_list_state(&[]),
                ScalarValue::LargeBinary(Some(self.sum.to_bytes())),
            ],
            Strategy::Median => vec![f64_list_state(&self.values), ScalarValue::LargeBinary(None)],
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = match self.strategy {
            Strategy::Mean => self.sum.mean(),
            Strategy::Median => median(&mut self.values),
        };
        match value {
            Some(value) => json_result(NAME, &ImputerParams { value }),
            None => no_values(NAME, "x"),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sum.heap_size() + 8 * self.values.capacity()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn fitted(strategy: Strategy, parts: &[Vec<Option<f64>>]) -> Result<String> {
        // Each part is a partition; their states merge into a final accumulator.
        let mut merged = ImputerAccumulator::new(strategy);
        for part in parts {
            let mut partial = ImputerAccumulator::new(strategy);
            let array: ArrayRef = Arc::new(Float64Array::from(part.clone()));
            partial.update_batch(&[array])?;
            let state: Vec<ArrayRef> = partial
                .state()?
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state)?;
        }
        Ok(merged
            .evaluate()?
            .try_as_str()
            .flatten()
            .unwrap()
            .to_string())
    }

    #[test]
    fn mean_and_median_by_hand() {
        let data = vec![
            Some(1.0),
            None,
            Some(2.0),
            Some(f64::NAN),
            Some(10.0),
            Some(3.0),
        ];
        // mean (1 + 2 + 10 + 3) / 4 = 4; median of 1 2 3 10 = (2 + 3) / 2.
        assert_eq!(
            fitted(Strategy::Mean, std::slice::from_ref(&data)).unwrap(),
            r#"{"value":4.0}"#
        );
        assert_eq!(
            fitted(Strategy::Median, &[data]).unwrap(),
            r#"{"value":2.5}"#
        );
        let odd = vec![Some(5.0), Some(-1.0), Some(4.0)];
        assert_eq!(
            fitted(Strategy::Median, &[odd]).unwrap(),
            r#"{"value":4.0}"#
        );
    }

    #[test]
    fn merged_partial_states_give_the_same_json() {
        let data: Vec<Option<f64>> = (0..101)
            .map(|i| Some(f64::from((i * 29) % 101) * 0.1))
            .collect();
        for strategy in [Strategy::Mean, Strategy::Median] {
            let whole = fitted(strategy, std::slice::from_ref(&data)).unwrap();
            let split = fitted(
                strategy,
                &[data[60..].to_vec(), vec![], data[..60].to_vec()],
            )
            .unwrap();
            assert_eq!(whole, split, "{strategy:?}");
        }
    }

    #[test]
    fn no_values_is_an_error() {
        for strategy in [Strategy::Mean, Strategy::Median] {
            let err = fitted(strategy, &[vec![None, Some(f64::NAN)]])
                .unwrap_err()
                .to_string();
            assert!(err.contains("fit_imputer: argument 'x' has no"), "{err}");
        }
    }

    #[test]
    fn unknown_strategy_is_an_error() {
        let err = Strategy::parse("mode").unwrap_err().to_string();
        assert!(
            err.contains("fit_imputer: argument 'strategy'") && err.contains("'mode'"),
            "{err}"
        );
    }

    #[test]
    fn median_of_huge_values_does_not_overflow() {
        let mut values = vec![f64::MAX, f64::MAX];
        assert_eq!(median(&mut values), Some(f64::MAX));
    }
}
