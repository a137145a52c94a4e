//! Argument conventions shared by the fit aggregates and the apply scalars.
//!
//! A transform is fitted by an aggregate that returns its parameters as a
//! small JSON object (`fit_standard_scaler(x)` gives `{"mean":…,"std":…}`),
//! and applied by a scalar that takes the value and that JSON as a constant
//! string (`standard_scale(x, '{"mean":…}')`). The helpers here give every
//! function the same rules: numbers are coerced to `Float64`, categories are
//! strings or integers read as their decimal text, the parameters are parsed
//! once per batch (never per row), and a missing, non-constant or malformed
//! parameter string is an error naming the function and the argument.
//!
//! Floats in the JSON are written in their shortest round-trip form; when
//! read back, serde_json may land one unit in the last place away for values
//! with 17 significant digits, which changes an applied value by about one
//! part in 10^16.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt64Type};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Literal, TryCastExpr};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::training::args::is_text;

/// The type a numeric argument is coerced to: `Float64` (a null literal too).
pub fn coerce_float(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || t.is_null() {
        Ok(DataType::Float64)
    } else {
        plan_err!("{function}: argument '{argument}' must be numeric, got {t}")
    }
}

/// The type an integer argument is coerced to: `Int64`.
pub fn coerce_integer(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    if t.is_integer() || t.is_null() {
        Ok(DataType::Int64)
    } else {
        plan_err!("{function}: argument '{argument}' must be an integer, got {t}")
    }
}

/// The type a constant text argument (parameters, a strategy) is coerced to: `Utf8`.
pub fn coerce_text(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    if is_text(t) || t.is_null() {
        Ok(DataType::Utf8)
    } else {
        plan_err!("{function}: argument '{argument}' must be a string, got {t}")
    }
}

/// The type a categorical argument is coerced to: strings keep their type,
/// integers become `Int64` (`UInt64` stays), both read as text.
pub fn coerce_category(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(t.clone()),
        DataType::Null => Ok(DataType::Utf8),
        DataType::Dictionary(_, inner) if is_text(inner) => Ok(DataType::Utf8),
        DataType::UInt64 => Ok(DataType::UInt64),
        t if t.is_integer() => Ok(DataType::Int64),
        other => plan_err!(
            "{function}: argument '{argument}' must be a string or an integer, got {other}"
        ),
    }
}

/// Checks the argument count: `min..=max` arguments, described by `usage`
/// (e.g. `"(x, params)"`) in the error.
pub fn check_arity(
    function: &str,
    arg_types: &[DataType],
    min: usize,
    max: usize,
    usage: &str,
) -> Result<()> {
    if (min..=max).contains(&arg_types.len()) {
        Ok(())
    } else {
        plan_err!(
            "{function}: expected {usage}, got {} argument(s)",
            arg_types.len()
        )
    }
}

/// The text of the constant `params` argument of an apply function.
pub fn params_text<'a>(function: &str, params: &'a ColumnarValue) -> Result<&'a str> {
    match params {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(text))
            | ScalarValue::LargeUtf8(Some(text))
            | ScalarValue::Utf8View(Some(text)),
        ) => Ok(text),
        ColumnarValue::Scalar(s) if s.is_null() => {
            exec_err!(
                "{function}: argument 'params' is null; pass the JSON the fit function returned"
            )
        }
        ColumnarValue::Scalar(other) => {
            exec_err!(
                "{function}: argument 'params' must be a JSON string, got {}",
                other.data_type()
            )
        }
        ColumnarValue::Array(_) => exec_err!(
            "{function}: argument 'params' must be a constant string (the JSON the fit function returned), not a column"
        ),
    }
}

/// Parses the constant `params` argument into `T` (typically a
/// `deny_unknown_fields` struct, so a misspelt key is an error).
pub fn parse_params<T: DeserializeOwned>(function: &str, params: &ColumnarValue) -> Result<T> {
    let text = params_text(function, params)?;
    match serde_json::from_str(text) {
        Ok(parsed) => Ok(parsed),
        Err(e) => exec_err!("{function}: argument 'params' is not valid parameters ({e}): {text}"),
    }
}

/// Fitted parameters as the JSON text a fit aggregate returns.
pub fn json_result<T: Serialize>(function: &str, params: &T) -> Result<ScalarValue> {
    match serde_json::to_string(params) {
        Ok(text) => Ok(ScalarValue::Utf8(Some(text))),
        Err(e) => exec_err!("{function}: cannot write the fitted parameters as JSON: {e}"),
    }
}

