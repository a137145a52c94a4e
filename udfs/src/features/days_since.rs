//! `days_since(t, reference)`: whole days from `t` to `reference` (cohort age).
//!
//! The elapsed time `reference - t`, floored to whole 86,400-second days:
//! one second short of a day is 0, one second before `t` is -1. Each argument
//! is a `Date32`, a `Date64`, a `Timestamp` of any unit with or without a
//! time zone, or an ISO 8601 string (`'2024-01-31'`, `'2024-01-31T12:00:00Z'`).
//! A date is midnight UTC, a timestamp without a time zone is read as UTC,
//! and a zoned timestamp is its instant, so the result is elapsed time, not
//! a count of local calendar days across a DST change. A null gives null; a
//! string that is not a date is an error naming it.
//!
//! Calendar parts (year, month, day of week, hour, …) are DataFusion's
//! built-in `date_part` / `extract`; this function adds only the difference.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, PrimitiveArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_datafusion_err, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::args::is_text;

const NAME: &str = "days_since";
const MICROS_PER_DAY: i128 = 86_400_000_000;

/// The `days_since` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DaysSinceFunc {
    signature: Signature,
}

impl Default for DaysSinceFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl DaysSinceFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn coerce_time(argument: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) | DataType::Null => {
            Ok(t.clone())
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(t.clone()),
        t if is_text(t) => Ok(DataType::Utf8),
        other => plan_err!(
            "{NAME}: argument '{argument}' must be a date, a timestamp or an ISO date string, got {other}"
        ),
    }
}

/// An argument as UTC microseconds.
enum Micros {
    Scalar(Option<i64>),
    Array(PrimitiveArray<TimestampMicrosecondType>),
}

