//! Ember's functions run where the data is: on executors, with the session's
//! `ember.*` options, in-process and across processes alike.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use ember_tests::Mode;
use ember_tests::sql::{connect, run_on_ember};
use rstest::rstest;

/// A Parquet table of words, so the function is evaluated on executors
/// (a constant argument would be folded while planning).
fn words_table() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = Arc::new(Schema::new(vec![Field::new("word", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec![
            Some("hello"),
            Some("subscribe"),
            None,
        ]))],
    )
    .expect("batch");
    ember_tests::data::write_parquet(&dir.path().join("words.parquet"), &batch);
    dir
}

fn buckets(results: &[Vec<RecordBatch>]) -> Vec<Option<i32>> {
    results
        .last()
        .expect("a result")
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_primitive::<Int32Type>().clone();
            (0..a.len()).map(move |i| (!arrow::array::Array::is_null(&a, i)).then(|| a.value(i)))
        })
        .collect()
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_hash_runs_on_executors_with_session_options(#[case] mode: Mode) {
    let data = words_table();
    let ember = connect(mode).await;
    let create = format!(
        "CREATE EXTERNAL TABLE words STORED AS PARQUET LOCATION '{}/'",
        data.path().display()
    );
    run_on_ember(&ember, &create).await.expect("create table");

    // scikit-learn's FeatureHasher(n_features=1024): hello -> 583, subscribe -> 1023.
    let explicit = run_on_ember(
        &ember,
        "SELECT feature_hash(word, 1024) FROM words ORDER BY word",
    )
    .await
    .expect("explicit bucket count");
    assert_eq!(buckets(&explicit), vec![Some(583), Some(1023), None]);

    // The one-argument form reads ember.features.hash_buckets on the executor:
    // with 16 buckets, hello -> 7 and subscribe -> 15 (2^20 would give 784967, 487423).
    let configured = run_on_ember(
        &ember,
        "SET ember.features.hash_buckets = 16; SELECT feature_hash(word) FROM words ORDER BY word",
    )
    .await
    .expect("configured bucket count");
    assert_eq!(buckets(&configured), vec![Some(7), Some(15), None]);
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_table_functions_run_distributed(#[case] mode: Mode) {
    let ember = connect(mode).await;
    let results = run_on_ember(
        &ember,
        "SELECT count(*) AS n, sum(value) AS total FROM generate_series(1, 1000) \
         UNION ALL SELECT count(*), sum(value) FROM range(1, 1000)",
    )
    .await
    .expect("series queries");
    let text = arrow::util::pretty::pretty_format_batches(&results[0])
        .unwrap()
        .to_string();
    assert!(
        text.contains("| 1000 | 500500 |") && text.contains("| 999  | 499500 |"),
        "{text}"
    );
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_functions_run_on_executors(#[case] mode: Mode) {
    // Executors must decode DataFusion's array and struct functions too.
    let data = words_table();
    let ember = connect(mode).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE words STORED AS PARQUET LOCATION '{}/'; \
         SELECT make_array(word, 'x')[1] AS first, named_struct('w', word)['w'] AS w \
         FROM words WHERE word IS NOT NULL ORDER BY word",
        data.path().display()
    );
    let results = run_on_ember(&ember, &sql).await.expect("nested functions");
    let text = arrow::util::pretty::pretty_format_batches(&results[0])
        .unwrap()
        .to_string();
    assert!(text.contains("| hello     | hello     |"), "{text}");
}
