//! Test data: TPC-H generated once per build directory, and small tables.

use std::path::PathBuf;

use ember_benchmarks::tpch::generate_cached;

/// A directory kept between test runs: `target/<profile>/ember-test-data`.
pub fn cache_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|p| p.join("ember-test-data")))
        .unwrap_or_else(|| std::env::temp_dir().join("ember-test-data"))
}

/// TPC-H at `scale_factor` in `files` Parquet files per table, generated on
/// first use (with `tpchgen`) and reused afterwards.
pub fn tpch(scale_factor: f64, files: usize) -> PathBuf {
    let dir = cache_dir().join(format!("tpch-sf{scale_factor}-files{files}"));
    match generate_cached(scale_factor, &dir, files) {
        Ok(dir) => dir,
        Err(e) => panic!("cannot generate TPC-H data in {}: {e}", dir.display()),
    }
}

/// `CREATE EXTERNAL TABLE` statements for the TPC-H tables under `dir`.
pub fn tpch_ddl(dir: &std::path::Path) -> String {
    ember_benchmarks::tpch::TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';",
                dir.join(t).display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `batch` as one Parquet file at `path`.
pub fn write_parquet(path: &std::path::Path, batch: &arrow::array::RecordBatch) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("parquet writer");
    writer.write(batch).expect("write parquet");
    writer.close().expect("close parquet");
}

/// A table `nums(n BIGINT, s VARCHAR)` of n = 1..=300 and s = 's<n>', in
/// three Parquet files under `dir/nums`; returns its `CREATE EXTERNAL TABLE`.
pub fn nums_table(dir: &std::path::Path) -> String {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let path = dir.join("nums");
    std::fs::create_dir_all(&path).expect("nums dir");
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    for part in 0..3_i64 {
        let n: Vec<i64> = (part * 100 + 1..=part * 100 + 100).collect();
        let s: Vec<String> = n.iter().map(|v| format!("s{v}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(n)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .expect("batch");
        write_parquet(&path.join(format!("part-{part}.parquet")), &batch);
    }
    format!(
        "CREATE EXTERNAL TABLE nums STORED AS PARQUET LOCATION '{}/';",
        path.display()
    )
}
