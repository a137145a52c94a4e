//! `ordinal_encode(x, params)`: a category's index in a fitted vocabulary.
//!
//! `params` is the JSON [`fit_categories`](super::fit_categories) returned
//! (or `'{"categories":["red","green"]}'` by hand), parsed once per batch.
//! A category gets its position in the list; one not in the list gets
//! `len(categories)`, an explicit "unseen" index, so a model trained on the
//! encoding sees new categories as one known value instead of an error or a
//! null. Integers are matched by their decimal text. A null gives null.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    check_arity, coerce_category, coerce_text, for_each_text, map_value, parse_params,
    value_and_params,
};
use super::fit_categories::CategoriesParams;

const NAME: &str = "ordinal_encode";

/// The `ordinal_encode` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OrdinalEncodeFunc {
    signature: Signature,
}

impl Default for OrdinalEncodeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl OrdinalEncodeFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for OrdinalEncodeFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 2, 2, "(x, params)")?;
        Ok(vec![
            coerce_category(NAME, "x", &arg_types[0])?,
            coerce_text(NAME, "params", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (value, params) = value_and_params(NAME, &args.args)?;
        let params: CategoriesParams = parse_params(NAME, params)?;
        let index = params.index(NAME)?;
        let Ok(unseen) = i32::try_from(index.len()) else {
            return exec_err!("{NAME}: argument 'params' has too many categories");
        };
        map_value(value, |x| {
            let mut out = Int32Builder::with_capacity(x.len());
            for_each_text(NAME, "x", x, |_, text| {
                match text {
                    None => out.append_null(),
                    Some(text) => out.append_value(index.get(text).copied().unwrap_or(unseen)),
                }
                Ok(())
            })?;
            let out: ArrayRef = Arc::new(out.finish());
            Ok(out)
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
                "Encodes a category as its index in the list fit_categories returned; a category \
                 not in the list gets len(categories) (the unseen index). Integers match by their \
                 decimal text. A null gives null.",
                "ordinal_encode(x, params)",
            )
            .with_sql_example(
                "SELECT ordinal_encode(country, '{\"categories\":[\"FR\",\"DE\"]}') FROM customers",
            )
            .with_argument("x", "String or integer expression.")
            .with_argument("params", "Constant JSON string returned by fit_categories.")
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int32Array, Int64Array, StringArray};
    use datafusion::common::ScalarValue;

    fn invoke(x: ColumnarValue, params: &str) -> Result<ColumnarValue> {
        let params = ColumnarValue::Scalar(ScalarValue::Utf8(Some(params.into())));
        crate::features::args::invoke_for_test(&OrdinalEncodeFunc::new(), vec![x, params], 4)
    }

    #[test]
    fn known_unseen_and_null() {
        let x = ColumnarValue::Array(Arc::new(StringArray::from(vec![
            Some("b"),
            Some("zzz"),
            None,
            Some("a"),
        ])));
        let got = invoke(x, r#"{"categories":["b","a"]}"#)
            .unwrap()
            .to_array(4)
            .unwrap();
        assert_eq!(
            got.as_ref(),
            &Int32Array::from(vec![Some(0), Some(2), None, Some(1)]) as &dyn Array
        );
    }

    #[test]
    fn integers_and_scalars() {
        let x = ColumnarValue::Scalar(ScalarValue::Int64(Some(10)));
        let got = invoke(x, r#"{"categories":["9","10"]}"#).unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int32(Some(1)))),
            "{got:?}"
        );
        let x = ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(9), None])));
        let got = invoke(x, r#"{"categories":["9","10"]}"#)
            .unwrap()
            .to_array(2)
            .unwrap();
        assert_eq!(
            got.as_ref(),
            &Int32Array::from(vec![Some(0), None]) as &dyn Array
        );
    }

    #[test]
    fn empty_vocabulary_makes_everything_unseen() {
        let x = ColumnarValue::Scalar(ScalarValue::Utf8(Some("a".into())));
        let got = invoke(x, r#"{"categories":[]}"#).unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int32(Some(0)))),
            "{got:?}"
        );
    }

    #[test]
    fn malformed_params_name_the_function() {
        let x = ColumnarValue::Scalar(ScalarValue::Utf8(Some("a".into())));
        let err = invoke(x, r#"{"categories":"a"}"#).unwrap_err().to_string();
        assert!(err.contains("ordinal_encode: argument 'params'"), "{err}");
    }
}
