//! Data contracts: a table's schema, size, null fractions and row conditions.
//!
//! A contract runs as one aggregate query over the table (counts, non-null
//! counts and failing-row counts together), so checking a large table costs
//! one scan. Failures name the table, the column, what was expected and
//! what was found, and for a failed condition show one offending row.

use std::str::FromStr;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;

use super::error::{PipelineError, Result};
use super::spec::ExpectSpec;
use crate::sql::SqlRunner;
use crate::train::quote_ident;

/// What a passed contract measured, for the run history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContractReport {
    /// The table checked.
    pub table: String,
    /// Its row count.
    pub rows: u64,
}

/// Whether a column of type `found` meets the type a contract names.
pub fn type_matches(expected: &str, found: &DataType) -> std::result::Result<bool, String> {
    let is_string = matches!(
        found,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) || matches!(found, DataType::Dictionary(_, v) if v.is_string());
    let alias = expected.trim().to_ascii_lowercase();
    let by_alias = match alias.as_str() {
        "string" | "text" | "varchar" | "utf8" | "largeutf8" | "utf8view" => Some(is_string),
        "int" | "integer" | "int32" => Some(found == &DataType::Int32),
        "bigint" | "long" | "int64" => Some(found == &DataType::Int64),
        "double" | "float64" => Some(found == &DataType::Float64),
        "float" | "real" | "float32" => Some(found == &DataType::Float32),
        "bool" | "boolean" => Some(found == &DataType::Boolean),
        "date" | "date32" => Some(found == &DataType::Date32),
        "timestamp" => Some(matches!(found, DataType::Timestamp(_, _))),
        _ => None,
    };
    if let Some(ok) = by_alias {
        return Ok(ok);
    }
    let parsed = DataType::from_str(expected.trim()).map_err(|_| {
        format!("'{expected}' is not a type (write e.g. Int64, Float64, string, Boolean, Date32)")
    })?;
    Ok(&parsed == found)
}

/// Checks `table` against `expect`; `owner` (a step or table name) starts
/// every message.
pub async fn check(
    runner: &SqlRunner<'_>,
    owner: &str,
    table: &str,
    expect: &ExpectSpec,
) -> Result<ContractReport> {
    let ctx = runner.session();
    let fail = |message: String| PipelineError::Contract(format!("{owner}: {message}"));
    let df = ctx.table(table).await?;
    let schema = df.schema().inner().clone();
    let columns = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (column, expected) in &expect.columns {
        let field = schema.field_with_name(column).map_err(|_| {
            fail(format!(
                "table '{table}' has no column '{column}' (expected {expected}; columns: {})",
                columns()
            ))
        })?;
        if !type_matches(expected, field.data_type())
            .map_err(|e| fail(format!("column '{column}': {e}")))?
        {
            return Err(fail(format!(
                "column '{column}' of table '{table}' has type {}, expected {expected}",
                field.data_type()
            )));
        }
    }
    for column in expect.max_null_fraction.keys() {
        if schema.field_with_name(column).is_err() {
            return Err(fail(format!(
                "max_null_fraction names column '{column}', which table '{table}' does not have (columns: {})",
                columns()
            )));
        }
    }

    let mut selects = vec!["count(*)".to_string()];
    for column in expect.max_null_fraction.keys() {
        selects.push(format!("count({})", quote_ident(column)));
    }
    for condition in &expect.assert {
        selects.push(format!(
            "sum(CASE WHEN coalesce(({condition}), false) THEN 0 ELSE 1 END)"
        ));
    }
    let sql = format!("SELECT {} FROM {}", selects.join(", "), quote_ident(table));
    let batches = runner.query(&sql).await.map_err(|e| match e {
        crate::error::JobsError::Query(e) => fail(format!(
            "cannot evaluate the contract of table '{table}': {}",
            crate::error::describe_datafusion_error(&e)
        )),
        other => PipelineError::from(other),
    })?;
    let values: Vec<u64> = match batches.iter().find(|b| b.num_rows() > 0) {
        Some(batch) => (0..batch.num_columns())
            .map(|i| match ScalarValue::try_from_array(batch.column(i), 0) {
                Ok(ScalarValue::Int64(Some(v))) => v.max(0) as u64,
                _ => 0,
            })
            .collect(),
        None => vec![0; selects.len()],
    };
    let rows = values.first().copied().unwrap_or(0);
    if let Some(min) = expect.min_rows
        && rows < min
    {
        return Err(fail(format!(
            "table '{table}' has {rows} rows, expected at least {min}"
        )));
    }
    if let Some(max) = expect.max_rows
        && rows > max
    {
        return Err(fail(format!(
            "table '{table}' has {rows} rows, expected at most {max}"
        )));
    }
    for (i, (column, limit)) in expect.max_null_fraction.iter().enumerate() {
        let non_null = values.get(1 + i).copied().unwrap_or(0);
        let fraction = if rows == 0 {
            0.0
        } else {
            (rows - non_null) as f64 / rows as f64
        };
        if fraction > *limit {
            return Err(fail(format!(
                "column '{column}' of table '{table}' is {:.2}% null, expected at most {:.2}%",
                fraction * 100.0,
                limit * 100.0
            )));
        }
    }
    let offset = 1 + expect.max_null_fraction.len();
    for (i, condition) in expect.assert.iter().enumerate() {
        let failing = values.get(offset + i).copied().unwrap_or(0);
        if failing > 0 {
            let example = example_row(runner, table, condition)
                .await
                .unwrap_or_default();
            return Err(fail(format!(
                "{failing} of {rows} rows of table '{table}' fail `{condition}`{example}"
            )));
        }
    }
    Ok(ContractReport {
        table: table.to_string(),
        rows,
    })
}

/// `; e.g. auc=0.61` — one failing row, its first columns.
async fn example_row(runner: &SqlRunner<'_>, table: &str, condition: &str) -> Option<String> {
    let sql = format!(
        "SELECT * FROM {} WHERE NOT coalesce(({condition}), false) LIMIT 1",
        quote_ident(table)
    );
    let batches = runner.query(&sql).await.ok()?;
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let options = FormatOptions::default().with_null("null");
    let mut parts = Vec::new();
    for (i, field) in batch.schema().fields().iter().enumerate().take(8) {
        let formatter = ArrayFormatter::try_new(batch.column(i).as_ref(), &options).ok()?;
        parts.push(format!("{}={}", field.name(), formatter.value(0)));
    }
    Some(format!("; e.g. {}", parts.join(", ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn type_names_and_aliases() {
        assert!(type_matches("string", &DataType::Utf8View).unwrap());
        assert!(type_matches("Utf8", &DataType::Utf8View).unwrap());
        assert!(type_matches("Int64", &DataType::Int64).unwrap());
        assert!(!type_matches("Int64", &DataType::Int32).unwrap());
        assert!(type_matches("double", &DataType::Float64).unwrap());
        assert!(type_matches("Date32", &DataType::Date32).unwrap());
        assert!(
            type_matches(
                "timestamp",
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
            )
            .unwrap()
        );
        assert!(
            type_matches("Intt64", &DataType::Int64)
                .unwrap_err()
                .contains("'Intt64' is not a type")
        );
    }
}
