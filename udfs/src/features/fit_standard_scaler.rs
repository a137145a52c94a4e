//! `fit_standard_scaler(x)`: the mean and standard deviation of a column.
//!
//! Returns `{"mean":m,"std":s,"count":n}`, what scikit-learn's
//! `StandardScaler` stores as `mean_`, `scale_` and `n_samples_seen_` (the
//! population standard deviation, `ddof = 0`; nulls and NaN are skipped, as
//! scikit-learn skips NaN). [`standard_scale`](super::standard_scale) applies it.
//! The state is an [`ExactSum`]: every partition sums its values exactly and
//! the sums merge exactly, so the JSON is the same for any partitioning, and
//! the mean and variance are rounded once from the exact totals.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};
use serde::{Deserialize, Serialize};

use super::args::{check_arity, coerce_float, for_each_finite, json_result, no_values};
use super::exact_sum::ExactSum;

const NAME: &str = "fit_standard_scaler";

/// The parameters `fit_standard_scaler` returns and `standard_scale` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardScalerParams {
    /// The mean of the fitted values.
    pub mean: f64,
    /// Their population standard deviation.
    pub std: f64,
    /// How many values were fitted (informational; optional when written by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The `fit_standard_scaler` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitStandardScaler {
    signature: Signature,
}

impl Default for FitStandardScaler {
    fn default() -> Self {
        Self::new()
    }
}

impl FitStandardScaler {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FitStandardScaler {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 1, 1, "(x)")?;
        Ok(vec![coerce_float(NAME, "x", &arg_types[0])?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[exact_sum]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(StandardScalerAccumulator::default()))
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
                "Fits a standard scaler: returns the JSON object {\"mean\":m,\"std\":s,\"count\":n} \
                 with the population standard deviation (scikit-learn's StandardScaler). Nulls \
                 and NaN are skipped; an infinite value, or no value at all, is an error. The \
                 result does not depend on partitioning. Apply it with standard_scale.",
                "fit_standard_scaler(x)",
            )
            .with_sql_example("SELECT fit_standard_scaler(income) FROM customers")
            .with_argument("x", "Numeric expression to fit.")
            .build()
        }))
    }
}

/// Exact sums of the values seen.
#[derive(Debug, Default)]
pub struct StandardScalerAccumulator {
    sum: ExactSum,
}

impl Accumulator for StandardScalerAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("{NAME}: missing argument 'x'");
        };
        for_each_finite(NAME, "x", x, |v| self.sum.add(v))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(binary) = states.first().and_then(|s| s.as_binary_opt::<i64>()) else {
            return exec_err!("{NAME}: state is not LargeBinary");
        };
        for bytes in binary.iter().flatten() {
            self.sum.merge(&ExactSum::from_bytes(NAME, bytes)?);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(self.sum.to_bytes()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (Some(mean), Some(variance)) = (self.sum.mean(), self.sum.variance()) else {
            return no_values(NAME, "x");
        };
        json_result(
            NAME,
            &StandardScalerParams {
                mean,
                std: variance.sqrt(),
                count: Some(self.sum.count()),
            },
        )
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sum.heap_size()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn fit(acc: &mut StandardScalerAccumulator, values: Vec<Option<f64>>) {
        let array: ArrayRef = Arc::new(Float64Array::from(values));
        acc.update_batch(&[array]).unwrap();
    }

    fn text(value: ScalarValue) -> String {
        value.try_as_str().flatten().unwrap().to_string()
    }

    #[test]
    fn population_std_skipping_nulls_and_nan() {
        let mut acc = StandardScalerAccumulator::default();
        fit(
            &mut acc,
            vec![
                Some(1.0),
                None,
                Some(2.0),
                Some(f64::NAN),
                Some(3.0),
                Some(4.0),
            ],
        );
        // mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
        assert_eq!(
            text(acc.evaluate().unwrap()),
            format!(r#"{{"mean":2.5,"std":{},"count":4}}"#, 1.25_f64.sqrt())
        );
    }

    #[test]
    fn merged_partial_states_give_the_same_json() {
        let values: Vec<Option<f64>> = (0..200).map(|i| Some(f64::from(i) * 0.37 - 11.0)).collect();
        let mut whole = StandardScalerAccumulator::default();
        fit(&mut whole, values.clone());
        let mut a = StandardScalerAccumulator::default();
        let mut b = StandardScalerAccumulator::default();
        fit(&mut a, values[..73].to_vec());
        fit(&mut b, values[73..].to_vec());
        let mut merged = StandardScalerAccumulator::default();
        for partial in [&mut b, &mut a] {
            let state = partial.state().unwrap()[0].to_array().unwrap();
            merged.merge_batch(&[state]).unwrap();
        }
        assert_eq!(
            text(merged.evaluate().unwrap()),
            text(whole.evaluate().unwrap())
        );
    }

    #[test]
    fn constant_column_has_zero_std() {
        let mut acc = StandardScalerAccumulator::default();
        fit(&mut acc, vec![Some(7.0); 3]);
        assert_eq!(
            text(acc.evaluate().unwrap()),
            r#"{"mean":7.0,"std":0.0,"count":3}"#
        );
    }

    #[test]
    fn no_values_is_an_error() {
        let mut acc = StandardScalerAccumulator::default();
        fit(&mut acc, vec![None, Some(f64::NAN)]);
        let err = acc.evaluate().unwrap_err().to_string();
        assert!(
            err.contains("fit_standard_scaler: argument 'x' has no"),
            "{err}"
        );
    }

    #[test]
    fn infinity_is_an_error() {
        let mut acc = StandardScalerAccumulator::default();
        let array: ArrayRef = Arc::new(Float64Array::from(vec![1.0, f64::NEG_INFINITY]));
        let err = acc.update_batch(&[array]).unwrap_err().to_string();
        assert!(
            err.contains("fit_standard_scaler: argument 'x' contains -inf"),
            "{err}"
        );
    }

    #[test]
    fn strings_are_rejected_at_planning() {
        let err = FitStandardScaler::new()
            .coerce_types(&[DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fit_standard_scaler: argument 'x' must be numeric"),
            "{err}"
        );
    }
}
