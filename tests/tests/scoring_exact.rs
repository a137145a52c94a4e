//! Ember's evaluators against the libraries that trained the models: every
//! fixture case's raw scores must equal XGBoost's margins / LightGBM's raw
//! scores bit for bit, and transformed predictions must be within 1e-6.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array};
use arrow::datatypes::{DataType, Float64Type};
use ember_tests::scoring_fixtures::{Case, bit_equal, cases, close, column_f64, dir, read_parquet};
use ember_udfs::scoring::OutputKind;
use ember_udfs::scoring::model::Model;

fn load(case: &Case) -> Model {
    let path = dir().join(&case.model);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Model::from_bytes(&case.model, &bytes).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// The case's input columns in model order, as `Float64`.
fn features(case: &Case, model: &Model) -> Vec<Arc<Float64Array>> {
    let input = read_parquet(&dir().join(&case.input));
    let names: Vec<String> = match &model.feature_names {
        Some(names) => names.clone(),
        None => (0..model.num_features).map(|i| format!("f{i}")).collect(),
    };
    names
        .iter()
        .map(|n| {
            let column = input
                .column_by_name(n)
                .unwrap_or_else(|| panic!("{}: input has no column '{n}'", case.name));
            let column = arrow::compute::cast(column, &DataType::Float64).expect("cast");
            Arc::new(column.as_primitive::<Float64Type>().clone())
        })
        .collect()
}

#[test]
fn every_fixture_scores_exactly_like_its_library() {
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "expected the full fixture set, found {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let model = load(case);
        assert_eq!(
            model.num_outputs, case.num_outputs,
            "{}: outputs",
            case.name
        );
        let columns = features(case, &model);
        let refs: Vec<&Float64Array> = columns.iter().map(|c| c.as_ref()).collect();
        let expected = read_parquet(&dir().join(&case.expected));
        let raw = model.raw_scores(&refs).expect("scores");
        let k = model.num_outputs;
        for class in 0..k {
            let want = column_f64(&expected, &format!("raw_{class}"));
            for (row, want) in want.iter().enumerate() {
                let got = raw.values[row * k + class];
                if !bit_equal(got, want.unwrap_or(f64::NAN)) {
                    failures.push(format!(
                        "{} raw_{class} row {row}: ember {got:e}, library {want:?}",
                        case.name
                    ));
                }
            }
        }
        // Transformed predictions: the class index for multi:softmax, the
        // probabilities / values otherwise.
        if case.objective == "multi:softmax" {
            let classes = OutputKind::Class
                .build(&model, model.raw_scores(&refs).expect("scores"))
                .expect("classes");
            let classes = classes.as_primitive::<arrow::datatypes::Int64Type>();
            for (row, want) in column_f64(&expected, "pred_0").iter().enumerate() {
                if Some(classes.value(row) as f64) != *want {
                    failures.push(format!(
                        "{} class row {row}: ember {}, library {want:?}",
                        case.name,
                        classes.value(row)
                    ));
                }
            }
            continue;
        }
        let mut predictions = model.raw_scores(&refs).expect("scores");
        model.transform(&mut predictions);
        for class in 0..case.pred_columns {
            for (row, want) in column_f64(&expected, &format!("pred_{class}"))
                .iter()
                .enumerate()
            {
                let got = predictions.values[row * k + class];
                if !close(got, want.unwrap_or(f64::NAN)) {
                    failures.push(format!(
                        "{} pred_{class} row {row}: ember {got:e}, library {want:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches; first 20:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_case_checks_raw_scores_and_rows_with_missing_values() {
    for case in cases() {
        let input = read_parquet(&dir().join(&case.input));
        let has_null = input.columns().iter().any(|c| c.null_count() > 0);
        assert!(has_null, "{}: the input should contain nulls", case.name);
    }
}
