//! Comparing two engines' answers to the same query.
//!
//! Cells compare exactly, except floating-point ones, which compare within a
//! relative tolerance (distributed aggregation sums in another order). Rows
//! compare in order when the query orders its result, and as multisets
//! otherwise.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Relative tolerance for floating-point cells.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// One cell, as compared.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Float(f64),
    Exact(String),
}

impl Cell {
    fn matches(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Float(a), Cell::Float(b)) => floats_match(*a, *b),
            (a, b) => a == b,
        }
    }

    /// A key to sort rows by before an unordered comparison: floats rounded
    /// well beyond the tolerance, so nearly equal rows sort alike.
    fn sort_key(&self) -> String {
        match self {
            Cell::Null => "\u{0}".to_string(),
            Cell::Float(f) => format!("{f:.6e}"),
            Cell::Exact(s) => s.clone(),
        }
    }
}

fn floats_match(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    let scale = a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
    (a - b).abs() / scale <= FLOAT_TOLERANCE
}

fn column_cells(array: &ArrayRef) -> Result<Vec<Cell>, String> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return Ok(Cell::Null);
            }
            Ok(match array.data_type() {
                DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(i)),
                DataType::Float32 => {
                    Cell::Float(f64::from(array.as_primitive::<Float32Type>().value(i)))
                }
                _ => Cell::Exact(
                    formatter
                        .value(i)
                        .try_to_string()
                        .map_err(|e| e.to_string())?,
                ),
            })
        })
        .collect()
}

fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<Cell>>, String> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(column_cells)
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(rows)
}

/// Compares `actual` with `expected`; `Err` describes the first difference.
pub fn compare_results(
    expected: &[RecordBatch],
    actual: &[RecordBatch],
    ordered: bool,
) -> Result<(), String> {
    let mut want = rows_of(expected)?;
    let mut got = rows_of(actual)?;
    if want.len() != got.len() {
        return Err(format!("expected {} rows, got {}", want.len(), got.len()));
    }
    let width = |rows: &[Vec<Cell>]| rows.first().map(Vec::len);
    if width(&want) != width(&got) {
        return Err(format!(
            "expected {:?} columns, got {:?}",
            width(&want),
            width(&got)
        ));
    }
    if !ordered {
        let key = |row: &Vec<Cell>| row.iter().map(Cell::sort_key).collect::<Vec<_>>();
        want.sort_by_key(key);
        got.sort_by_key(key);
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if let Some(c) = w.iter().zip(g).position(|(a, b)| !a.matches(b)) {
            return Err(format!(
                "row {i}, column {c}: expected {:?}, got {:?} (expected row {w:?}, got row {g:?})",
                w[c], g[c]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(ids: Vec<i64>, values: Vec<f64>, names: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Float64, false),
            Field::new("n", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Float64Array::from(values)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn floats_within_tolerance_match() {
        let a = batch(vec![1], vec![1.0e6], vec![Some("x")]);
        let b = batch(vec![1], vec![1.0e6 * (1.0 + 1e-12)], vec![Some("x")]);
        assert!(compare_results(std::slice::from_ref(&a), &[b], true).is_ok());
        let c = batch(vec![1], vec![1.0e6 * (1.0 + 1e-6)], vec![Some("x")]);
        assert!(compare_results(&[a], &[c], true).is_err());
    }

    #[test]
    fn integers_and_strings_are_exact() {
        let a = batch(vec![1, 2], vec![0.0, 0.0], vec![Some("x"), None]);
        let b = batch(vec![1, 3], vec![0.0, 0.0], vec![Some("x"), None]);
        assert!(compare_results(std::slice::from_ref(&a), &[b], true).is_err());
        let c = batch(vec![1, 2], vec![0.0, 0.0], vec![Some("x"), Some("")]);
        assert!(compare_results(&[a], &[c], true).is_err());
    }

    #[test]
    fn order_matters_only_when_asked() {
        let a = batch(vec![1, 2], vec![1.5, 2.5], vec![Some("x"), Some("y")]);
        let b = batch(vec![2, 1], vec![2.5, 1.5], vec![Some("y"), Some("x")]);
        assert!(compare_results(std::slice::from_ref(&a), std::slice::from_ref(&b), false).is_ok());
        assert!(compare_results(&[a], &[b], true).is_err());
    }

    #[test]
    fn row_counts_must_agree() {
        let a = batch(vec![1], vec![1.0], vec![None]);
        let err = compare_results(&[a], &[], false).unwrap_err();
        assert!(err.contains("expected 1 rows, got 0"), "{err}");
    }
}
