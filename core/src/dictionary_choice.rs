//! Which columns of a Parquet write are worth a dictionary, judged from the
//! first rows each writer sees.
//!
//! parquet-rs dictionary-encodes every column of a row group until the
//! column's dictionary outgrows its page limit (1 MiB by default), then falls
//! back to plain encoding for the rest of the row group, and starts over with
//! the next one. For a column of (nearly) distinct values — a continuous
//! feature, a score, an id — that is every value hashed and interned, and the
//! dictionary then thrown away. In a 10-million-row scoring job writing 21
//! such columns it cost a quarter of the job's time (14.7 s with dictionaries
//! off against 19.6 s, `ember sql` COPY on 2 cores). Spark's Parquet writer
//! does not pay it: parquet-mr gives up on a dictionary after the first page
//! when the dictionary does not make the data smaller.
//!
//! Ember decides per column from the writer's first batch: when at least
//! [`MIN_SAMPLE`] non-null values are there and they repeat no more than
//! values drawn from a column of 2^18 distinct values would (at most 128
//! repeats among 8,192 values, 2 among 1,024), the column is written without
//! a dictionary. A cardinality that high overflows the 1 MiB dictionary page
//! anyway (at 4 bytes a value; at 8 bytes half of it does), so a column that
//! a dictionary would shrink keeps it: a label, a category, a rounded price,
//! a date. The first batch stands for the whole partition, which holds unless
//! the input is ordered so that its first rows are distinct and later rows
//! repeat them; such a column is written plain, larger than it could be, and
//! still correct. A column the user configured
//! (`dictionary_enabled::col`), nested columns, Arrow dictionary columns and
//! booleans (never dictionary-encoded) are left alone, and nothing changes
//! when dictionaries are off for the whole write.
//! `SET ember.write.adaptive_dictionary = false` turns the choice off.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::hash_utils::{RandomState, create_hashes};

/// Fewer non-null values than this say nothing about a column: it keeps its
/// dictionary.
pub const MIN_SAMPLE: usize = 1024;

/// The most rows of the first batch that are looked at.
pub const MAX_SAMPLE: usize = 8192;

/// `options` with dictionary encoding turned off for each column of `sample`
/// whose values are nearly all distinct (see the module docs), or `None` when
/// no column changes.
pub fn without_futile_dictionaries(
    options: &TableParquetOptions,
    sample: &RecordBatch,
) -> Option<TableParquetOptions> {
    if options.global.dictionary_enabled == Some(false) {
        return None;
    }
    let mut chosen = options.clone();
    let mut changed = false;
    for (field, column) in sample.schema().fields().iter().zip(sample.columns()) {
        let name = field.name();
        let configured = options
            .column_specific_options
            .get(name)
            .is_some_and(|c| c.dictionary_enabled.is_some());
        // DataFusion splits column option keys on '.', so such a name cannot be addressed.
        if configured || name.contains('.') || !may_use_a_dictionary(field.data_type()) {
            continue;
        }
        if nearly_all_distinct(column.as_ref()) {
            chosen
                .column_specific_options
                .entry(name.clone())
                .or_default()
                .dictionary_enabled = Some(false);
            changed = true;
        }
    }
    changed.then_some(chosen)
}

/// Whether parquet-rs may dictionary-encode a top-level column of this type.
fn may_use_a_dictionary(data_type: &DataType) -> bool {
    !(data_type.is_nested()
        || matches!(
            data_type,
            DataType::Boolean | DataType::Null | DataType::Dictionary(_, _)
        ))
}

/// The cardinality above which a column is not worth a dictionary: 2^18
/// values fill parquet-rs's 1 MiB dictionary page at 4 bytes a value (and
/// twice over at 8), so such a dictionary is abandoned in every row group.
const FUTILE_CARDINALITY: usize = 1 << 18;

/// The duplicates `values` draws from a column of [`FUTILE_CARDINALITY`]
/// evenly used values are expected to hold (the birthday bound,
/// `n^2 / 2C`): fewer duplicates than this in the sample mean a larger
/// cardinality. 128 for a full sample of 8,192 values (63/64 distinct), 2 for
/// 1,024.
fn duplicates_at_futile_cardinality(values: usize) -> usize {
    values * values / (2 * FUTILE_CARDINALITY)
}

