//! Scoring through SQL, embedded and on the two-executor cluster: every
//! fixture model scores its rows on executors and gives the library's numbers;
//! bad calls are planning errors naming the feature or the file.

// Test code: a failed expectation is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use ember_tests::Mode;
use ember_tests::scoring_fixtures::{
    Case, bit_equal, cases, close, column_f64, dir, numbered_input, read_parquet,
};
use ember_tests::sql::{connect, run_on_ember};
use rstest::rstest;

fn feature_list(case: &Case, schema_columns: &[String]) -> String {
    match &case.feature_names {
        Some(names) => names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
        None => schema_columns
            .iter()
            .filter(|c| c.starts_with('f'))
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn list_values(batches: &[RecordBatch], column: usize) -> Vec<Vec<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            let lists = b.column(column).as_list::<i32>().clone();
            (0..lists.len())
                .map(move |i| {
                    lists
                        .value(i)
                        .as_primitive::<Float64Type>()
                        .values()
                        .to_vec()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_scores_exactly_through_sql(#[case] mode: Mode) {
    let ember = connect(mode).await;
    let tables = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for case in cases() {
        let table = numbered_input(&case, tables.path());
        let columns: Vec<String> = read_parquet(&dir().join(&case.input))
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let features = feature_list(&case, &columns);
        let model = dir().join(&case.model);
        let model = model.display();
        let kind = if case.objective == "multi:softmax" {
            "predict_class"
        } else if case.num_outputs > 1 {
            "predict_proba"
        } else {
            "predict"
        };
        let sql = format!(
            "CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{table}/'; \
             SELECT row_id, predict_raw_scores('{model}', {features}) AS raw, {kind}('{model}', {features}) AS p \
             FROM {name} ORDER BY row_id",
            name = case.name,
            table = table.display(),
        );
        let results = run_on_ember(&ember, &sql)
            .await
            .unwrap_or_else(|e| panic!("{} ({mode:?}): {e}", case.name));
        let batches = &results[0];
        let expected = read_parquet(&dir().join(&case.expected));
        let raw = list_values(batches, 1);
        for class in 0..case.num_outputs {
            for (row, want) in column_f64(&expected, &format!("raw_{class}"))
                .iter()
                .enumerate()
            {
                let got = raw[row][class];
                if !bit_equal(got, want.unwrap_or(f64::NAN)) {
                    failures.push(format!(
                        "{} raw_{class} row {row}: {got:e} vs {want:?}",
                        case.name
                    ));
                }
            }
        }
        let predictions: Vec<Vec<f64>> = match kind {
            "predict_class" => batches
                .iter()
                .flat_map(|b| {
                    b.column(2)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .map(|c| vec![*c as f64])
                        .collect::<Vec<_>>()
                })
                .collect(),
            "predict_proba" => list_values(batches, 2),
            _ => batches
                .iter()
                .flat_map(|b| {
                    b.column(2)
                        .as_primitive::<Float64Type>()
                        .values()
                        .iter()
                        .map(|p| vec![*p])
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        for class in 0..case.pred_columns {
            for (row, want) in column_f64(&expected, &format!("pred_{class}"))
                .iter()
                .enumerate()
            {
                let got = predictions[row][class];
                if !close(got, want.unwrap_or(f64::NAN)) {
                    failures.push(format!(
                        "{} pred_{class} row {row}: {got:e} vs {want:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{mode:?}: {} mismatches; first 20:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A binary XGBoost case with feature names, used for the error tests.
fn named_binary_case() -> Case {
    cases()
        .into_iter()
        .find(|c| {
            c.library == "xgboost" && c.objective == "binary:logistic" && c.feature_names.is_some()
        })
        .expect("a named binary:logistic XGBoost fixture")
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_model_name_scores_on_executors(#[case] mode: Mode) {
    let case = named_binary_case();
    let tables = tempfile::tempdir().expect("temp dir");
    let table = numbered_input(&case, tables.path());
    let names = case.feature_names.clone().unwrap_or_default();
    // Features passed in reverse order and through named_struct: matching is by name.
    let features = names
        .iter()
        .rev()
        .map(|n| format!("'{n}', \"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let ember = connect(mode).await;
    let sql = format!(
        "SET ember.models.churn = '{model}'; \
         CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{table}/'; \
         SELECT predict('churn', named_struct({features})) AS p FROM t ORDER BY row_id",
        model = dir().join(&case.model).display(),
        table = table.display(),
    );
    let results = run_on_ember(&ember, &sql).await.expect("scoring by name");
    let got: Vec<f64> = results[0]
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    let want = column_f64(&read_parquet(&dir().join(&case.expected)), "pred_0");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(close(*g, w.unwrap_or(f64::NAN)), "{g} vs {w:?}");
    }
}

async fn planning_error(mode: Mode, sql: &str) -> String {
    let ember = connect(mode).await;
    match run_on_ember(&ember, sql).await {
        Ok(_) => panic!("expected an error from: {sql}"),
        Err(e) => e,
    }
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scoring_calls_are_planning_errors_naming_the_problem(#[case] mode: Mode) {
    let case = named_binary_case();
    let tables = tempfile::tempdir().expect("temp dir");
    let table = numbered_input(&case, tables.path());
    let names = case.feature_names.clone().unwrap_or_default();
    let model = dir().join(&case.model).display().to_string();
    let create = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/'",
        table.display()
    );
    let all = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let but_first = names[1..]
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");

    let missing = planning_error(
        mode,
        &format!("{create}; SELECT predict('{model}', {but_first}) FROM t"),
    )
    .await;
    assert!(
        missing.contains(&format!("expects feature '{}'", names[0])),
        "{missing}"
    );

    let surplus = planning_error(
        mode,
        &format!("{create}; SELECT predict('{model}', {all}, row_id) FROM t"),
    )
    .await;
    assert!(surplus.contains("'row_id' is not a feature"), "{surplus}");

    let with_text = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if i == 0 {
                format!("'{n}', 'x'")
            } else {
                format!("'{n}', \"{n}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let text = planning_error(
        mode,
        &format!("{create}; SELECT predict('{model}', named_struct({with_text})) FROM t"),
    )
    .await;
    assert!(
        text.contains(&format!("feature '{}'", names[0])) && text.contains("numeric"),
        "{text}"
    );

    let unnamed = planning_error(
        mode,
        &format!("{create}; SELECT predict('{model}', {all}, 1.0) FROM t"),
    )
    .await;
    assert!(unnamed.contains("has no name"), "{unnamed}");

    let unknown = planning_error(
        mode,
        &format!("{create}; SELECT predict('nosuchmodel', {all}) FROM t"),
    )
    .await;
    assert!(
        unknown.contains("SET ember.models.nosuchmodel"),
        "{unknown}"
    );

    let missing_file = planning_error(
        mode,
        &format!("{create}; SELECT predict('/no/such/model.json', {all}) FROM t"),
    )
    .await;
    assert!(
        missing_file.contains("/no/such/model.json"),
        "{missing_file}"
    );

    let corrupt = dir().join("corrupt/truncated.json").display().to_string();
    let broken = planning_error(
        mode,
        &format!("{create}; SELECT predict('{corrupt}', {all}) FROM t"),
    )
    .await;
    assert!(
        broken.contains("truncated.json") && broken.contains("malformed"),
        "{broken}"
    );
}
