//! `standard_scale(x, params)`: `(x - mean) / std` with fitted parameters.
//!
//! `params` is the JSON [`fit_standard_scaler`](super::fit_standard_scaler)
//! returned (or written by hand: `'{"mean": 10, "std": 2}'`), a constant
//! parsed once per batch. A zero standard deviation divides by 1, as
//! scikit-learn's `StandardScaler` does for a constant column, so the result
//! is `x - mean`. A null `x` gives null; NaN stays NaN.

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
use super::fit_standard_scaler::StandardScalerParams;

const NAME: &str = "standard_scale";

/// The `standard_scale` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StandardScaleFunc {
    signature: Signature,
}

impl Default for StandardScaleFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl StandardScaleFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The mean and the divisor of checked parameters.
fn mean_and_divisor(params: &StandardScalerParams) -> Result<(f64, f64)> {
    let StandardScalerParams { mean, std, .. } = *params;
    if !mean.is_finite() {
        return exec_err!("{NAME}: argument 'params' has mean {mean}; it must be finite");
    }
    if !std.is_finite() || std < 0.0 {
        return exec_err!("{NAME}: argument 'params' has std {std}; it must be finite and >= 0");
    }
    Ok((mean, if std == 0.0 { 1.0 } else { std }))
}

impl ScalarUDFImpl for StandardScaleFunc {
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
        let (mean, divisor) = mean_and_divisor(&parse_params(NAME, params)?)?;
        map_value(value, |x| {
            let x = float_column(NAME, "x", x)?;
            let scaled: ArrayRef = Arc::new(x.unary::<_, Float64Type>(|v| (v - mean) / divisor));
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
                "Standardises a value with the parameters fit_standard_scaler returned: \
                 (x - mean) / std, or x - mean when std is 0 (as scikit-learn). A null x gives null.",
                "standard_scale(x, params)",
            )
            .with_sql_example(
                "SELECT standard_scale(income, '{\"mean\":52000.0,\"std\":8000.0}') FROM customers",
            )
            .with_argument("x", "Numeric expression to scale.")
            .with_argument("params", "Constant JSON string returned by fit_standard_scaler.")
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;

    fn invoke(x: ColumnarValue, params: ColumnarValue, rows: usize) -> Result<ColumnarValue> {
        let args = vec![x, params];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        StandardScaleFunc::new().invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("f", DataType::Float64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    fn params(text: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.into())))
    }

    #[test]
    fn scales_and_keeps_nulls() {
        let x = ColumnarValue::Array(Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(5.0),
        ])));
        let got = invoke(x, params(r#"{"mean":3.0,"std":2.0,"count":3}"#), 3)
            .unwrap()
            .to_array(3)
            .unwrap();
        let got = got.as_primitive::<Float64Type>();
        assert_eq!(got.value(0), -1.0);
        assert!(got.is_null(1));
        assert_eq!(got.value(2), 1.0);
    }

    #[test]
    fn zero_std_divides_by_one() {
        let x = ColumnarValue::Scalar(ScalarValue::Float64(Some(9.0)));
        let got = invoke(x, params(r#"{"mean":7,"std":0}"#), 1).unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Float64(Some(v))) if v == 2.0),
            "{got:?}"
        );
    }

    #[test]
    fn null_scalar_gives_null() {
        let x = ColumnarValue::Scalar(ScalarValue::Float64(None));
        let got = invoke(x, params(r#"{"mean":7,"std":1}"#), 1).unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Float64(None))),
            "{got:?}"
        );
    }

    #[test]
    fn bad_params_are_errors_naming_the_function() {
        let x = || ColumnarValue::Scalar(ScalarValue::Float64(Some(1.0)));
        for (p, needle) in [
            (params(r#"{"mean":1}"#), "missing field `std`"),
            (params(r#"{"mean":1,"std":-2}"#), "std -2"),
            (params("not json"), "argument 'params' is not valid"),
            (
                ColumnarValue::Array(Arc::new(StringArray::from(vec!["{}"]))),
                "not a column",
            ),
        ] {
            let err = invoke(x(), p, 1).unwrap_err().to_string();
            assert!(
                err.contains("standard_scale: ") && err.contains(needle),
                "{err}"
            );
        }
    }
}
