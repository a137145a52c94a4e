//! How `ember sql` prints results.
//!
//! * `table` (default): aligned text for people, one table per query.
//! * `csv`: for each query, a header line, then its rows.
//! * `json`: one JSON object per row (newline-delimited), for each query.
//!
//! Only query results go to stdout; statements that return nothing (DDL,
//! `SET`) print nothing, and writes and timings are reported on stderr, so
//! stdout can be piped straight into another tool.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use clap::ValueEnum;

use crate::error::{JobsError, Result};

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table.
    Table,
    /// CSV with a header line per query.
    Csv,
    /// Newline-delimited JSON objects.
    Json,
}

/// Writes one query's rows to `out` in `format`.
pub fn write_rows(
    out: &mut dyn Write,
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let table = if batches.iter().all(|b| b.num_rows() == 0) {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    schema.clone(),
                )])?
            } else {
                arrow::util::pretty::pretty_format_batches(batches)?
            };
            writeln!(out, "{table}").map_err(|e| JobsError::io("stdout", e))?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush().map_err(|e| JobsError::io("stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
            ],
        )
        .unwrap()
    }

    fn render(format: OutputFormat, batches: &[RecordBatch]) -> String {
        let mut out = Vec::new();
        write_rows(&mut out, format, &batch().schema(), batches).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_a_header_then_rows() {
        assert_eq!(
            render(OutputFormat::Csv, &[batch()]),
            "n,s\n1,\"a,b\"\n2,\n"
        );
    }

    #[test]
    fn csv_of_no_rows_is_just_the_header() {
        assert_eq!(render(OutputFormat::Csv, &[]), "n,s\n");
    }

    #[test]
    fn json_is_one_object_per_row() {
        assert_eq!(
            render(OutputFormat::Json, &[batch()]),
            "{\"n\":1,\"s\":\"a,b\"}\n{\"n\":2}\n"
        );
    }

    #[test]
    fn table_shows_headers_even_without_rows() {
        let text = render(OutputFormat::Table, &[]);
        assert!(text.contains("| n | s |"), "{text}");
    }
}
