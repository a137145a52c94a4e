//! `feature_hash(value [, num_buckets])`: the hashing trick.
//!
//! Maps a categorical value (a string, or an integer read as its decimal text)
//! to one of `num_buckets` buckets without a fitted vocabulary, so unseen
//! categories need no special case and the transform needs no fitting step.
//! The bucket is exactly the column index scikit-learn's
//! `FeatureHasher(n_features=num_buckets, input_type="string")` gives the same
//! string (signed MurmurHash3 x86 32-bit, seed 0, `abs(h) % n`), so a model
//! trained on scikit-learn features scores correctly on Ember features.
//! Without `num_buckets`, the session option `ember.features.hash_buckets`
//! (default 2^20, scikit-learn's default) gives the count; it is read on the
//! executor that runs the task.

use std::io::Cursor;
use std::sync::Arc;

use crate::config::EmberConfig;
use arrow::array::{Array, ArrayRef, AsArray, Int32Builder, Int64Array};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, DocumentationBuilder, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

const NAME: &str = "feature_hash";

/// The `feature_hash` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FeatureHashFunc {
    signature: Signature,
}

impl Default for FeatureHashFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureHashFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FeatureHashFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (value, buckets) = match arg_types {
            [value] => (value, None),
            [value, buckets] => (value, Some(buckets)),
            _ => {
                return plan_err!(
                    "{NAME}: expected 1 or 2 arguments (value [, num_buckets]), got {}",
                    arg_types.len()
                );
            }
        };
        let value = match value {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => value.clone(),
            DataType::Null => DataType::Utf8,
            DataType::Dictionary(_, inner) if inner.is_string() => DataType::Utf8,
            DataType::UInt64 => DataType::UInt64,
            t if t.is_integer() => DataType::Int64,
            other => {
                return plan_err!(
                    "{NAME}: argument 'value' must be a string or an integer, got {other}"
                );
            }
        };
        match buckets {
            None => Ok(vec![value]),
            Some(b) if b.is_integer() || b.is_null() => Ok(vec![value, DataType::Int64]),
            Some(other) => {
                plan_err!("{NAME}: argument 'num_buckets' must be an integer, got {other}")
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let configured;
        let (value, buckets) = match args.args.as_slice() {
            [value, buckets] => (value, buckets),
            [value] => {
                let n = EmberConfig::from_options(&args.config_options)
                    .features
                    .hash_buckets;
                configured = ColumnarValue::Scalar(ScalarValue::Int64(Some(
                    i64::try_from(n).unwrap_or(i64::MAX),
                )));
                (value, &configured)
            }
            other => return exec_err!("{NAME}: expected 1 or 2 arguments, got {}", other.len()),
        };
        let all_scalar = matches!(
            (value, buckets),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let rows = if all_scalar { 1 } else { args.number_rows };
        let values = value.to_array(rows)?;
        let buckets = buckets.to_array(rows)?;
        let Some(buckets) = buckets.as_any().downcast_ref::<Int64Array>() else {
            return exec_err!("{NAME}: 'num_buckets' was not coerced to Int64");
        };
        let hashed = hash_column(&values, buckets)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &hashed, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(hashed))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            DocumentationBuilder::new_with_details(
                datafusion::logical_expr::DocSection {
                    include: true,
                    label: "Ember Feature Functions",
                    description: None,
                },
                "The hashing trick: maps a category to a bucket in [0, num_buckets), \
                 identical to scikit-learn's FeatureHasher column index. Integers are \
                 hashed as their decimal text. A null value or null num_buckets gives null. \
                 Without num_buckets, the session option ember.features.hash_buckets \
                 (default 1048576) is used.",
                "feature_hash(value [, num_buckets])",
            )
            .with_sql_example("SELECT feature_hash(country, 1024) FROM customers")
            .with_argument("value", "String or integer expression to hash.")
            .with_argument(
                "num_buckets",
                "Number of buckets, 1 to 2147483647 (optional).",
            )
            .build()
        }))
    }
}

/// Hashes every row of `values` into `buckets[row]` buckets.
fn hash_column(values: &ArrayRef, buckets: &Int64Array) -> Result<ArrayRef> {
    let mut out = Int32Builder::with_capacity(values.len());
    let mut text = String::new();
    for row in 0..values.len() {
        if values.is_null(row) || buckets.is_null(row) {
            out.append_null();
            continue;
        }
        let n = checked_bucket_count(buckets.value(row))?;
        let bytes: &[u8] = match values.data_type() {
            DataType::Utf8 => values.as_string::<i32>().value(row).as_bytes(),
            DataType::LargeUtf8 => values.as_string::<i64>().value(row).as_bytes(),
            DataType::Utf8View => values.as_string_view().value(row).as_bytes(),
            DataType::Int64 => {
                text.clear();
                text.push_str(&values.as_primitive::<Int64Type>().value(row).to_string());
                text.as_bytes()
            }
            DataType::UInt64 => {
                text.clear();
                text.push_str(&values.as_primitive::<UInt64Type>().value(row).to_string());
                text.as_bytes()
            }
            other => return exec_err!("{NAME}: unsupported value type {other}"),
        };
        out.append_value(bucket_of(bytes, n)?);
    }
    Ok(Arc::new(out.finish()))
}

