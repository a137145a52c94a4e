//! `one_hot(x, params)`: a category as a one-hot vector over a fitted vocabulary.
//!
//! `params` is the JSON [`fit_categories`](super::fit_categories) returned,
//! parsed once per batch. The result is a `List<Float64>` of length
//! `len(categories) + 1`: 1.0 at the category's index, 0.0 elsewhere, the last
//! slot standing for every category not in the list (scikit-learn's
//! `handle_unknown="infrequent_if_exist"` column), so the width never changes
//! after fitting. It is the vector form of
//! [`ordinal_encode`](super::ordinal_encode): slot `ordinal_encode(x, params)`
//! holds the 1.0. A null gives a null list.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef};
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

const NAME: &str = "one_hot";

/// The `one_hot` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OneHotFunc {
    signature: Signature,
}

impl Default for OneHotFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl OneHotFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, true))
}

impl ScalarUDFImpl for OneHotFunc {
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
        Ok(DataType::List(item_field()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (value, params) = value_and_params(NAME, &args.args)?;
        let params: CategoriesParams = parse_params(NAME, params)?;
        let index = params.index(NAME)?;
        let width = index.len() + 1;
        map_value(value, |x| {
            let mut values = Vec::new();
            let mut valid = Vec::with_capacity(x.len());
            for_each_text(NAME, "x", x, |_, text| {
                if let Some(text) = text {
                    let hot = index.get(text).map_or(width - 1, |i| *i as usize);
                    let start = values.len();
                    values.resize(start + width, 0.0);
                    values[start + hot] = 1.0;
                }
                valid.push(text.is_some());
                Ok(())
            })?;
            if i32::try_from(values.len()).is_err() {
                return exec_err!(
                    "{NAME}: the one-hot vectors of one batch exceed 2^31 values; use smaller batches"
                );
            }
            let offsets =
                OffsetBuffer::<i32>::from_lengths(valid.iter().map(|v| if *v { width } else { 0 }));
            let list = ListArray::try_new(
                item_field(),
                offsets,
                Arc::new(Float64Array::from(values)),
                Some(NullBuffer::from(valid)),
            )?;
            let list: ArrayRef = Arc::new(list);
            Ok(list)
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
                "Encodes a category as a one-hot List<Float64> of length len(categories) + 1 over \
                 the list fit_categories returned; the last slot is 1.0 for a category not in the \
                 list. Integers match by their decimal text. A null gives null.",
                "one_hot(x, params)",
            )
            .with_sql_example(
                "SELECT one_hot(country, '{\"categories\":[\"FR\",\"DE\"]}') FROM customers",
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
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Float64Type;
    use datafusion::common::ScalarValue;

    fn invoke(x: ColumnarValue, params: &str) -> Result<ColumnarValue> {
        let params = ColumnarValue::Scalar(ScalarValue::Utf8(Some(params.into())));
        crate::features::args::invoke_for_test(&OneHotFunc::new(), vec![x, params], 3)
    }

    fn row(list: &ListArray, i: usize) -> Vec<f64> {
        list.value(i)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn known_unseen_and_null() {
        let x = ColumnarValue::Array(Arc::new(arrow::array::StringArray::from(vec![
            Some("a"),
            None,
            Some("q"),
        ])));
        let got = invoke(x, r#"{"categories":["b","a"]}"#)
            .unwrap()
            .to_array(3)
            .unwrap();
        let list = got.as_list::<i32>();
        assert_eq!(row(list, 0), vec![0.0, 1.0, 0.0]);
        assert!(list.is_null(1));
        assert_eq!(row(list, 2), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn scalar_gives_scalar() {
        let x = ColumnarValue::Scalar(ScalarValue::Int64(Some(7)));
        let got = invoke(x, r#"{"categories":["7"]}"#).unwrap();
        let ColumnarValue::Scalar(ScalarValue::List(list)) = got else {
            unreachable!("not a list scalar: {got:?}")
        };
        assert_eq!(row(&list, 0), vec![1.0, 0.0]);
        let null = invoke(
            ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            r#"{"categories":["7"]}"#,
        )
        .unwrap();
        assert!(matches!(null, ColumnarValue::Scalar(s) if s.is_null()));
    }
}
