//! Training on the two-executor cluster gives the models embedded training
//! gives: `ember train` (the distributed driver) and per-group `train_*`
//! aggregates, over inputs split into several files so partial results from
//! both executors are merged.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arrow::array::AsArray;
use ember_tests::Mode;
use ember_tests::cluster::TestCluster;
use ember_tests::command::{ember, stderr};
use ember_tests::sql::{connect, run_on_ember};
use ember_tests::training_fixtures::{
    dir, model_numbers_as_f32, model_without_version, split_input,
};
use ember_udfs::scoring::model::ember_linear::LinearModelFile;

/// Runs `ember train` (on the shared cluster in [`Mode::Cluster`], or on
/// `--cluster` given in `extra`) and returns what it printed on stderr.
fn train(mode: Mode, input: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--input",
        input.to_str().unwrap(),
        "--label",
        "y",
        "--model-out",
        out.to_str().unwrap(),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let output = ember(mode, &args);
    let message = stderr(&output);
    assert!(
        output.status.success(),
        "ember train ({mode:?}) failed: {message}"
    );
    assert!(message.contains("trained"), "{message}");
    let expected_engine = if mode == Mode::Cluster || extra.contains(&"--cluster") {
        "on df://"
    } else {
        "on embedded"
    };
    assert!(message.contains(expected_engine), "{message}");
    message
}

