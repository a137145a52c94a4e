//! `min_max_scale(x, params)`: `(x - min) / (max - min)` with a fitted range.
//!
//! `params` is the JSON [`fit_min_max_scaler`](super::fit_min_max_scaler)
//! returned (or `'{"min": 0, "max": 100}'` by hand), a constant parsed once per
//! batch. Values outside the fitted range extrapolate below 0 or above 1, as
//! scikit-learn's `MinMaxScaler` does without `clip`. An empty range
//! (`min == max`) maps every value to 0. A null `x` gives null.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    check_arity, coerce_float, coerce_text, float_column, map_value, parse_params, value_and_params,
};
use super::fit_min_max_scaler::MinMaxScalerParams;

const NAME: &str = "min_max_scale";

/// The `min_max_scale` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinMaxScaleFunc {
    signature: Signature,
}

impl Default for MinMaxScaleFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MinMaxScaleFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MinMaxScaleFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 2, 2, "(x, params)")?;
        Ok(vec![
            coerce_float(NAME, "x", &arg_types[0])?,
            coerce_text(NAME, "params", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (value, params) = value_and_params(NAME, &args.args)?;
        let MinMaxScalerParams { min, max } = parse_params(NAME, params)?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return exec_err!(
                "{NAME}: argument 'params' has min {min} and max {max}; both must be finite, min <= max"
            );
        }
        let range = max - min;
        map_value(value, |x| {
            let x = float_column(NAME, "x", x)?;
            let scaled: ArrayRef = if range == 0.0 {
                // NaN stays NaN, as it does through the division.
                Arc::new(x.unary::<_, Float64Type>(|v| if v.is_nan() { v } else { 0.0 }))
            } else {
                Arc::new(x.unary::<_, Float64Type>(|v| (v - min) / range))
            };
            Ok(scaled)
        })
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
                "Rescales a value with the range fit_min_max_scaler returned: \
                 (x - min) / (max - min); 0 when max = min. Values outside the fitted range \
                 extrapolate (no clipping, as scikit-learn). A null x gives null.",
                "min_max_scale(x, params)",
            )
            .with_sql_example(
                "SELECT min_max_scale(age, '{\"min\":18.0,\"max\":90.0}') FROM customers",
            )
            .with_argument("x", "Numeric expression to scale.")
            .with_argument(
                "params",
                "Constant JSON string returned by fit_min_max_scaler.",
            )
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;

    fn invoke(x: Vec<Option<f64>>, params: &str) -> Result<ArrayRef> {
        let rows = x.len();
        let args = vec![
            ColumnarValue::Array(Arc::new(Float64Array::from(x))),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(params.into()))),
        ];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        MinMaxScaleFunc::new()
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: rows,
                return_field: Arc::new(Field::new("f", DataType::Float64, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })?
            .to_array(rows)
    }

    #[test]
    fn scales_extrapolates_and_keeps_nulls() {
        let got = invoke(
            vec![Some(2.0), Some(6.0), Some(10.0), Some(14.0), None],
            r#"{"min":2,"max":10}"#,
        )
        .unwrap();
        let got = got.as_primitive::<Float64Type>();
        assert_eq!(&got.values()[..4], &[0.0, 0.5, 1.0, 1.5]);
        assert!(got.is_null(4));
    }

    #[test]
    fn empty_range_gives_zero() {
        let got = invoke(vec![Some(3.0), Some(4.0)], r#"{"min":3,"max":3}"#).unwrap();
        assert_eq!(got.as_primitive::<Float64Type>().values(), &[0.0, 0.0]);
    }

    #[test]
    fn inverted_range_is_an_error() {
        let err = invoke(vec![Some(1.0)], r#"{"min":3,"max":1}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("min_max_scale: argument 'params' has min 3"),
            "{err}"
        );
    }
}