/// The value of a constant aggregate argument (a literal, possibly cast).
pub fn literal_argument(expr: &Arc<dyn PhysicalExpr>) -> Option<ScalarValue> {
    if let Some(literal) = expr.downcast_ref::<Literal>() {
        return Some(literal.value().clone());
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return literal_argument(cast.expr())?
            .cast_to(cast.cast_type())
            .ok();
    }
    if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        return literal_argument(cast.expr())?
            .cast_to(cast.cast_type())
            .ok();
    }
    None
}

/// The constant integer argument `argument` of an aggregate, `None` when absent.
pub fn literal_integer(
    function: &str,
    argument: &str,
    expr: Option<&Arc<dyn PhysicalExpr>>,
) -> Result<Option<i64>> {
    let Some(expr) = expr else { return Ok(None) };
    match literal_argument(expr).map(|v| v.cast_to(&DataType::Int64)) {
        Some(Ok(ScalarValue::Int64(Some(n)))) => Ok(Some(n)),
        _ => plan_err!(
            "{function}: argument '{argument}' must be a constant, non-null integer, got {expr}"
        ),
    }
}

/// The `Float64` column of an argument coerced to `Float64`.
pub fn float_column<'a>(
    function: &str,
    argument: &str,
    array: &'a ArrayRef,
) -> Result<&'a Float64Array> {
    match array.as_primitive_opt::<Float64Type>() {
        Some(floats) => Ok(floats),
        None => exec_err!(
            "{function}: argument '{argument}' was not coerced to Float64 (got {})",
            array.data_type()
        ),
    }
}

/// Calls `f` on every value of a fit's input that counts: nulls and NaN are
/// skipped, an infinity is an error (no finite parameter can describe it),
/// and -0.0 becomes 0.0 so results do not depend on which zero came first.
pub fn for_each_finite(
    function: &str,
    argument: &str,
    array: &ArrayRef,
    mut f: impl FnMut(f64),
) -> Result<()> {
    let floats = float_column(function, argument, array)?;
    for x in floats.iter().flatten() {
        if x.is_nan() {
            continue;
        }
        if x.is_infinite() {
            return exec_err!(
                "{function}: argument '{argument}' contains {x}; only finite values can be fitted (filter or clip them; nulls and NaN are skipped)"
            );
        }
        f(x + 0.0);
    }
    Ok(())
}

/// The error of a fit over no usable value.
pub fn no_values<T>(function: &str, argument: &str) -> Result<T> {
    exec_err!("{function}: argument '{argument}' has no non-null, non-NaN value to fit")
}

/// A state field holding a list of `f64` values.
pub fn f64_list_field(name: String) -> FieldRef {
    Arc::new(Field::new_list(
        name,
        Field::new_list_field(DataType::Float64, true),
        true,
    ))
}

/// A list-of-`f64` state value (see [`f64_list_field`]).
pub fn f64_list_state(values: &[f64]) -> ScalarValue {
    let array: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
    SingleRowListArrayBuilder::new(array).build_list_scalar()
}

/// Appends every value of a list-of-`f64` state column to `out`.
pub fn extend_from_f64_lists(function: &str, state: &ArrayRef, out: &mut Vec<f64>) -> Result<()> {
    let Some(lists) = state.as_list_opt::<i32>() else {
        return exec_err!(
            "{function}: state is not a list (got {})",
            state.data_type()
        );
    };
    for list in lists.iter().flatten() {
        let Some(values) = list.as_primitive_opt::<Float64Type>() else {
            return exec_err!(
                "{function}: state list does not hold Float64 (got {})",
                list.data_type()
            );
        };
        out.extend(values.iter().flatten());
    }
    Ok(())
}

/// Calls `f(row, text)` for every row of a categorical column (coerced by
/// [`coerce_category`]): strings as they are, integers as decimal text,
/// nulls as `None`.
pub fn for_each_text(
    function: &str,
    argument: &str,
    array: &ArrayRef,
    mut f: impl FnMut(usize, Option<&str>) -> Result<()>,
) -> Result<()> {
    let mut text = String::new();
    match array.data_type() {
        DataType::Utf8 => {
            for (row, value) in array.as_string::<i32>().iter().enumerate() {
                f(row, value)?;
            }
        }
        DataType::LargeUtf8 => {
            for (row, value) in array.as_string::<i64>().iter().enumerate() {
                f(row, value)?;
            }
        }
        DataType::Utf8View => {
            for (row, value) in array.as_string_view().iter().enumerate() {
                f(row, value)?;
            }
        }
        DataType::Int64 => {
            for (row, value) in array.as_primitive::<Int64Type>().iter().enumerate() {
                f(row, decimal(&mut text, value))?;
            }
        }
        DataType::UInt64 => {
            for (row, value) in array.as_primitive::<UInt64Type>().iter().enumerate() {
                f(row, decimal(&mut text, value))?;
            }
        }
        DataType::Null => {
            for row in 0..array.len() {
                f(row, None)?;
            }
        }
        other => {
            return exec_err!("{function}: argument '{argument}' has unsupported type {other}");
        }
    }
    Ok(())
}

