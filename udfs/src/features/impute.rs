//! `impute(x, params)`: replaces a null or NaN with a fitted value.
//!
//! `params` is the JSON [`fit_imputer`](super::fit_imputer) returned, or a
//! constant written by hand (`'{"value": 0}'`, scikit-learn's
//! `strategy="constant"`), parsed once per batch. The result is never null.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    check_arity, coerce_float, coerce_text, float_column, map_value, parse_params, value_and_params,
};
use super::fit_imputer::ImputerParams;

const NAME: &str = "impute";

/// The `impute` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ImputeFunc {
    signature: Signature,
}

impl Default for ImputeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ImputeFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ImputeFunc {
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
        let ImputerParams { value: fill } = parse_params(NAME, params)?;
        if fill.is_nan() {
            return exec_err!(
                "{NAME}: argument 'params' has value NaN; a replacement must be a number"
            );
        }
        map_value(value, |x| {
            let x = float_column(NAME, "x", x)?;
            let filled: ArrayRef = Arc::new(Float64Array::from_iter_values(
                x.iter().map(|v| v.filter(|v| !v.is_nan()).unwrap_or(fill)),
            ));
            Ok(filled)
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
                "Replaces a null or NaN with the value fit_imputer returned, or with a constant \
                 given as '{\"value\": c}'. Other values pass through unchanged.",
                "impute(x, params)",
            )
            .with_sql_example("SELECT impute(income, '{\"value\":0}') FROM customers")
            .with_argument("x", "Numeric expression.")
            .with_argument(
                "params",
                "Constant JSON string returned by fit_imputer, or {\"value\": c}.",
            )
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Float64Type;
    use datafusion::common::ScalarValue;

    fn invoke(x: ColumnarValue, params: &str) -> Result<ColumnarValue> {
        let params = ColumnarValue::Scalar(ScalarValue::Utf8(Some(params.into())));
        crate::features::args::invoke_for_test(&ImputeFunc::new(), vec![x, params], 4)
    }

    #[test]
    fn replaces_null_and_nan() {
        let x = ColumnarValue::Array(Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(-3.0),
        ])));
        let got = invoke(x, r#"{"value": 0}"#).unwrap().to_array(4).unwrap();
        let got = got.as_primitive::<Float64Type>();
        assert_eq!(got.null_count(), 0);
        assert_eq!(got.values(), &[1.0, 0.0, 0.0, -3.0]);
    }

    #[test]
    fn null_scalar_is_replaced() {
        let got = invoke(
            ColumnarValue::Scalar(ScalarValue::Float64(None)),
            r#"{"value":2.5}"#,
        )
        .unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Float64(Some(v))) if v == 2.5),
            "{got:?}"
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        let x = ColumnarValue::Scalar(ScalarValue::Float64(None));
        let err = invoke(x, r#"{"mean": 1}"#).unwrap_err().to_string();
        assert!(err.contains("impute: argument 'params'"), "{err}");
    }
}
