//! `quantile_bucket(x, params)`: the bucket of a value among fitted cut points.
//!
//! `params` is the JSON [`fit_quantiles`](super::fit_quantiles) returned (or
//! `'{"cuts":[10, 20]}'` by hand), parsed once per batch. The bucket is the
//! number of cuts `<= x`, from 0 to `len(cuts)`: a value equal to a cut goes
//! to the bucket above it (numpy's `digitize(x, cuts)`, the bins of
//! scikit-learn's `KBinsDiscretizer`). Values beyond the fitted range fall in
//! the first or last bucket. A null or NaN gives null.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    check_arity, coerce_float, coerce_text, float_column, map_value, parse_params, value_and_params,
};
use super::fit_quantiles::QuantileParams;

const NAME: &str = "quantile_bucket";

/// The `quantile_bucket` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuantileBucketFunc {
    signature: Signature,
}

impl Default for QuantileBucketFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantileBucketFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for QuantileBucketFunc {
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
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (value, params) = value_and_params(NAME, &args.args)?;
        let QuantileParams { cuts } = parse_params(NAME, params)?;
        if cuts.iter().any(|c| c.is_nan()) || cuts.windows(2).any(|w| w[0] >= w[1]) {
            return exec_err!(
                "{NAME}: argument 'params' must list strictly increasing cuts, got {cuts:?}"
            );
        }
        if i32::try_from(cuts.len()).is_err() {
            return exec_err!("{NAME}: argument 'params' has too many cuts");
        }
        map_value(value, |x| {
            let x = float_column(NAME, "x", x)?;
            let buckets: Int32Array = x
                .iter()
                .map(|v| match v {
                    Some(v) if !v.is_nan() => Some(cuts.partition_point(|c| *c <= v) as i32),
                    _ => None,
                })
                .collect();
            let buckets: ArrayRef = Arc::new(buckets);
            Ok(buckets)
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
                "Buckets a value by the cut points fit_quantiles returned: the number of cuts <= x, \
                 from 0 to len(cuts). A null or NaN gives null.",
                "quantile_bucket(x, params)",
            )
            .with_sql_example("SELECT quantile_bucket(income, '{\"cuts\":[20000.0,45000.0]}') FROM customers")
            .with_argument("x", "Numeric expression to bucket.")
            .with_argument("params", "Constant JSON string returned by fit_quantiles.")
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array};
    use datafusion::common::ScalarValue;

    fn invoke(x: ColumnarValue, params: &str) -> Result<ColumnarValue> {
        let params = ColumnarValue::Scalar(ScalarValue::Utf8(Some(params.into())));
        crate::features::args::invoke_for_test(&QuantileBucketFunc::new(), vec![x, params], 1)
    }

    #[test]
    fn counts_cuts_at_or_below() {
        let x = Float64Array::from(vec![
            Some(5.0),
            Some(10.0),
            Some(15.0),
            Some(20.0),
            Some(99.0),
            None,
            Some(f64::NAN),
        ]);
        let got = invoke(ColumnarValue::Array(Arc::new(x)), r#"{"cuts":[10, 20]}"#)
            .unwrap()
            .to_array(7)
            .unwrap();
        let expected = Int32Array::from(vec![
            Some(0),
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            None,
            None,
        ]);
        assert_eq!(got.as_ref(), &expected as &dyn Array);
    }

    #[test]
    fn no_cuts_is_one_bucket() {
        let got = invoke(
            ColumnarValue::Scalar(ScalarValue::Float64(Some(-1e9))),
            r#"{"cuts":[]}"#,
        )
        .unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int32(Some(0)))),
            "{got:?}"
        );
    }

    #[test]
    fn unsorted_cuts_are_an_error() {
        let err = invoke(
            ColumnarValue::Scalar(ScalarValue::Float64(Some(1.0))),
            r#"{"cuts":[2, 1]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("quantile_bucket: argument 'params' must list strictly increasing"),
            "{err}"
        );
    }
}
