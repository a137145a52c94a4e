//! Training functions against their reference libraries, in SQL, in process.
//!
//! Fixtures: `udfs/tests/fixtures/make_training_fixtures.py` (numpy,
//! scikit-learn and xgboost results committed next to the data). No Python is
//! needed here: coefficients are compared with the committed references, the
//! GBDT is retrained and compared with the committed model Ember trained, and
//! Ember's `predict` on that model is compared with xgboost's committed
//! predictions.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Float64Type};
use datafusion::prelude::SessionContext;
use ember_udfs::scoring::model::ember_linear::LinearModelFile;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/training")
}

fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

async fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(3),
    );
    for f in ember_udfs::all_scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in ember_udfs::all_aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    for name in ["regression", "classification", "gbdt_train", "gbdt_test"] {
        let path = fixtures().join(format!("{name}.parquet"));
        ctx.register_parquet(name, path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    ctx
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    df.collect().await.map_err(|e| e.to_string())
}

async fn one_text(ctx: &SessionContext, sql: &str) -> Result<String, String> {
    let batches = query(ctx, sql).await?;
    let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or("no rows")?;
    Ok(batch.column(0).as_string::<i32>().value(0).to_string())
}

fn f64s(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn assert_relative(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let error = (a - e).abs() / e.abs().max(1e-3);
        assert!(
            error <= tolerance,
            "{what}[{i}]: {a} vs {e} (relative error {error:e})"
        );
    }
}

#[tokio::test]
async fn linear_and_ridge_match_numpy_and_scikit_learn() {
    let ctx = context().await;
    let reference = expected("regression.expected.json");
    for (params, key) in [("", "least_squares"), (", 'l2=2.5'", "ridge_alpha_2_5")] {
        let text = one_text(
            &ctx,
            &format!("SELECT train_linear(y, x0, x1, x2, x3, x4{params}) FROM regression"),
        )
        .await
        .unwrap();
        let model: LinearModelFile = serde_json::from_str(&text).unwrap();
        assert_eq!(model.feature_names, vec!["x0", "x1", "x2", "x3", "x4"]);
        assert_relative(
            &model.coefficients,
            &f64s(&reference[key]["coefficients"]),
            1e-6,
            key,
        );
        assert_relative(
            &[model.intercept],
            &[reference[key]["intercept"].as_f64().unwrap()],
            1e-6,
            key,
        );
    }
}

#[tokio::test]
async fn logistic_matches_scikit_learn_newton_cholesky() {
    let ctx = context().await;
    let reference = expected("classification.expected.json");
    let text = one_text(
        &ctx,
        "SELECT train_logistic(y, x0, x1, x2, x3) FROM classification",
    )
    .await
    .unwrap();
    let model: LinearModelFile = serde_json::from_str(&text).unwrap();
    assert_eq!(model.objective, "binary:logistic");
    let mut actual = vec![model.intercept];
    actual.extend(&model.coefficients);
    let mut wanted = vec![reference["intercept"].as_f64().unwrap()];
    wanted.extend(f64s(&reference["coefficients"]));
    for (a, e) in actual.iter().zip(&wanted) {
        assert!((a - e).abs() <= 1e-5, "{actual:?} vs {wanted:?}");
    }
}

/// The committed model without the build's version stamp, every number
/// that is not an integer as the `f32` XGBoost reads from it (the committed
/// file has each `f32` in 17 digits, as Ember wrote models before it wrote
/// the shortest digits of the `f32`).
fn without_version(mut model: Value) -> Value {
    model["learner"]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("ember_version");
    as_f32_numbers(model)
}

fn as_f32_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            serde_json::json!(f64::from(n.as_f64().unwrap() as f32))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_f32_numbers).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, as_f32_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