fn checked_bucket_count(n: i64) -> Result<i64> {
    if n < 1 || n > i64::from(i32::MAX) {
        return exec_err!("{NAME}: 'num_buckets' must be between 1 and 2147483647, got {n}");
    }
    Ok(n)
}

/// scikit-learn's `FeatureHasher` index for `bytes` with `n` features
/// (`sklearn/feature_extraction/_hashing_fast.pyx`), including its special
/// case for `abs(i32::MIN)`.
fn bucket_of(bytes: &[u8], n: i64) -> Result<i32> {
    let h = murmur3::murmur3_32(&mut Cursor::new(bytes), 0)
        .map_err(|e| datafusion::error::DataFusionError::Execution(format!("{NAME}: {e}")))?
        as i32;
    let index = if h == i32::MIN {
        (i64::from(i32::MAX) - (n - 1)) % n
    } else {
        i64::from(h.unsigned_abs()) % n
    };
    // `index < n <= i32::MAX`, so the conversion cannot fail.
    i32::try_from(index).map_err(|_| {
        datafusion::error::DataFusionError::Internal(format!("{NAME}: bucket overflow"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn invoke(args: Vec<ColumnarValue>, rows: usize) -> Result<ColumnarValue> {
        invoke_with(args, rows, ConfigOptions::default())
    }

    fn invoke_with(
        args: Vec<ColumnarValue>,
        rows: usize,
        config_options: ConfigOptions,
    ) -> Result<ColumnarValue> {
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        FeatureHashFunc::new().invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("f", DataType::Int32, true)),
            config_options: Arc::new(config_options),
        })
    }

    // Expected buckets computed with scikit-learn 1.9.1:
    //   FeatureHasher(n_features=n, input_type="string", alternate_sign=False)
    //   .transform([[s]]).indices[0]
    #[test]
    fn matches_scikit_learn_feature_hasher() {
        let strings = StringArray::from(vec!["hello", "", "subscribe", "Zürich", "42"]);
        let got = invoke(
            vec![
                ColumnarValue::Array(Arc::new(strings)),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1024))),
            ],
            5,
        )
        .unwrap()
        .to_array(5)
        .unwrap();
        let expected = Int32Array::from(SKLEARN_1024.to_vec());
        assert_eq!(got.as_ref(), &expected as &dyn Array);
    }

    const SKLEARN_1024: [i32; 5] = [583, 0, 1023, 337, 970];
    const SKLEARN_16_HELLO: i32 = 7;
    const SKLEARN_DEFAULT_HELLO: i32 = 784967;

    #[test]
    fn integers_hash_as_their_decimal_text() {
        let got = invoke(
            vec![
                ColumnarValue::Array(Arc::new(Int64Array::from(vec![42]))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1024))),
            ],
            1,
        )
        .unwrap()
        .to_array(1)
        .unwrap();
        assert_eq!(
            got.as_primitive::<arrow::datatypes::Int32Type>().value(0),
            SKLEARN_1024[4]
        );
    }

    #[test]
    fn nulls_give_null() {
        let got = invoke(
            vec![
                ColumnarValue::Array(Arc::new(StringArray::from(vec![None, Some("a")]))),
                ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(8), None]))),
            ],
            2,
        )
        .unwrap()
        .to_array(2)
        .unwrap();
        assert_eq!(got.null_count(), 2);
    }

    #[test]
    fn scalar_arguments_give_a_scalar() {
        let got = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("hello".into()))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1024))),
            ],
            3,
        )
        .unwrap();
        assert!(matches!(
            got,
            ColumnarValue::Scalar(ScalarValue::Int32(Some(583)))
        ));
    }

    #[test]
    fn bad_bucket_count_names_the_argument_and_value() {
        let err = invoke(
            vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("a".into()))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(0))),
            ],
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("'num_buckets'") && err.contains("got 0"),
            "{err}"
        );
    }

    #[test]
    fn non_categorical_input_is_a_planning_error() {
        let err = FeatureHashFunc::new()
            .coerce_types(&[DataType::Float64, DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'value'") && err.contains("Float64"), "{err}");
    }

    #[test]
    fn one_argument_uses_the_session_bucket_count() {
        let mut options = ConfigOptions::default();
        options.extensions.insert(EmberConfig::default());
        options.set("ember.features.hash_buckets", "16").unwrap();
        let got = invoke_with(
            vec![ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                "hello".into(),
            )))],
            1,
            options,
        )
        .unwrap();
        // scikit-learn: FeatureHasher(n_features=16) puts "hello" in column SKLEARN_16_HELLO.
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int32(Some(v))) if v == SKLEARN_16_HELLO),
            "{got:?}"
        );
        let default = invoke(
            vec![ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                "hello".into(),
            )))],
            1,
        )
        .unwrap();
        assert!(
            matches!(default, ColumnarValue::Scalar(ScalarValue::Int32(Some(v))) if v == SKLEARN_DEFAULT_HELLO),
            "{default:?}"
        );
    }

    #[test]
    fn min_hash_follows_scikit_learn_special_case() {
        // abs(i32::MIN) is undefined; scikit-learn defines the index as
        // (i32::MAX - (n - 1)) % n, which equals 2^31 % n.
        let n = 1000_i64;
        assert_eq!((i64::from(i32::MAX) - (n - 1)) % n, (1_i64 << 31) % n);
    }
}
