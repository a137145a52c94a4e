//! `fit_min_max_scaler(x)`: the range of a column.
//!
//! Returns `{"min":a,"max":b}`, what scikit-learn's `MinMaxScaler` stores as
//! `data_min_` and `data_max_`; [`min_max_scale`](super::min_max_scale)
//! applies it. Nulls and NaN are skipped. Minimum and maximum are exact and
//! order-free, so the state is just the two numbers and the JSON is the same
//! for any partitioning.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};
use serde::{Deserialize, Serialize};

use super::args::{check_arity, coerce_float, for_each_finite, json_result, no_values};

const NAME: &str = "fit_min_max_scaler";

/// The parameters `fit_min_max_scaler` returns and `min_max_scale` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinMaxScalerParams {
    /// The smallest fitted value.
    pub min: f64,
    /// The largest fitted value.
    pub max: f64,
}

/// The `fit_min_max_scaler` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitMinMaxScaler {
    signature: Signature,
}

impl Default for FitMinMaxScaler {
    fn default() -> Self {
        Self::new()
    }
}

impl FitMinMaxScaler {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FitMinMaxScaler {
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
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[min]", args.name),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[max]", args.name),
                DataType::Float64,
                true,
            )),
        ])
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MinMaxAccumulator::default()))
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
                "Fits a min-max scaler: returns the JSON object {\"min\":a,\"max\":b} \
                 (scikit-learn's MinMaxScaler data_min_ and data_max_). Nulls and NaN are \
                 skipped; an infinite value, or no value at all, is an error. Apply it with \
                 min_max_scale.",
                "fit_min_max_scaler(x)",
            )
            .with_sql_example("SELECT fit_min_max_scaler(age) FROM customers")
            .with_argument("x", "Numeric expression to fit.")
            .build()
        }))
    }
}

/// The range seen so far (`None` before any value).
#[derive(Debug, Default)]
pub struct MinMaxAccumulator {
    range: Option<(f64, f64)>,
}

impl MinMaxAccumulator {
    fn add(&mut self, v: f64) {
        self.range = Some(match self.range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
}

impl Accumulator for MinMaxAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("{NAME}: missing argument 'x'");
        };
        for_each_finite(NAME, "x", x, |v| self.add(v))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (Some(min), Some(max)) = (
            states
                .first()
                .and_then(|s| s.as_primitive_opt::<Float64Type>()),
            states
                .get(1)
                .and_then(|s| s.as_primitive_opt::<Float64Type>()),
        ) else {
            return exec_err!("{NAME}: state is not two Float64 columns");
        };
        for row in 0..min.len() {
            if min.is_valid(row) && max.is_valid(row) {
                self.add(min.value(row));
                self.add(max.value(row));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (min, max) = self.range.unzip();
        Ok(vec![ScalarValue::Float64(min), ScalarValue::Float64(max)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some((min, max)) = self.range else {
            return no_values(NAME, "x");
        };
        json_result(NAME, &MinMaxScalerParams { min, max })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn fit(acc: &mut MinMaxAccumulator, values: Vec<Option<f64>>) {
        let array: ArrayRef = Arc::new(Float64Array::from(values));
        acc.update_batch(&[array]).unwrap();
    }

    fn text(value: ScalarValue) -> String {
        value.try_as_str().flatten().unwrap().to_string()
    }

    #[test]
    fn range_skipping_nulls_and_nan() {
        let mut acc = MinMaxAccumulator::default();
        fit(
            &mut acc,
            vec![Some(3.0), None, Some(f64::NAN), Some(-2.5), Some(10.0)],
        );
        assert_eq!(text(acc.evaluate().unwrap()), r#"{"min":-2.5,"max":10.0}"#);
    }

    #[test]
    fn merged_partial_states_give_the_same_json() {
        let values: Vec<Option<f64>> = (0..50)
            .map(|i| Some(f64::from((i * 37) % 50) - 20.0))
            .collect();
        let mut whole = MinMaxAccumulator::default();
        fit(&mut whole, values.clone());
        let mut merged = MinMaxAccumulator::default();
        for part in [&values[..10], &values[10..], &[][..]] {
            let mut partial = MinMaxAccumulator::default();
            fit(&mut partial, part.to_vec());
            let state: Vec<ArrayRef> = partial
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state).unwrap();
        }
        assert_eq!(
            text(merged.evaluate().unwrap()),
            text(whole.evaluate().unwrap())
        );
    }

    #[test]
    fn no_values_is_an_error() {
        let mut acc = MinMaxAccumulator::default();
        fit(&mut acc, vec![None]);
        let err = acc.evaluate().unwrap_err().to_string();
        assert!(
            err.contains("fit_min_max_scaler: argument 'x' has no"),
            "{err}"
        );
    }
}