#[tokio::test]
async fn gbdt_in_sql_trains_the_committed_model_bit_for_bit() {
    let ctx = context().await;
    let text = one_text(
        &ctx,
        "SELECT train_gbdt(y, f0, f1, f2, f3, f4, f5, f6, f7) FROM gbdt_train",
    )
    .await
    .unwrap();
    let trained: Value = serde_json::from_str(&text).unwrap();
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("gbdt_ember.json")).unwrap())
            .unwrap();
    // The committed file was written by `ember train` (the distributed
    // driver); the aggregate trains in memory. Same rows, same trees.
    assert!(
        without_version(trained) == without_version(committed),
        "train_gbdt differs from the committed gbdt_ember.json"
    );
}

/// Area under the ROC curve (ties get average ranks).
fn auc(labels: &[f64], scores: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = rank;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|y| **y == 1.0).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let rank_sum: f64 = labels
        .iter()
        .zip(&ranks)
        .filter(|(y, _)| **y == 1.0)
        .map(|(_, r)| r)
        .sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[tokio::test]
async fn gbdt_scores_like_xgboost_and_matches_its_auc() {
    let ctx = context().await;
    let model = fixtures().join("gbdt_ember.json");
    let batches = query(
        &ctx,
        &format!(
            "SELECT y, predict('{m}', f0, f1, f2, f3, f4, f5, f6, f7) AS p, predict_raw('{m}', f0, f1, f2, f3, f4, f5, f6, f7) AS r FROM gbdt_test",
            m = model.display()
        ),
    )
    .await
    .unwrap();
    let column = |i: usize| -> Vec<f64> {
        batches
            .iter()
            .flat_map(|b| b.column(i).as_primitive::<Float64Type>().values().to_vec())
            .collect()
    };
    let (labels, predictions, margins) = (column(0), column(1), column(2));

    let file =
        std::fs::File::open(fixtures().join("gbdt_ember.xgboost_predictions.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let xgb: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let xgb_column = |name: &str| -> Vec<f32> {
        xgb.iter()
            .flat_map(|b| {
                b.column_by_name(name)
                    .unwrap()
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    };
    let (xgb_pred, xgb_margin) = (xgb_column("pred"), xgb_column("margin"));
    assert_eq!(predictions.len(), xgb_pred.len());
    // Rows come back in file order (one file, one partition).
    let mismatches = predictions
        .iter()
        .zip(&xgb_pred)
        .zip(margins.iter().zip(&xgb_margin))
        .filter(|((p, xp), (m, xm))| (**p as f32) != **xp || (**m as f32) != **xm)
        .count();
    assert_eq!(
        mismatches, 0,
        "predictions differing from xgboost's on Ember's model"
    );

    let reference = expected("gbdt.expected.json");
    let xgboost_auc = reference["xgboost_hist_test_auc"].as_f64().unwrap();
    let ember_auc = auc(&labels, &predictions);
    assert!(
        (ember_auc - xgboost_auc).abs() <= 0.005,
        "held-out AUC {ember_auc} vs xgboost hist {xgboost_auc}"
    );
    assert!(ember_auc > 0.85, "{ember_auc}");
}

#[tokio::test]
async fn per_group_models_equal_models_of_each_group_alone() {
    let ctx = context().await;
    let segment = "CASE WHEN f1 < -0.5 THEN 'a' WHEN f1 < 0.5 THEN 'b' ELSE 'c' END";
    let params = "'{\"num_boost_round\": 10, \"max_depth\": 4}'";
    let grouped = query(
        &ctx,
        &format!("SELECT {segment} AS s, train_gbdt(y, f0, f2, f5, f6, {params}), train_linear(f6, f0, f3, f5) FROM gbdt_train GROUP BY 1 ORDER BY 1"),
    )
    .await
    .unwrap();
    let batch = &grouped[0];
    assert_eq!(batch.num_rows(), 3);
    for row in 0..3 {
        let s = batch.column(0).as_string::<i32>().value(row);
        let alone = query(
            &ctx,
            &format!("SELECT train_gbdt(y, f0, f2, f5, f6, {params}), train_linear(f6, f0, f3, f5) FROM gbdt_train WHERE {segment} = '{s}'"),
        )
        .await
        .unwrap();
        assert_eq!(
            batch.column(1).as_string::<i32>().value(row),
            alone[0].column(0).as_string::<i32>().value(0),
            "gbdt of group {s}"
        );
        let grouped_linear: LinearModelFile =
            serde_json::from_str(batch.column(2).as_string::<i32>().value(row)).unwrap();
        let alone_linear: LinearModelFile =
            serde_json::from_str(alone[0].column(1).as_string::<i32>().value(0)).unwrap();
        assert_relative(
            &grouped_linear.coefficients,
            &alone_linear.coefficients,
            1e-9,
            s,
        );
    }
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match query(ctx, sql).await {
        Ok(rows) => panic!("{sql} succeeded: {rows:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    let ctx = context().await;
    let cases = [
        (
            "SELECT train_gbdt(CAST(NULL AS DOUBLE), f0) FROM gbdt_train",
            "null in every row",
        ),
        (
            "SELECT train_linear(y, x0, x0 * 0 + 2) FROM regression",
            "constant or a linear combination",
        ),
        (
            "SELECT train_gbdt(y, f0) FROM gbdt_train WHERE f0 > 1000",
            "no rows to train on",
        ),
        (
            "SELECT train_gbdt(y, 'text') FROM gbdt_train",
            "must be numeric",
        ),
        (
            "SELECT train_gbdt(y, f0, CAST(f0 AS VARCHAR), f1) FROM gbdt_train",
            "feature argument 2 has type Utf8",
        ),
        (
            "SELECT train_gbdt(CASE WHEN f0 > 0 THEN 'NaN'::double ELSE y END, f1) FROM gbdt_train",
            "labels must be finite",
        ),
        (
            "SELECT train_gbdt(y, f0, 'max_depth=-1') FROM gbdt_train",
            "parameter 'max_depth'",
        ),
        (
            "SELECT train_gbdt(y, f0, '{\"objective\": \"rank:pairwise\"}') FROM gbdt_train",
            "parameter 'objective'",
        ),
        (
            "SELECT train_gbdt(y, f0, 'max_dpeth=3') FROM gbdt_train",
            "'max_dpeth' is unknown",
        ),
        (
            "SELECT train_gbdt(f6, f0, 'objective=binary:logistic') FROM gbdt_train",
            "needs 0/1 labels",
        ),
        (
            "SELECT train_logistic(f6, f0) FROM gbdt_train",
            "needs labels 0 or 1",
        ),
        (
            "SELECT train_logistic(y, f2) FROM gbdt_train",
            "feature 'f2'",
        ),
        ("SELECT train_linear(y, f2) FROM gbdt_train", "feature 'f2'"),
    ];
    for (sql, wanted) in cases {
        let error = error_of(&ctx, sql).await;
        assert!(
            error.contains(wanted),
            "{sql}\n  error: {error}\n  wanted: {wanted}"
        );
    }
    // A constant feature is not an error for trees: it is never split on.
    let text = one_text(
        &ctx,
        "SELECT train_gbdt(y, f0 * 0 + 1, f1, 'num_boost_round=3') FROM gbdt_train",
    )
    .await
    .unwrap();
    let model: Value = serde_json::from_str(&text).unwrap();
    let trees = model["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap();
    for tree in trees {
        let splits: Vec<i64> = tree["split_indices"]
            .as_array()
            .unwrap()
            .iter()
            .zip(tree["left_children"].as_array().unwrap())
            .filter(|(_, l)| l.as_i64() != Some(-1))
            .map(|(f, _)| f.as_i64().unwrap())
            .collect();
        assert!(
            !splits.is_empty() && splits.iter().all(|f| *f == 1),
            "{splits:?}"
        );
    }
}
