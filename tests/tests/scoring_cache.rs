//! A model is parsed once per process, not once per batch or task: scoring
//! many batches over several partitions, twice, parses the model file once
//! (embedded, the client and the executor share this process and its cache).
//! And a model file replaced after planning is refused, not mixed into a job.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use ember_tests::Mode;
use ember_tests::scoring_fixtures::{cases, dir};
use ember_tests::sql::{connect, row_count, run_on_ember};
use ember_udfs::scoring::model_cache;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_parsed_once_per_process() {
    let case = cases()
        .into_iter()
        .find(|c| {
            c.library == "lightgbm"
                && c.objective.starts_with("regression")
                && c.feature_names.is_some()
        })
        .expect("a named LightGBM regression fixture");
    let names = case.feature_names.clone().unwrap_or_default();
    let work = tempfile::tempdir().expect("temp dir");
    let model = work.path().join("model.txt");
    std::fs::copy(dir().join(&case.model), &model).expect("copy model");

    // 4 files × 2,000 rows, scored in batches of 100: 80 batches.
    let table = work.path().join("rows");
    std::fs::create_dir_all(&table).expect("dir");
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Float64, true))
            .collect::<Vec<_>>(),
    ));
    for file in 0..4 {
        let columns = names
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Arc::new(Float64Array::from_iter_values(
                    (0..2000).map(|r| ((r * (i + 3) + file) % 97) as f64 / 7.0),
                )) as _
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
        ember_tests::data::write_parquet(&table.join(format!("part-{file}.parquet")), &batch);
    }
    let features = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let setup = format!(
        "SET datafusion.execution.batch_size = 100; \
         CREATE EXTERNAL TABLE rows STORED AS PARQUET LOCATION '{}/'",
        table.display()
    );
    let sql = format!(
        "SELECT predict('{}', {features}) FROM rows",
        model.display()
    );
    let ember = connect(Mode::Embedded).await;
    run_on_ember(&ember, &setup).await.expect("setup");
    let before = model_cache::parse_count();
    for _ in 0..2 {
        let results = run_on_ember(&ember, &sql).await.expect("score");
        assert_eq!(row_count(&results[0]), 8000);
    }
    assert_eq!(
        model_cache::parse_count() - before,
        1,
        "the model should be parsed exactly once"
    );

    // Replacing the file changes its content identity: the next query plans with
    // the new content and parses it once more.
    let mut text = std::fs::read_to_string(&model).expect("read model");
    text.push('\n');
    std::fs::write(&model, text).expect("rewrite model");
    run_on_ember(&ember, &sql)
        .await
        .expect("score the new file");
    assert_eq!(model_cache::parse_count() - before, 2);
}
