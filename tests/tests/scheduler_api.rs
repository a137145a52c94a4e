//! The scheduler's HTTP surface on a real cluster: probes, Prometheus
//! metrics, Ballista's REST API and Ember's progress route, and the
//! `ember.*` options arriving on the scheduler with a job.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ember_core::jobs_api::JobProgress;
use ember_tests::Mode;
use ember_tests::cluster::shared;
use ember_tests::data::nums_table;
use ember_tests::sql::{connect, run_on_ember};

async fn get(path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", shared().http()))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_job_routes_answer() {
    let health = get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains("2 executors"));

    let dir = tempfile::tempdir().unwrap();
    let ember = connect(Mode::Cluster).await;
    let script = format!(
        "{} SET ballista.job.name = 'api-test'; SET ember.features.hash_buckets = 64; \
         SELECT s, count(*) FROM nums GROUP BY s ORDER BY s LIMIT 3",
        nums_table(dir.path())
    );
    run_on_ember(&ember, &script).await.expect("query");

    let jobs: Vec<serde_json::Value> = get("/api/jobs").await.json().await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == "api-test")
        .unwrap_or_else(|| panic!("job 'api-test' not in {jobs:?}"));
    assert_eq!(job["status"], "Completed", "{job}");
    let id = job["job_id"].as_str().unwrap();

    // The scheduler planned the job with the session's Ember options.
    let config: serde_json::Value = get(&format!("/api/job/{id}/config"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(config["ember.features.hash_buckets"], "64", "{config}");

    let progress: JobProgress = get(&format!("/api/ember/job/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(progress.status, "Completed");
    let (done, total) = progress.stage_counts();
    assert!(total >= 2 && done == total, "{progress:?}");
    let (parts_done, parts) = progress.partition_counts();
    assert_eq!(parts_done, parts);
    assert!(
        progress
            .stages
            .iter()
            .all(|s| s.tasks.iter().all(|t| t.executor_id.is_some()))
    );

    assert_eq!(get("/api/ember/job/no-such-job").await.status(), 404);

    let metrics = get("/api/metrics").await.text().await.unwrap();
    assert!(metrics.contains("job_exec_time_seconds"), "{metrics}");
}
