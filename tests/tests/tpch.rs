//! All 22 TPC-H queries at scale factor 0.1, embedded and on a cluster of a
//! scheduler and two executors, each answer compared with single-process
//! DataFusion on the same files and with TPC-H's row counts.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use ember_benchmarks::tpch::{query, query_numbers, scale_invariant_row_count};
use ember_benchmarks::verify::compare_results;
use ember_core::jobs_api::JobProgress;
use ember_tests::Mode;
use ember_tests::cluster::shared;
use ember_tests::data::{tpch, tpch_ddl};
use ember_tests::sql::{connect, datafusion_context, row_count, run_on_datafusion, run_on_ember};

const SCALE_FACTOR: f64 = 0.1;
/// Files per table, so every scan has several partitions to spread.
const FILES: usize = 4;

async fn check_all_queries(mode: Mode) {
    let data = tpch(SCALE_FACTOR, FILES);
    let ddl = tpch_ddl(&data);
    let oracle = datafusion_context(2);
    run_on_datafusion(&oracle, &ddl)
        .await
        .expect("register tables in DataFusion");
    let ember = connect(mode).await;
    run_on_ember(&ember, &ddl)
        .await
        .expect("register tables in Ember");

    let mut failures = Vec::new();
    for n in query_numbers() {
        let q = query(n).expect("query");
        let expected = run_on_datafusion(&oracle, q.sql)
            .await
            .expect("DataFusion answer");
        let expected = &expected[q.answer_statement()];
        let actual = match run_on_ember(&ember, q.sql).await {
            Ok(results) if results.len() == 1 => results.into_iter().next().unwrap_or_default(),
            Ok(results) => {
                failures.push(format!("q{n}: {} result sets", results.len()));
                continue;
            }
            Err(e) => {
                failures.push(format!("q{n}: {e}"));
                continue;
            }
        };
        if let Err(diff) = compare_results(expected, &actual, q.is_ordered()) {
            failures.push(format!("q{n}: differs from DataFusion: {diff}"));
        }
        if let Some(count) = scale_invariant_row_count(n)
            && row_count(&actual) != count
        {
            failures.push(format!(
                "q{n}: {} rows, TPC-H gives {count}",
                row_count(&actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{mode:?}:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_embedded_matches_datafusion() {
    check_all_queries(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_on_two_executors_matches_datafusion_and_uses_both() {
    check_all_queries(Mode::Cluster).await;

    // The scheduler's REST API: every job's tasks and where they ran.
    let cluster = shared();
    let client = reqwest::Client::new();
    let jobs: Vec<serde_json::Value> = client
        .get(format!("{}/api/jobs", cluster.http()))
        .send()
        .await
        .expect("GET /api/jobs")
        .json()
        .await
        .expect("jobs JSON");
    assert!(jobs.len() >= 22, "the scheduler ran {} jobs", jobs.len());
    let mut by_executor: BTreeMap<String, usize> = BTreeMap::new();
    let mut multi_stage_on_both = 0;
    for job in &jobs {
        let id = job["job_id"].as_str().expect("job_id");
        let progress: JobProgress = client
            .get(format!("{}/api/ember/job/{id}", cluster.http()))
            .send()
            .await
            .expect("GET /api/ember/job")
            .json()
            .await
            .expect("progress JSON");
        for (executor, n) in &progress.completed_tasks_by_executor {
            *by_executor.entry(executor.clone()).or_default() += n;
        }
        if progress.stages.len() > 1 && progress.completed_tasks_by_executor.len() == 2 {
            multi_stage_on_both += 1;
        }
    }
    assert_eq!(
        by_executor.len(),
        2,
        "tasks completed per executor: {by_executor:?}"
    );
    assert!(
        multi_stage_on_both > 0,
        "no multi-stage job ran tasks on both executors"
    );
}