/// Whether at least [`MIN_SAMPLE`] of the first [`MAX_SAMPLE`] values are
/// non-null and they hold no more duplicates than a column of
/// [`FUTILE_CARDINALITY`] values would.
fn nearly_all_distinct(column: &dyn Array) -> bool {
    let rows = column.len().min(MAX_SAMPLE);
    let values = rows - column.slice(0, rows).null_count();
    if values < MIN_SAMPLE {
        return false;
    }
    let sample = column.slice(0, rows);
    let mut hashes = vec![0u64; rows];
    // A type the hasher does not know is left with its dictionary.
    if create_hashes([&sample], &RandomState::with_seed(0), &mut hashes).is_err() {
        return false;
    }
    let distinct: HashSet<u64> = hashes
        .iter()
        .enumerate()
        .filter(|(row, _)| sample.is_valid(*row))
        .map(|(_, hash)| *hash)
        .collect();
    values - distinct.len() <= duplicates_at_futile_cardinality(values)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::common::config::ParquetColumnOptions;

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let arrays = columns.into_iter().map(|(_, a)| a).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn dictionary_off(options: &TableParquetOptions) -> Vec<String> {
        let mut off: Vec<String> = options
            .column_specific_options
            .iter()
            .filter(|(_, c)| c.dictionary_enabled == Some(false))
            .map(|(name, _)| name.clone())
            .collect();
        off.sort();
        off
    }

    /// Distinct floats: i * 0.37 for each row.
    fn continuous(rows: usize) -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|i| i as f64 * 0.37),
        ))
    }

    #[test]
    fn distinct_columns_lose_the_dictionary_repeated_ones_keep_it() {
        let rows = 8192;
        let sample = batch(vec![
            ("score", continuous(rows)),
            ("id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
            (
                "label",
                Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| (i % 2) as f64),
                )),
            ),
            // 4,000 values over 8,192 rows: a dictionary of 32 kB shrinks the column.
            (
                "price",
                Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| (i % 4000) as f64 / 100.0),
                )),
            ),
            (
                "name",
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("user-{i}")),
                )),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 3 == 0)))),
            ),
        ]);
        let chosen = without_futile_dictionaries(&TableParquetOptions::default(), &sample).unwrap();
        assert_eq!(dictionary_off(&chosen), ["id", "name", "score"]);
    }

    #[test]
    fn a_column_with_one_repeat_too_many_keeps_its_dictionary() {
        // 128 repeats are allowed among 8,192 values (8,064 distinct), 2 among 1,024.
        for (rows, allowed) in [(8192, 128), (1024, 2)] {
            let with_repeats = |repeats: usize| -> ArrayRef {
                let distinct = rows - repeats;
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|i| (i % distinct) as i64),
                ))
            };
            let sample = batch(vec![
                ("at", with_repeats(allowed)),
                ("over", with_repeats(allowed + 1)),
            ]);
            let chosen =
                without_futile_dictionaries(&TableParquetOptions::default(), &sample).unwrap();
            assert_eq!(dictionary_off(&chosen), ["at"], "{rows} rows");
        }
    }

    #[test]
    fn nulls_are_not_values_and_small_samples_decide_nothing() {
        let rows = 4096;
        // 1,023 distinct values among nulls: too few to judge.
        let sparse: ArrayRef = Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 4 == 0 && i < 4092).then_some(i as f64)),
        ));
        // Nulls every other row, the values distinct: judged on the 2,048 values.
        let half_null: ArrayRef = Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 2 == 0).then_some(i as f64)),
        ));
        let sample = batch(vec![("sparse", sparse), ("half_null", half_null)]);
        let chosen = without_futile_dictionaries(&TableParquetOptions::default(), &sample).unwrap();
        assert_eq!(dictionary_off(&chosen), ["half_null"]);
        let tiny = batch(vec![("score", continuous(MIN_SAMPLE - 1))]);
        assert!(without_futile_dictionaries(&TableParquetOptions::default(), &tiny).is_none());
    }

    #[test]
    fn the_users_choices_stand() {
        let sample = batch(vec![("score", continuous(8192)), ("id", continuous(8192))]);
        let mut options = TableParquetOptions::default();
        options.column_specific_options.insert(
            "score".to_string(),
            ParquetColumnOptions {
                dictionary_enabled: Some(true),
                compression: Some("zstd(3)".to_string()),
                ..Default::default()
            },
        );
        options.column_specific_options.insert(
            "id".to_string(),
            ParquetColumnOptions {
                compression: Some("lz4".to_string()),
                ..Default::default()
            },
        );
        let chosen = without_futile_dictionaries(&options, &sample).unwrap();
        assert_eq!(dictionary_off(&chosen), ["id"]);
        let id = &chosen.column_specific_options["id"];
        assert_eq!(id.compression.as_deref(), Some("lz4"));
        assert_eq!(
            chosen.column_specific_options["score"].dictionary_enabled,
            Some(true)
        );

        options.global.dictionary_enabled = Some(false);
        assert!(without_futile_dictionaries(&options, &sample).is_none());
    }
}