impl Micros {
    fn get(&self, row: usize) -> Option<i64> {
        match self {
            Micros::Scalar(v) => *v,
            Micros::Array(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

fn to_micros(argument: &str, value: &ColumnarValue) -> Result<Micros> {
    let (array, scalar) = match value {
        ColumnarValue::Array(a) => (Arc::clone(a), false),
        ColumnarValue::Scalar(s) => (s.to_array_of_size(1)?, true),
    };
    let target = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = cast_with_options(&array, &target, &options).map_err(|e| {
        exec_datafusion_err!("{NAME}: argument '{argument}' cannot be read as a timestamp: {e}")
    })?;
    if cast.null_count() > array.null_count() {
        invalid_value(argument, &array, &cast)?;
    }
    let micros = cast.as_primitive::<TimestampMicrosecondType>().clone();
    Ok(if scalar {
        Micros::Scalar(micros.is_valid(0).then(|| micros.value(0)))
    } else {
        Micros::Array(micros)
    })
}

/// The error for the first value the cast turned into a null.
fn invalid_value(argument: &str, input: &ArrayRef, cast: &ArrayRef) -> Result<()> {
    for row in 0..input.len() {
        if input.is_valid(row) && cast.is_null(row) {
            let value = ScalarValue::try_from_array(input, row)?;
            return exec_err!(
                "{NAME}: argument '{argument}' is not an ISO date or timestamp (or is out of range): '{value}'"
            );
        }
    }
    Ok(())
}

/// `floor((reference - t) / 1 day)`.
fn whole_days(t: i64, reference: i64) -> i64 {
    // |difference| < 2^64 µs, about 5.8e5 years: the quotient fits easily.
    (i128::from(reference) - i128::from(t)).div_euclid(MICROS_PER_DAY) as i64
}

impl ScalarUDFImpl for DaysSinceFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t, reference] => Ok(vec![
                coerce_time("t", t)?,
                coerce_time("reference", reference)?,
            ]),
            _ => plan_err!(
                "{NAME}: expected (t, reference), got {} argument(s)",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [t, reference] = args.args.as_slice() else {
            return exec_err!(
                "{NAME}: expected (t, reference), got {} argument(s)",
                args.args.len()
            );
        };
        let (t, reference) = (to_micros("t", t)?, to_micros("reference", reference)?);
        if let (Micros::Scalar(t), Micros::Scalar(reference)) = (&t, &reference) {
            let days = t.zip(*reference).map(|(t, r)| whole_days(t, r));
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(days)));
        }
        let days: Int64Array = (0..args.number_rows)
            .map(|row| Some(whole_days(t.get(row)?, reference.get(row)?)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(days)))
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
                "Whole days from t to reference: floor((reference - t) / 86400 s), negative when \
                 t is later. Each argument is a date, a timestamp (any unit, with or without a time \
                 zone; without one it is read as UTC) or an ISO 8601 string. A null gives null. \
                 For calendar parts use date_part / extract.",
                "days_since(t, reference)",
            )
            .with_sql_example("SELECT days_since(signup_date, DATE '2024-06-30') AS cohort_age FROM customers")
            .with_argument("t", "Date, timestamp or ISO date string: the start.")
            .with_argument("reference", "Date, timestamp or ISO date string: the end.")
            .build()
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::{
        Date32Array, Date64Array, StringArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn invoke(t: ColumnarValue, reference: ColumnarValue, rows: usize) -> Result<ColumnarValue> {
        let args = vec![t, reference];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        DaysSinceFunc::new().invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("f", DataType::Int64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())))
    }

    fn days(got: ColumnarValue, rows: usize) -> Vec<Option<i64>> {
        got.to_array(rows)
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn dates_and_strings() {
        // 2024 is a leap year: 2024-01-01 to 2024-03-01 is 31 + 29 = 60 days.
        let t = ColumnarValue::Array(Arc::new(Date32Array::from(vec![
            Some(19723),
            None,
            Some(19784),
        ])));
        assert_eq!(
            days(invoke(t, text("2024-03-01"), 3).unwrap(), 3),
            vec![Some(60), None, Some(-1)]
        );
    }

    #[test]
    fn floors_partial_days() {
        let got = invoke(
            text("2024-01-01T00:00:01Z"),
            text("2024-01-02T00:00:00Z"),
            1,
        )
        .unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int64(Some(0)))),
            "{got:?}"
        );
        let got = invoke(text("2024-01-01T00:00:01"), text("2024-01-01"), 1).unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int64(Some(-1)))),
            "{got:?}"
        );
    }

    #[test]
    fn timestamps_of_any_unit_and_zone() {
        // 1_700_000_000 s is 2023-11-14T22:13:20Z; 2023-11-20 is 5 days and 1h46m40s later.
        let seconds = TimestampSecondArray::from(vec![1_700_000_000]).with_timezone("Europe/Paris");
        let nanos = TimestampNanosecondArray::from(vec![1_700_000_000_000_000_000]);
        let date64 = Date64Array::from(vec![1_700_438_400_000]); // 2023-11-20
        for t in [
            ColumnarValue::Array(Arc::new(seconds)),
            ColumnarValue::Array(Arc::new(nanos)),
        ] {
            let reference = ColumnarValue::Array(Arc::new(date64.clone()));
            assert_eq!(days(invoke(t, reference, 1).unwrap(), 1), vec![Some(5)]);
        }
    }

    #[test]
    fn null_scalar_gives_null() {
        let got = invoke(
            ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            text("2024-01-01"),
            1,
        )
        .unwrap();
        assert!(
            matches!(got, ColumnarValue::Scalar(ScalarValue::Int64(None))),
            "{got:?}"
        );
    }

    #[test]
    fn bad_string_names_the_argument_and_value() {
        let t = ColumnarValue::Array(Arc::new(StringArray::from(vec![
            Some("2024-01-01"),
            Some("last tuesday"),
        ])));
        let err = invoke(t, text("2024-01-05"), 2).unwrap_err().to_string();
        assert!(
            err.contains("days_since: argument 't'") && err.contains("last tuesday"),
            "{err}"
        );
    }

    #[test]
    fn numbers_are_rejected_at_planning() {
        let err = DaysSinceFunc::new()
            .coerce_types(&[DataType::Int64, DataType::Date32])
            .unwrap_err()
            .to_string();
        assert!(err.contains("days_since: argument 't'"), "{err}");
    }
}
