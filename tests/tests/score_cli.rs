//! `ember score` as a user runs it, embedded and on the two-executor cluster:
//! the output keeps every input column and appends the library's predictions;
//! bad input is one clear line and leaves existing output untouched.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use ember_tests::Mode;
use ember_tests::command::{ember, stderr};
use ember_tests::scoring_fixtures::{
    Case, cases, close, column_f64, dir, numbered_input, read_parquet,
};
use rstest::rstest;

fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no fixture '{name}'"))
}

/// Every Parquet file under `path` (a file or a directory), as one batch.
fn read_output(path: &std::path::Path) -> RecordBatch {
    if path.is_file() {
        return read_parquet(path);
    }
    let mut batches = Vec::new();
    for entry in std::fs::read_dir(path).expect("output dir") {
        let file = entry.expect("entry").path();
        if file.extension().is_some_and(|e| e == "parquet") {
            batches.push(read_parquet(&file));
        }
    }
    let schema = batches.first().expect("output files").schema();
    arrow::compute::concat_batches(&schema, &batches).expect("concat")
}

/// Asserts `output` has the input's columns plus `appended`, and the expected
/// predictions by row id.
fn check_scored(case: &Case, output: &std::path::Path, appended: &[&str]) {
    let scored = read_output(output);
    let input = read_parquet(&dir().join(&case.input));
    let mut names: Vec<String> = input
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    names.push("row_id".to_string());
    names.extend(appended.iter().map(|s| s.to_string()));
    let got: Vec<String> = scored
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(got, names);
    let ids = scored
        .column_by_name("row_id")
        .expect("row_id")
        .as_primitive::<Int64Type>()
        .clone();
    let expected = read_parquet(&dir().join(&case.expected));
    for (k, column) in appended.iter().enumerate() {
        let want = column_f64(&expected, &format!("pred_{k}"));
        let values = scored
            .column_by_name(column)
            .expect("prediction")
            .as_primitive::<Float64Type>()
            .clone();
        let by_id: HashMap<i64, f64> = (0..values.len())
            .map(|i| (ids.value(i), values.value(i)))
            .collect();
        assert_eq!(by_id.len(), want.len(), "every row scored once");
        for (row, w) in want.iter().enumerate() {
            let g = by_id[&(row as i64)];
            assert!(
                close(g, w.unwrap_or(f64::NAN)),
                "{} row {row}: {g} vs {w:?}",
                case.name
            );
        }
    }
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn score_appends_the_prediction_to_every_row(#[case] mode: Mode) {
    let work = tempfile::tempdir().expect("dir");
    let case = case("xgb_binary_logistic");
    let input = numbered_input(&case, work.path());
    let output = work.path().join("scored");
    let model = dir().join(&case.model);
    let o = ember(
        mode,
        &[
            "score",
            "--model",
            &model.display().to_string(),
            "--input",
            &input.display().to_string(),
            "--output",
            &output.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scored"), "{}", stderr(&o));
    check_scored(&case, &output, &["prediction"]);
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn a_multiclass_model_appends_one_column_per_class(#[case] mode: Mode) {
    let work = tempfile::tempdir().expect("dir");
    let case = case("lgb_multiclass");
    let input = numbered_input(&case, work.path());
    let output = work.path().join("scored.parquet");
    let model = dir().join(&case.model);
    let o = ember(
        mode,
        &[
            "score",
            "--model",
            &model.display().to_string(),
            "--input",
            &input.display().to_string(),
            "--output",
            &output.display().to_string(),
            "--prediction-column",
            "p",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    check_scored(&case, &output, &["p_0", "p_1", "p_2"]);
}

#[test]
fn a_model_without_feature_names_takes_features_from_the_flag() {
    let work = tempfile::tempdir().expect("dir");
    let case = case("lgb_regression_l1");
    assert!(case.feature_names.is_none());
    let input = numbered_input(&case, work.path());
    let model = dir().join(&case.model).display().to_string();
    let output = work.path().join("scored");
    let args = [
        "score",
        "--model",
        &model,
        "--input",
        &input.display().to_string(),
        "--output",
        &output.display().to_string(),
    ];
    let o = ember(Mode::Embedded, &args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--features"), "{}", stderr(&o));
    let input_columns = read_parquet(&dir().join(&case.input));
    let features: Vec<String> = input_columns
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut with_features = args.to_vec();
    let list = features.join(",");
    with_features.extend(["--features", &list]);
    let o = ember(Mode::Embedded, &with_features);
    assert!(o.status.success(), "{}", stderr(&o));
    check_scored(&case, &output, &["prediction"]);
}

#[test]
fn bad_input_is_one_line_and_leaves_existing_output_alone() {
    let work = tempfile::tempdir().expect("dir");
    let case = case("xgb_binary_logistic");
    let input = numbered_input(&case, work.path()).display().to_string();
    let output = work.path().join("previous.parquet");
    std::fs::write(&output, b"previous result").expect("previous output");
    let out = output.display().to_string();
    let corrupt = dir().join("corrupt/truncated.json").display().to_string();
    let model = dir().join(&case.model).display().to_string();
    for (args, needle) in [
        (
            vec![
                "score", "--model", &corrupt, "--input", &input, "--output", &out,
            ],
            "truncated.json",
        ),
        (
            vec![
                "score",
                "--model",
                "/no/such/model.json",
                "--input",
                &input,
                "--output",
                &out,
            ],
            "/no/such/model.json",
        ),
        (
            vec![
                "score",
                "--model",
                &model,
                "--input",
                "/no/such/input",
                "--output",
                &out,
            ],
            "/no/such/input",
        ),
        (
            vec![
                "score",
                "--model",
                &model,
                "--input",
                &input,
                "--output",
                &out,
                "--prediction-column",
                "row_id",
            ],
            "already has a column 'row_id'",
        ),
    ] {
        let o = ember(Mode::Embedded, &args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{needle}: {err}"
        );
        assert_eq!(
            std::fs::read(&output).expect("still there"),
            b"previous result"
        );
    }
}