fn decimal(buffer: &mut String, value: Option<impl std::fmt::Display>) -> Option<&str> {
    let value = value?;
    buffer.clear();
    // Writing to a String cannot fail.
    let _ = write!(buffer, "{value}");
    Some(buffer.as_str())
}

/// Applies `f` to the value argument of an apply function: a column gives a
/// column, a scalar gives a scalar.
pub fn map_value(
    value: &ColumnarValue,
    f: impl FnOnce(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    match value {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(f(array)?)),
        ColumnarValue::Scalar(scalar) => {
            let result = f(&scalar.to_array_of_size(1)?)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        }
    }
}

/// The two arguments `(x, params)` of an apply function.
pub fn value_and_params<'a>(
    function: &str,
    args: &'a [ColumnarValue],
) -> Result<(&'a ColumnarValue, &'a ColumnarValue)> {
    match args {
        [value, params] => Ok((value, params)),
        other => exec_err!(
            "{function}: expected (x, params), got {} argument(s)",
            other.len()
        ),
    }
}

/// Calls scalar function `func` on `args` the way DataFusion's executor
/// does (argument fields and return field filled in): the unit tests of
/// every apply function go through it.
#[cfg(test)]
pub(crate) fn invoke_for_test(
    func: &dyn datafusion::logical_expr::ScalarUDFImpl,
    args: Vec<ColumnarValue>,
    rows: usize,
) -> Result<ColumnarValue> {
    let types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
    let arg_fields = types
        .iter()
        .map(|t| Arc::new(Field::new("a", t.clone(), true)))
        .collect();
    let return_type = func.return_type(&types)?;
    func.invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: rows,
        return_field: Arc::new(Field::new("f", return_type, true)),
        config_options: Arc::new(datafusion::config::ConfigOptions::default()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn params_must_be_a_constant_string() {
        let column = ColumnarValue::Array(Arc::new(StringArray::from(vec!["{}"])));
        let err = params_text("f", &column).unwrap_err().to_string();
        assert!(
            err.contains("f: argument 'params' must be a constant"),
            "{err}"
        );
        let null = ColumnarValue::Scalar(ScalarValue::Utf8(None));
        assert!(
            params_text("f", &null)
                .unwrap_err()
                .to_string()
                .contains("is null")
        );
    }

    #[test]
    fn malformed_params_name_the_function_and_argument() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct P {
            value: f64,
        }
        let bad = ColumnarValue::Scalar(ScalarValue::Utf8(Some(r#"{"valeu": 1}"#.into())));
        let err = parse_params::<P>("impute", &bad).unwrap_err().to_string();
        assert!(
            err.contains("impute: argument 'params'") && err.contains("valeu"),
            "{err}"
        );
    }

    #[test]
    fn integers_are_read_as_decimal_text() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![Some(-12), None]));
        let mut seen = Vec::new();
        for_each_text("f", "x", &array, |_, t| {
            seen.push(t.map(str::to_string));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![Some("-12".to_string()), None]);
    }

    #[test]
    fn fits_skip_nan_and_reject_infinity() {
        let array: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(-0.0),
        ]));
        let mut seen = Vec::new();
        for_each_finite("f", "x", &array, |x| seen.push(x)).unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].is_sign_positive());
        let inf: ArrayRef = Arc::new(Float64Array::from(vec![f64::INFINITY]));
        let err = for_each_finite("f", "x", &inf, |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("f: argument 'x' contains inf"), "{err}");
    }

    #[test]
    fn f64_list_states_round_trip() {
        let state = f64_list_state(&[1.0, 2.5]).to_array_of_size(2).unwrap();
        let mut out = Vec::new();
        extend_from_f64_lists("f", &state, &mut out).unwrap();
        assert_eq!(out, vec![1.0, 2.5, 1.0, 2.5]);
    }
}
