//! Feature functions and metrics through SQL, in process, over tables split
//! into several partitions.
//!
//! Every expected value is worked out by hand in the comments (a calculator
//! suffices); none is copied from Ember's output. Each fit is applied with the
//! JSON it returned, the way a pipeline saves parameters and applies them.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampSecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

/// A session with Ember's functions and JSON operators, 3 target partitions.
fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
    for f in ember_udfs::all_scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in ember_udfs::all_aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    let mut state = ctx.state();
    ember_udfs::features::json::register_json_planning(&mut state).unwrap();
    SessionContext::new_with_state(state)
}

/// Registers `columns` as table `name`, split into partitions of `sizes` rows.
fn register(ctx: &SessionContext, name: &str, columns: Vec<(&str, ArrayRef)>, sizes: &[usize]) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    assert_eq!(sizes.iter().sum::<usize>(), batch.num_rows());
    let mut partitions = Vec::new();
    let mut offset = 0;
    for size in sizes {
        partitions.push(vec![batch.slice(offset, *size)]);
        offset += size;
    }
    let table = MemTable::try_new(schema, partitions).unwrap();
    ctx.register_table(name, Arc::new(table)).unwrap();
}

/// The main table: nine rows in partitions of 3, 2 and 4.
///
/// | id | x    | cat  | n    | d          |
/// |----|------|------|------|------------|
/// | 0  | 2    | b    | 10   | 2024-01-01 |
/// | 1  | 4    | a    | 9    | 2024-02-29 |
/// | 2  | 4    | b    | 10   | 2024-03-01 |
/// | 3  | 4    | c    | 7    | null       |
/// | 4  | 5    | b    | 9    | 2023-03-01 |
/// | 5  | 5    | a    | 10   | 2024-03-02 |
/// | 6  | 7    | null | null | 2024-02-01 |
/// | 7  | 9    | d    | 9    | 2024-02-28 |
/// | 8  | null | b    | 7    | 2024-01-31 |
fn table(ctx: &SessionContext) {
    let x = vec![
        Some(2.0),
        Some(4.0),
        Some(4.0),
        Some(4.0),
        Some(5.0),
        Some(5.0),
        Some(7.0),
        Some(9.0),
        None,
    ];
    let cat = vec![
        Some("b"),
        Some("a"),
        Some("b"),
        Some("c"),
        Some("b"),
        Some("a"),
        None,
        Some("d"),
        Some("b"),
    ];
    let n = vec![
        Some(10),
        Some(9),
        Some(10),
        Some(7),
        Some(9),
        Some(10),
        None,
        Some(9),
        Some(7),
    ];
    // Days since 1970-01-01.
    let d = vec![
        Some(19723),
        Some(19782),
        Some(19783),
        None,
        Some(19417),
        Some(19784),
        Some(19754),
        Some(19781),
        Some(19753),
    ];
    register(
        ctx,
        "t",
        vec![
            (
                "id",
                Arc::new(Int64Array::from((0..9).collect::<Vec<i64>>())),
            ),
            ("x", Arc::new(Float64Array::from(x))),
            ("cat", Arc::new(StringArray::from(cat))),
            ("n", Arc::new(Int64Array::from(n))),
            ("d", Arc::new(Date32Array::from(d))),
        ],
        &[3, 2, 4],
    );
}

async fn column(ctx: &SessionContext, sql: &str) -> Result<ArrayRef, String> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let columns: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
    let refs: Vec<&dyn Array> = columns.iter().map(|c| c.as_ref()).collect();
    if refs.is_empty() {
        return Err("no batches".into());
    }
    arrow::compute::concat(&refs).map_err(|e| e.to_string())
}

async fn text(ctx: &SessionContext, sql: &str) -> String {
    let column = column(ctx, sql).await.unwrap();
    assert_eq!(column.len(), 1, "{sql}");
    // Fits return Utf8; a cast to VARCHAR may give Utf8View.
    cast(&column, &DataType::Utf8)
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string()
}