#[test]
fn gbdt_trained_on_the_cluster_is_bit_identical_to_embedded() {
    let work = tempfile::tempdir().unwrap();
    let input = split_input("gbdt_train", work.path(), 3);
    let params = ["--param", "num_boost_round=8", "--param", "max_depth=5"];
    let embedded = work.path().join("embedded.json");
    let cluster = work.path().join("cluster.json");
    train(Mode::Embedded, &input, &embedded, &params);
    train(Mode::Cluster, &input, &cluster, &params);
    let a = model_without_version(&embedded);
    let b = model_without_version(&cluster);
    assert_eq!(
        a["learner"]["gradient_booster"]["model"]["trees"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert!(a == b, "the cluster trained different trees than embedded");
    // The work directory is cleaned up.
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".ember-train-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn embedded_gbdt_trains_the_committed_model_and_keeps_its_rows_between_levels() {
    // gbdt_ember.json was written by `ember train` before rows were kept
    // between levels (each level re-read a binned copy rewritten every
    // round); the same command must still write the same trees.
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model.json");
    let message = train(
        Mode::Embedded,
        &dir().join("gbdt_train.parquet"),
        &model,
        &[],
    );
    assert!(!message.contains("re-read"), "{message}");
    assert!(
        model_numbers_as_f32(&model) == model_numbers_as_f32(&dir().join("gbdt_ember.json")),
        "ember train no longer writes the committed gbdt_ember.json"
    );
}

/// Trains embedded and on a cluster of its own (2 executors started with
/// `executor_args`) over the fixture split in 3 files, with `rounds` trees
/// of depth 4; returns the cluster run's message and whether both models
/// are the same.
async fn embedded_and_on_own_cluster(executor_args: &[String], rounds: &str) -> (String, bool) {
    let cluster = TestCluster::start(2, &[], executor_args).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let input = split_input("gbdt_train", work.path(), 3);
    let rounds = format!("num_boost_round={rounds}");
    let params = ["--param", &rounds, "--param", "max_depth=4"];
    let embedded = work.path().join("embedded.json");
    train(Mode::Embedded, &input, &embedded, &params);
    let clustered = work.path().join("cluster.json");
    let address = cluster.address();
    let mut extra = vec!["--cluster", &address];
    extra.extend_from_slice(&params);
    let message = train(Mode::Embedded, &input, &clustered, &extra);
    let same = model_without_version(&embedded) == model_without_version(&clustered);
    (message, same)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbdt_trees_after_the_first_are_grown_in_one_job_each_with_the_same_model() {
    // A cluster of its own: no other test's jobs move partitions between
    // executors, so every tree job finds its rows.
    let (message, same) = embedded_and_on_own_cluster(&[], "6").await;
    // The first tree is grown by level queries (which make the executors
    // keep the rows), the other five in one tree job each. Ballista places
    // tasks itself, so a job may rarely find a partition moved and fall
    // back (with a note; three in a row stop the tries).
    let grown: usize = message
        .split("6 trees (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tree-job count in: {message}"));
    assert!((1..=5).contains(&grown), "{message}");
    assert_eq!(message.contains("note:"), grown < 5, "{message}");
    assert!(same, "tree jobs trained different trees than embedded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbdt_on_executors_that_keep_no_rows_rereads_them_and_trains_the_same_model() {
    let keep_none = ["--training-rows-memory".to_string(), "0".to_string()];
    let (message, same) = embedded_and_on_own_cluster(&keep_none, "3").await;
    // 3 trees × 4 levels; the first level reads every column, the other
    // 11 find no rows kept and ask again. The tree jobs of the last two
    // trees find no rows either, and those trees are grown by levels.
    assert!(
        message.contains("11 of 12 tree levels re-read the binned table"),
        "{message}"
    );
    assert!(
        message.contains("2 of 2 tree jobs could not grow"),
        "{message}"
    );
    assert!(same, "re-read levels trained different trees");
}

#[test]
fn logistic_and_linear_on_the_cluster_match_embedded() {
    let work = tempfile::tempdir().unwrap();
    for (name, kind) in [("classification", "logistic"), ("regression", "linear")] {
        let input = split_input(name, work.path(), 3);
        let embedded = work.path().join(format!("{kind}-embedded.json"));
        let cluster = work.path().join(format!("{kind}-cluster.json"));
        train(Mode::Embedded, &input, &embedded, &["--model", kind]);
        train(Mode::Cluster, &input, &cluster, &["--model", kind]);
        let read = |p: &std::path::Path| -> LinearModelFile {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let (a, b) = (read(&embedded), read(&cluster));
        assert_eq!(a.feature_names, b.feature_names);
        for (x, y) in a
            .coefficients
            .iter()
            .chain([&a.intercept])
            .zip(b.coefficients.iter().chain([&b.intercept]))
        {
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                "{kind}: {x} vs {y}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_group_training_on_the_cluster_matches_embedded() {
    let work = tempfile::tempdir().unwrap();
    let input = split_input("gbdt_train", work.path(), 3);
    let sql = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/'; \
         SELECT CAST(f5 AS BIGINT) % 4 AS segment, \
                train_gbdt(y, f0, f1, f2, f6, '{{\"num_boost_round\": 5, \"max_depth\": 3}}') AS trees, \
                train_logistic(y, f0, f1, f6) AS logistic \
         FROM t GROUP BY 1 ORDER BY 1",
        input.display()
    );
    let mut results = Vec::new();
    for mode in [Mode::Embedded, Mode::Cluster] {
        let ember = connect(mode).await;
        let batches = run_on_ember(&ember, &sql).await.unwrap().pop().unwrap();
        let mut rows = Vec::new();
        for batch in &batches {
            for r in 0..batch.num_rows() {
                rows.push((
                    batch.column(1).as_string::<i32>().value(r).to_string(),
                    batch.column(2).as_string::<i32>().value(r).to_string(),
                ));
            }
        }
        results.push(rows);
    }
    assert_eq!(results[0].len(), 4);
    // Trees are bit-identical; logistic models too, because each group's
    // rows are put in a canonical order before fitting.
    assert_eq!(results[0], results[1]);
}

#[test]
fn train_errors_name_the_problem_and_keep_the_previous_model() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("model.json");
    std::fs::write(&out, "previous").unwrap();
    let input = dir().join("gbdt_train.parquet");
    let input = input.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--label", "nope"], "no label column 'nope'"),
        (
            &["--label", "y", "--features", "f0,missing"],
            "no column 'missing'",
        ),
        (
            &["--label", "y", "--param", "max_depth=0"],
            "parameter 'max_depth'",
        ),
        (
            &["--label", "y", "--param", "objective=multi:softprob"],
            "parameter 'objective'",
        ),
        (
            &["--label", "f6", "--param", "objective=binary:logistic"],
            "needs 0/1 labels",
        ),
    ];
    for (extra, wanted) in cases {
        let mut args = vec![
            "train",
            "--input",
            input,
            "--model-out",
            out_arg,
            "--no-progress",
        ];
        args.extend_from_slice(extra);
        let output = ember(Mode::Embedded, &args);
        let message = stderr(&output);
        assert!(!output.status.success(), "{extra:?} succeeded");
        assert!(message.contains(wanted), "{extra:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
}