async fn floats(ctx: &SessionContext, sql: &str) -> Vec<Option<f64>> {
    let column = column(ctx, sql).await.unwrap();
    assert_eq!(column.data_type(), &DataType::Float64, "{sql}");
    column.as_primitive::<Float64Type>().iter().collect()
}

async fn ints(ctx: &SessionContext, sql: &str, expected_type: DataType) -> Vec<Option<i64>> {
    let column = column(ctx, sql).await.unwrap();
    assert_eq!(column.data_type(), &expected_type, "{sql}");
    cast(&column, &DataType::Int64)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

async fn error(ctx: &SessionContext, sql: &str) -> String {
    match column(ctx, sql).await {
        Ok(c) => panic!("{sql} succeeded: {c:?}"),
        Err(e) => e,
    }
}

fn assert_close(actual: &[Option<f64>], expected: &[Option<f64>]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        match (a, e) {
            (Some(a), Some(e)) => assert!(
                (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                "{actual:?} vs {expected:?}"
            ),
            (None, None) => {}
            _ => panic!("{actual:?} vs {expected:?}"),
        }
    }
}

#[tokio::test]
async fn standard_scaler_round_trip() {
    let ctx = context();
    table(&ctx);
    // x = 2 4 4 4 5 5 7 9 (null skipped): mean 40 / 8 = 5; squared deviations
    // 9 1 1 1 0 0 4 16 sum to 32, population variance 32 / 8 = 4, std 2.
    let params = text(&ctx, "SELECT fit_standard_scaler(x) FROM t").await;
    assert_eq!(params, r#"{"mean":5.0,"std":2.0,"count":8}"#);
    let scaled = floats(
        &ctx,
        &format!("SELECT standard_scale(x, '{params}') FROM t ORDER BY id"),
    )
    .await;
    let expected = [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0].map(Some);
    assert_close(&scaled, &[&expected[..], &[None]].concat());
    // A constant column: std 0 divides by 1 (x - mean).
    let params = text(&ctx, "SELECT fit_standard_scaler(3) FROM t").await;
    assert_eq!(params, r#"{"mean":3.0,"std":0.0,"count":9}"#);
    assert_close(
        &floats(&ctx, &format!("SELECT standard_scale(10, '{params}')")).await,
        &[Some(7.0)],
    );
    // Per group: ids 0..=4 (2 4 4 4 5: mean 19/5 = 3.8) and 5..=8 (5 7 9: mean 7).
    let per_group = column(
        &ctx,
        "SELECT fit_standard_scaler(x) FROM t GROUP BY id < 5 ORDER BY id < 5 DESC",
    )
    .await
    .unwrap();
    let per_group = per_group.as_string::<i32>();
    assert!(
        per_group.value(0).starts_with(r#"{"mean":3.8,"#),
        "{}",
        per_group.value(0)
    );
    assert!(
        per_group.value(1).starts_with(r#"{"mean":7.0,"#),
        "{}",
        per_group.value(1)
    );
}

#[tokio::test]
async fn min_max_scaler_round_trip() {
    let ctx = context();
    table(&ctx);
    let params = text(&ctx, "SELECT fit_min_max_scaler(x) FROM t").await;
    assert_eq!(params, r#"{"min":2.0,"max":9.0}"#);
    // (x - 2) / 7; 16 extrapolates to 2, -5 to -1.
    let scaled = floats(
        &ctx,
        &format!("SELECT min_max_scale(x, '{params}') FROM t ORDER BY id"),
    )
    .await;
    let expected = [
        0.0,
        2.0 / 7.0,
        2.0 / 7.0,
        2.0 / 7.0,
        3.0 / 7.0,
        3.0 / 7.0,
        5.0 / 7.0,
        1.0,
    ]
    .map(Some);
    assert_close(&scaled, &[&expected[..], &[None]].concat());
    let outside = floats(
        &ctx,
        &format!("SELECT min_max_scale(v, '{params}') FROM (VALUES (16.0), (-5.0)) s(v)"),
    )
    .await;
    assert_close(&outside, &[Some(2.0), Some(-1.0)]);
}

#[tokio::test]
async fn imputer_round_trip() {
    let ctx = context();
    table(&ctx);
    // mean 40 / 8 = 5; sorted 2 4 4 4 | 5 5 7 9: median (4 + 5) / 2 = 4.5.
    let mean = text(&ctx, "SELECT fit_imputer(x, 'mean') FROM t").await;
    let median = text(&ctx, "SELECT fit_imputer(x, 'median') FROM t").await;
    assert_eq!(mean, r#"{"value":5.0}"#);
    assert_eq!(median, r#"{"value":4.5}"#);
    let imputed = floats(
        &ctx,
        &format!("SELECT impute(x, '{median}') FROM t WHERE id >= 7 ORDER BY id"),
    )
    .await;
    assert_eq!(imputed, vec![Some(9.0), Some(4.5)]);
    let constant = floats(
        &ctx,
        r#"SELECT impute(x, '{"value": 0}') FROM t WHERE id = 8"#,
    )
    .await;
    assert_eq!(constant, vec![Some(0.0)]);
    let nan = floats(
        &ctx,
        r#"SELECT impute(CAST('NaN' AS DOUBLE), '{"value": -1}')"#,
    )
    .await;
    assert_eq!(nan, vec![Some(-1.0)]);
    let err = error(&ctx, "SELECT fit_imputer(x, 'median') FROM t WHERE id = 8").await;
    assert!(
        err.contains("fit_imputer: argument 'x' has no non-null"),
        "{err}"
    );
    let err = error(&ctx, "SELECT fit_imputer(x, 'mode') FROM t").await;
    assert!(
        err.contains("fit_imputer: argument 'strategy'") && err.contains("'mode'"),
        "{err}"
    );
}

#[tokio::test]
async fn categories_round_trip() {
    let ctx = context();
    table(&ctx);
    // cat: b ×4, a ×2, c ×1, d ×1, one null (not a category); c before d by value.
    let all = text(&ctx, "SELECT fit_categories(cat) FROM t").await;
    assert_eq!(all, r#"{"categories":["b","a","c","d"]}"#);
    let top2 = text(&ctx, "SELECT fit_categories(cat, 2) FROM t").await;
    assert_eq!(top2, r#"{"categories":["b","a"]}"#);
    // With two categories, c and d are unseen: index 2.
    let codes = ints(
        &ctx,
        &format!("SELECT ordinal_encode(cat, '{top2}') FROM t ORDER BY id"),
        DataType::Int32,
    )
    .await;
    assert_eq!(
        codes,
        vec![
            Some(0),
            Some(1),
            Some(0),
            Some(2),
            Some(0),
            Some(1),
            None,
            Some(2),
            Some(0)
        ]
    );
    let hot = column(
        &ctx,
        &format!("SELECT one_hot(cat, '{top2}') FROM t ORDER BY id"),
    )
    .await
    .unwrap();
    let hot = hot.as_list::<i32>();
    let row = |i: usize| hot.value(i).as_primitive::<Float64Type>().values().to_vec();
    assert_eq!(row(0), vec![1.0, 0.0, 0.0]);
    assert_eq!(row(1), vec![0.0, 1.0, 0.0]);
    assert_eq!(row(3), vec![0.0, 0.0, 1.0]);
    assert!(hot.is_null(6));
    // Integers as decimal text: 10 ×3, 9 ×3, 7 ×2; the 10/9 tie goes to "10" < "9".
    let numbers = text(&ctx, "SELECT fit_categories(n) FROM t").await;
    assert_eq!(numbers, r#"{"categories":["10","9","7"]}"#);
    let codes = ints(
        &ctx,
        &format!("SELECT ordinal_encode(n, '{numbers}') FROM t ORDER BY id"),
        DataType::Int32,
    )
    .await;
    assert_eq!(
        codes,
        vec![
            Some(0),
            Some(1),
            Some(0),
            Some(2),
            Some(1),
            Some(0),
            None,
            Some(1),
            Some(2)
        ]
    );
    // A hand-written vocabulary works too.
    let hand = ints(
        &ctx,
        r#"SELECT ordinal_encode('z', '{"categories":["y","z"]}')"#,
        DataType::Int32,
    )
    .await;
    assert_eq!(hand, vec![Some(1)]);
}

#[tokio::test]
async fn quantiles_round_trip() {
    let ctx = context();
    table(&ctx);
    // Sorted 2 4 4 4 5 5 7 9 (N = 8), quartiles at h = 7 i / 4:
    // 1.75 -> 4 + 0.75 (4 - 4) = 4; 3.5 -> 4 + 0.5 (5 - 4) = 4.5; 5.25 -> 5 + 0.25 (7 - 5) = 5.5
    // (numpy.quantile([2, 4, 4, 4, 5, 5, 7, 9], [.25, .5, .75]) = [4, 4.5, 5.5]).
    let params = text(&ctx, "SELECT fit_quantiles(x, 4) FROM t").await;
    assert_eq!(params, r#"{"cuts":[4.0,4.5,5.5]}"#);
    // Buckets = number of cuts <= x: 2 -> 0, 4 -> 1, 5 -> 2, 7 and 9 -> 3.
    let buckets = ints(
        &ctx,
        &format!("SELECT quantile_bucket(x, '{params}') FROM t ORDER BY id"),
        DataType::Int32,
    )
    .await;
    assert_eq!(
        buckets,
        vec![
            Some(0),
            Some(1),
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            Some(3),
            Some(3),
            None
        ]
    );
    // Two buckets: the median 4.5 is the one cut.
    assert_eq!(
        text(&ctx, "SELECT fit_quantiles(x, 2) FROM t").await,
        r#"{"cuts":[4.5]}"#
    );
}

#[tokio::test]
async fn days_since_dates_timestamps_and_strings() {
    let ctx = context();
    table(&ctx);
    // To 2024-03-01: from 2024-01-01 31 + 29 = 60 days; 2024-02-29: 1; 2024-03-01: 0;
    // 2023-03-01: 366 (2024 is a leap year); 2024-03-02: -1; 2024-02-01: 29;
    // 2024-02-28: 2; 2024-01-31: 30.
    let ages = ints(
        &ctx,
        "SELECT days_since(d, DATE '2024-03-01') FROM t ORDER BY id",
        DataType::Int64,
    )
    .await;
    assert_eq!(
        ages,
        vec![
            Some(60),
            Some(1),
            Some(0),
            None,
            Some(366),
            Some(-1),
            Some(29),
            Some(2),
            Some(30)
        ]
    );
    let from_text = ints(
        &ctx,
        "SELECT days_since('2024-01-01', '2024-03-01T23:59:59Z')",
        DataType::Int64,
    )
    .await;
    assert_eq!(from_text, vec![Some(60)]);
    // 1_700_000_000 s is 2023-11-14T22:13:20Z; to 2023-11-20 is 5 days 1 h 46 m 40 s.
    register(
        &ctx,
        "events",
        vec![(
            "at",
            Arc::new(TimestampSecondArray::from(vec![1_700_000_000]).with_timezone("+02:00")),
        )],
        &[1],
    );
    let zoned = ints(
        &ctx,
        "SELECT days_since(at, '2023-11-20') FROM events",
        DataType::Int64,
    )
    .await;
    assert_eq!(zoned, vec![Some(5)]);
    let err = error(&ctx, "SELECT days_since('soon', DATE '2024-03-01')").await;
    assert!(
        err.contains("days_since: argument 't'") && err.contains("soon"),
        "{err}"
    );
    // Calendar parts stay DataFusion's own.
    let month = ints(
        &ctx,
        "SELECT date_part('month', d) FROM t WHERE id = 1",
        DataType::Int32,
    )
    .await;
    assert_eq!(month, vec![Some(2)]);
}

#[tokio::test]
async fn json_functions_and_operators() {
    let ctx = context();
    let payloads = vec![
        Some(r#"{"a":{"b":3},"c":"x","f":true,"l":[1,2,3]}"#),
        Some(r#"{"c":"y"}"#),
        None,
    ];
    register(
        &ctx,
        "raw",
        vec![("payload", Arc::new(StringArray::from(payloads)))],
        &[2, 1],
    );
    let q = |select: &str| format!("SELECT {select} FROM raw ORDER BY payload NULLS LAST");
    assert_eq!(
        ints(&ctx, &q("json_get_int(payload, 'a', 'b')"), DataType::Int64).await,
        vec![Some(3), None, None]
    );
    assert_eq!(
        floats(&ctx, &q("json_get_float(payload, 'a', 'b')")).await,
        vec![Some(3.0), None, None]
    );
    let strings = |c: ArrayRef| {
        c.as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect::<Vec<_>>()
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        strings(
            column(&ctx, &q("json_get_str(payload, 'c')"))
                .await
                .unwrap()
        ),
        vec![some("x"), some("y"), None]
    );
    assert_eq!(
        strings(
            column(&ctx, &q("json_as_text(payload, 'a', 'b')"))
                .await
                .unwrap()
        ),
        vec![some("3"), None, None]
    );
    assert_eq!(
        strings(column(&ctx, &q("payload->'a'->>'b'")).await.unwrap()),
        vec![some("3"), None, None]
    );
    assert_eq!(
        strings(column(&ctx, &q("payload->>'c'")).await.unwrap()),
        vec![some("x"), some("y"), None]
    );
    assert_eq!(
        strings(
            column(&ctx, &q("json_get_json(payload, 'a')"))
                .await
                .unwrap()
        ),
        vec![some(r#"{"b":3}"#), None, None]
    );
    let bools = column(&ctx, &q("json_get_bool(payload, 'f')"))
        .await
        .unwrap();
    assert_eq!(
        bools.as_boolean(),
        &BooleanArray::from(vec![Some(true), None, None])
    );
    let contains = column(&ctx, &q("json_contains(payload, 'a')"))
        .await
        .unwrap();
    assert_eq!(
        contains.as_boolean().iter().take(2).collect::<Vec<_>>(),
        vec![Some(true), Some(false)]
    );
    assert_eq!(
        ints(&ctx, &q("json_length(payload, 'l')"), DataType::UInt64).await,
        vec![Some(3), None, None]
    );
    assert_eq!(
        ints(&ctx, &q("json_length(payload)"), DataType::UInt64).await[..2],
        [Some(4), Some(1)]
    );
    let keys = column(&ctx, &q("json_object_keys(payload)")).await.unwrap();
    let keys: Vec<String> = keys
        .as_list::<i32>()
        .value(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    assert_eq!(keys, vec!["a", "c", "f", "l"]);
    // json_get returns a union; a cast picks the typed accessor.
    assert_eq!(
        ints(
            &ctx,
            &q("CAST(json_get(payload, 'a', 'b') AS BIGINT)"),
            DataType::Int64
        )
        .await,
        vec![Some(3), None, None]
    );
}

#[tokio::test]
async fn auc_against_hand_computed_cases() {
    let ctx = context();
    // scikit-learn's example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75.
    // Pairs (positive, negative): (0.35, 0.1) right, (0.35, 0.4) wrong, (0.8, both) right: 3 / 4.
    register(
        &ctx,
        "scored",
        vec![
            (
                "score",
                Arc::new(Float64Array::from(vec![0.1, 0.4, 0.35, 0.8])),
            ),
            ("label", Arc::new(Int64Array::from(vec![0, 0, 1, 1]))),
        ],
        &[1, 2, 1],
    );
    assert_eq!(
        floats(&ctx, "SELECT auc(score, label) FROM scored").await,
        vec![Some(0.75)]
    );
    // Ties and booleans: positives 0.5 and 0.9, negatives 0.5 and 0.1, a null score skipped.
    // (0.5, 0.5) tie 1/2, (0.5, 0.1) 1, (0.9, 0.5) 1, (0.9, 0.1) 1: 3.5 / 4 = 0.875.
    register(
        &ctx,
        "tied",
        vec![
            (
                "score",
                Arc::new(Float64Array::from(vec![
                    Some(0.5),
                    Some(0.5),
                    Some(0.9),
                    None,
                    Some(0.1),
                ])),
            ),
            (
                "label",
                Arc::new(BooleanArray::from(vec![true, false, true, true, false])),
            ),
        ],
        &[2, 3],
    );
    assert_eq!(
        floats(&ctx, "SELECT auc(score, label) FROM tied").await,
        vec![Some(0.875)]
    );
    // One class only: null.
    assert_eq!(
        floats(&ctx, "SELECT auc(score, label) FROM tied WHERE label").await,
        vec![None]
    );
    let err = error(&ctx, "SELECT auc(score, label + 1) FROM scored").await;
    assert!(
        err.contains("auc: argument 'label' must be 0 or 1") && err.contains("got 2"),
        "{err}"
    );
}

#[tokio::test]
async fn fits_do_not_depend_on_partitioning() {
    // 1,000 awkward values (thirds, tenths, 1e6 offsets): float sums in any
    // other order would differ in the last bits.
    let x: Vec<f64> = (0..1000)
        .map(|i| f64::from((i * 7919) % 1000) / 3.0 + 1e6 * f64::from(i % 3) + 0.1)
        .collect();
    let label: Vec<i64> = (0..1000).map(|i| i64::from((i * 13) % 7 < 3)).collect();
    let cat: Vec<String> = (0..1000).map(|i| format!("c{}", (i * 31) % 17)).collect();
    let fits = [
        "fit_standard_scaler(x)",
        "fit_min_max_scaler(x)",
        "fit_imputer(x, 'mean')",
        "fit_imputer(x, 'median')",
        "fit_categories(cat, 5)",
        "fit_quantiles(x, 10)",
        "CAST(auc(x, label) AS VARCHAR)",
    ];
    let mut results: Vec<Vec<String>> = Vec::new();
    for sizes in [vec![1000], vec![1, 499, 500], vec![250; 4], vec![7, 993]] {
        let ctx = context();
        register(
            &ctx,
            "big",
            vec![
                ("x", Arc::new(Float64Array::from(x.clone()))),
                ("label", Arc::new(Int64Array::from(label.clone()))),
                ("cat", Arc::new(StringArray::from(cat.clone()))),
            ],
            &sizes,
        );
        let mut row = Vec::new();
        for fit in fits {
            row.push(text(&ctx, &format!("SELECT {fit} FROM big")).await);
        }
        results.push(row);
    }
    for other in &results[1..] {
        assert_eq!(other, &results[0]);
    }
}

#[tokio::test]
async fn params_must_be_constant_and_well_formed() {
    let ctx = context();
    table(&ctx);
    let err = error(&ctx, "SELECT standard_scale(x, cat) FROM t").await;
    assert!(
        err.contains("standard_scale: argument 'params' must be a constant string"),
        "{err}"
    );
    let err = error(&ctx, r#"SELECT min_max_scale(x, '{"min": 1}') FROM t"#).await;
    assert!(
        err.contains("min_max_scale: argument 'params'") && err.contains("max"),
        "{err}"
    );
    let err = error(
        &ctx,
        r#"SELECT quantile_bucket(x, '{"cuts": [1], "extra": 2}') FROM t"#,
    )
    .await;
    assert!(
        err.contains("quantile_bucket: argument 'params'") && err.contains("extra"),
        "{err}"
    );
    let err = error(&ctx, "SELECT one_hot(cat, 'not json') FROM t").await;
    assert!(
        err.contains("one_hot: argument 'params' is not valid"),
        "{err}"
    );
    let err = error(&ctx, "SELECT fit_standard_scaler(cat) FROM t").await;
    assert!(
        err.contains("fit_standard_scaler: argument 'x' must be numeric"),
        "{err}"
    );
}
