//! Executor loss: a multi-stage query over TPC-H data (scale factor 0.1)
//! runs on a scheduler with three executors, one executor is killed with
//! SIGKILL in the middle of the query, and the query must still finish with
//! the answer single-process DataFusion gives.
//!
//! The kill lands at three points, watched through the scheduler's REST API:
//! while the first (map) stages run and none has finished, killing an
//! executor that is running one of their tasks (Q18); after stages have
//! finished, while later stages read their output, killing an executor that
//! holds finished shuffle output, so the output it held must be computed
//! again (Q9); and during the final stage, killing the executor that runs
//! it. TPC-H's final stages last a few milliseconds at this scale, too short
//! to aim a kill at, so the last case runs a query over `lineitem` whose
//! final stage does real work: a global window (`row_number()` over all
//! 600 000 rows, which Ballista runs as one final task after merging the
//! sorted partitions) feeding an aggregate of hashes. Ember's defaults (2 s
//! executor heartbeats, a 10 s heartbeat timeout checked every 2 s) are what
//! these tests run with.
//!
//! When every executor is lost the job fails within a bound, a resubmitted
//! query runs once an executor is back, and a pipeline step in that case is
//! recorded as a failed attempt and retried by its policy.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_benchmarks::tpch::{TpchQuery, query};
use ember_benchmarks::verify::compare_results;
use ember_core::jobs_api::JobProgress;
use ember_core::{ClusterTarget, EmberContext};
use ember_tests::cluster::TestCluster;
use ember_tests::data::{tpch, tpch_ddl};
use ember_tests::sql::{datafusion_context, run_on_datafusion, run_on_ember};

const SCALE_FACTOR: f64 = 0.1;
const FILES: usize = 4;
/// Queries that finish before the chosen point is seen are run again, at
/// most this many times in all.
const ATTEMPTS: usize = 4;

/// The scheduler must drop a killed executor within its heartbeat timeout
/// (10 s) plus one check interval (2 s), and a little slack.
const LOSS_DETECTION_BOUND: Duration = Duration::from_secs(15);

/// A query that loses an executor finishes well within this (about 10 s
/// at this scale); past it, the job hangs.
const QUERY_BOUND: Duration = Duration::from_secs(90);

/// Where in the query the executor dies.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// No stage has finished yet; the victim is running a task of a stage.
    FirstStage,
    /// At least one stage has finished and a later one is running; the
    /// victim holds shuffle output of a finished stage.
    AfterFinishedStages,
    /// Every stage but the last has finished; the victim runs a task of
    /// the last (the job's output).
    FinalStage,
}

/// A query whose final stage lasts long enough to aim a kill at (see the
/// module docs): the window and the hashes of its output run in the last
/// stage, on one executor.
const HEAVY_FINAL_STAGE: &str = "\
SELECT count(*) AS n, max(rn) AS ranked, max(md5(concat(h, CAST(rn AS VARCHAR)))) AS top_hash \
FROM (SELECT md5(l_comment) AS h, \
             row_number() OVER (ORDER BY l_orderkey, l_linenumber) AS rn \
      FROM lineitem) AS ranked_lines";

/// What the watcher saw and did.
#[derive(Debug)]
struct Kill {
    executor: String,
    job_id: String,
    stages_done: usize,
    stages: usize,
}

type QueryTask = tokio::task::JoinHandle<Result<Vec<Vec<arrow::array::RecordBatch>>, String>>;

/// Runs `sql` on `ember` in the background.
fn spawn_query(ember: &Arc<EmberContext>, sql: &str) -> QueryTask {
    let ember = Arc::clone(ember);
    let sql = sql.to_string();
    tokio::spawn(async move { run_on_ember(&ember, &sql).await })
}

/// The id of the job the scheduler is running, if any.
async fn running_job(cluster: &TestCluster) -> Option<String> {
    let jobs: Vec<serde_json::Value> = cluster.get_json("/api/jobs").await?;
    jobs.iter()
        .find(|j| matches!(j["status"].as_str(), Some("Running") | Some("Queued")))
        .and_then(|j| j["job_id"].as_str().map(str::to_string))
}

/// Waits until the scheduler lists exactly `count` executors; returns how
/// long that took, or fails the test after `bound`.
async fn wait_until_executors(cluster: &TestCluster, count: usize, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let executors: Vec<serde_json::Value> =
            cluster.get_json("/api/executors").await.unwrap_or_default();
        if executors.len() == count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "the scheduler still lists {} executors {} s after the kill",
            executors.len(),
            bound.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Maps a Ballista executor id to the test cluster's process name.
async fn process_of(cluster: &TestCluster, executor_id: &str) -> Option<String> {
    let executors: Vec<serde_json::Value> = cluster.get_json("/api/executors").await?;
    let port = executors
        .iter()
        .find(|e| e["id"].as_str() == Some(executor_id))?["port"]
        .as_u64()?;
    cluster.executor_named_by_port(u16::try_from(port).ok()?)
}

/// Chooses the executor to kill when `progress` is at `point`.
fn victim(progress: &JobProgress, point: KillPoint) -> Option<String> {
    let (done, total) = progress.stage_counts();
    let running_task_executor = |stage: &ember_core::jobs_api::StageProgress| {
        stage
            .tasks
            .iter()
            .find(|t| t.status == "Running")
            .and_then(|t| t.executor_id.clone())
    };
    match point {
        KillPoint::FirstStage if done == 0 => progress
            .stages
            .iter()
            .filter(|s| s.status == "Running")
            .find_map(running_task_executor),
        KillPoint::AfterFinishedStages if total > 1 && done >= 1 && done < total => {
            let last = progress.stages.iter().find(|s| s.status == "Running")?;
            // Prefer an executor that both holds finished map output and is
            // running a task of the last stage.
            let holders: Vec<&String> = progress
                .stages
                .iter()
                .filter(|s| s.status == "Successful")
                .flat_map(|s| s.tasks.iter())
                .filter(|t| t.status == "Successful")
                .filter_map(|t| t.executor_id.as_ref())
                .collect();
            let running = running_task_executor(last);
            match running {
                Some(e) if holders.contains(&&e) => Some(e),
                _ => holders.first().map(|e| (*e).clone()),
            }
        }
        KillPoint::FinalStage if total > 1 && done + 1 == total => {
            let last = progress.stages.iter().max_by_key(|s| s.stage_id)?;
            if last.status == "Running" {
                running_task_executor(last)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Watches the cluster until the running job reaches `point`, then kills the
/// chosen executor. Returns `None` when `query` finished first.
async fn watch_and_kill(
    cluster: &TestCluster,
    point: KillPoint,
    query: &QueryTask,
) -> Option<Kill> {
    while !query.is_finished() {
        let Some(job_id) = running_job(cluster).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let url = format!("/api/ember/job/{job_id}");
        while let Some(progress) = cluster.get_json::<JobProgress>(&url).await {
            if progress.is_finished() {
                return None;
            }
            if let Some(executor_id) = victim(&progress, point)
                && let Some(name) = process_of(cluster, &executor_id).await
            {
                cluster.kill(&name);
                let (stages_done, stages) = progress.stage_counts();
                return Some(Kill {
                    executor: name,
                    job_id,
                    stages_done,
                    stages,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    None
}

async fn survives_executor_kill(q: TpchQuery, point: KillPoint) {
    let query_number = q.number;
    let data = tpch(SCALE_FACTOR, FILES);
    let ddl = tpch_ddl(&data);
    let oracle = datafusion_context(2);
    run_on_datafusion(&oracle, &ddl)
        .await
        .expect("DataFusion tables");
    let expected = run_on_datafusion(&oracle, q.sql)
        .await
        .expect("DataFusion answer");
    let expected = &expected[q.answer_statement()];

    let cluster = TestCluster::start(3, &[], &[])
        .await
        .expect("start a cluster of three executors");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = Arc::new(EmberContext::connect(target).await.expect("connect"));
    run_on_ember(&ember, &ddl).await.expect("Ember tables");

    for attempt in 1..=ATTEMPTS {
        let started = Instant::now();
        let running = spawn_query(&ember, q.sql);
        let kill = watch_and_kill(&cluster, point, &running).await;
        let killed_at = started.elapsed();
        let killed_instant = Instant::now();
        // A hang is a failure, not a stuck CI run.
        let answer = tokio::time::timeout(QUERY_BOUND, running)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "q{query_number} did not finish within {} s ({kill:?}); scheduler log:\n{}",
                    QUERY_BOUND.as_secs(),
                    std::fs::read_to_string(cluster.log("scheduler.log")).unwrap_or_default()
                )
            })
            .expect("query task");
        let Some(kill) = kill else {
            eprintln!("q{query_number} attempt {attempt}: finished before {point:?} was seen");
            answer.expect("the query without a kill");
            continue;
        };
        let total = started.elapsed();
        assert!(
            !cluster.is_running(&kill.executor),
            "{} still runs",
            kill.executor
        );
        let answer = answer.unwrap_or_else(|e| {
            panic!(
                "q{query_number} failed after {} was killed at {point:?} ({kill:?}): {e}\nscheduler log: {}",
                kill.executor,
                std::fs::read_to_string(cluster.log("scheduler.log")).unwrap_or_default()
            )
        });
        let actual = answer.into_iter().last().unwrap_or_default();
        compare_results(expected, &actual, q.is_ordered()).unwrap_or_else(|diff| {
            panic!("q{query_number} after losing {}: {diff}", kill.executor)
        });
        eprintln!(
            "q{query_number}: {} killed at {:.2} s ({point:?}, {}/{} stages done, job {}); \
             correct answer after {:.2} s",
            kill.executor,
            killed_at.as_secs_f64(),
            kill.stages_done,
            kill.stages,
            kill.job_id,
            total.as_secs_f64(),
        );
        wait_until_executors(&cluster, 2, LOSS_DETECTION_BOUND).await;
        let detected = killed_instant.elapsed();
        let log = std::fs::read_to_string(cluster.log("scheduler.log")).unwrap_or_default();
        let resets: Vec<&str> = log
            .lines()
            .filter(|l| {
                (l.contains("on lost Executor") || l.contains("is in UnResolved status"))
                    && l.contains(&kill.job_id)
            })
            .collect();
        eprintln!(
            "the scheduler dropped {} {:.2} s after the kill; tasks of the job it reset or found rolled back:\n{}",
            kill.executor,
            detected.as_secs_f64(),
            resets.join("\n")
        );
        return;
    }
    panic!("q{query_number} finished {ATTEMPTS} times before {point:?} was seen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q18_survives_losing_an_executor_in_its_first_stage() {
    survives_executor_kill(query(18).expect("q18"), KillPoint::FirstStage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q9_survives_losing_an_executor_holding_shuffle_output_of_finished_stages() {
    survives_executor_kill(query(9).expect("q9"), KillPoint::AfterFinishedStages).await;
}

/// Numbered 0 in the messages: not a TPC-H query, but over TPC-H's tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_survives_losing_the_executor_running_its_final_stage() {
    let q = TpchQuery {
        number: 0,
        sql: HEAVY_FINAL_STAGE,
    };
    survives_executor_kill(q, KillPoint::FinalStage).await;
}

/// Every executor gone: the job fails within the documented bound (heartbeat
/// timeout, one check interval, then the same timeout again as a grace period
/// for executors to come back) with an error that says so, and a resubmitted
/// query succeeds once an executor has joined again, which is what a
/// pipeline step's retry does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_every_executor_fails_the_job_within_bounds_and_a_resubmission_succeeds() {
    /// 10 s heartbeat timeout + 2 s check + 10 s grace, and slack.
    const FAILURE_BOUND: Duration = Duration::from_secs(35);
    let data = tpch(SCALE_FACTOR, FILES);
    let ddl = tpch_ddl(&data);
    let q = query(18).expect("query");
    let mut cluster = TestCluster::start(2, &[], &[])
        .await
        .expect("start a cluster of two executors");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = Arc::new(EmberContext::connect(target).await.expect("connect"));
    run_on_ember(&ember, &ddl).await.expect("Ember tables");

    let running = spawn_query(&ember, q.sql);
    // Kill both executors as soon as the job runs.
    loop {
        assert!(
            !running.is_finished(),
            "q18 finished before it could be cut"
        );
        if running_job(&cluster).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill("executor-1");
    cluster.kill("executor-2");
    let killed = Instant::now();
    let outcome = tokio::time::timeout(FAILURE_BOUND, running)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "q18 neither failed nor finished {} s after every executor died",
                FAILURE_BOUND.as_secs()
            )
        })
        .expect("query task");
    let error = outcome.expect_err("q18 cannot succeed without executors");
    let failed_after = killed.elapsed();
    assert!(
        error.to_lowercase().contains("executor"),
        "the error does not say executors were lost: {error}"
    );
    eprintln!(
        "q18 failed {:.1} s after every executor died: {error}",
        failed_after.as_secs_f64()
    );

    cluster
        .add_executor(1, &[])
        .await
        .expect("a new executor joins");
    let again = run_on_ember(&ember, q.sql)
        .await
        .expect("q18 resubmitted to the new executor");
    assert_eq!(again.len(), 1);
}

/// The scheduler restarts: a query sent while it is down fails with an error
/// naming the scheduler's address, the executors register with the new
/// scheduler by themselves (their next heartbeat), and the same client's
/// next query succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_scheduler_restart_executors_rejoin_and_the_client_resubmits() {
    let ddl = tpch_ddl(&tpch(SCALE_FACTOR, FILES));
    let cluster = TestCluster::start(2, &[], &[])
        .await
        .expect("start a cluster of two executors");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = EmberContext::connect(target).await.expect("connect");
    run_on_ember(&ember, &ddl).await.expect("Ember tables");
    let count = "SELECT count(*) FROM orders";
    run_on_ember(&ember, count)
        .await
        .expect("before the restart");

    cluster.kill("scheduler");
    let error = run_on_ember(&ember, count)
        .await
        .expect_err("no scheduler to run the query");
    eprintln!("while the scheduler is down: {error}");
    assert!(
        error.contains(&format!("cannot reach 127.0.0.1:{}", cluster.port)),
        "the error does not name the scheduler: {error}"
    );

    cluster
        .restart_scheduler()
        .await
        .expect("scheduler restarts");
    let rejoined = Instant::now();
    wait_until_executors(&cluster, 2, Duration::from_secs(15)).await;
    eprintln!(
        "both executors registered again {:.1} s after the restart",
        rejoined.elapsed().as_secs_f64()
    );
    let answer = run_on_ember(&ember, count)
        .await
        .expect("resubmitted after the restart");
    assert_eq!(ember_tests::sql::row_count(&answer[0]), 1);
}

/// The nightly case: a pipeline step whose job loses every executor. The
/// runner records the failed attempt with the scheduler's error, waits its
/// `retry_delay`, and runs the step again, which succeeds once an executor
/// has joined. The scheduler here gives up on lost executors after 3 s
/// (`--executor-timeout-seconds`, 10 s by default) to keep the test short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_step_that_loses_every_executor_is_recorded_and_retried() {
    let data = tpch(SCALE_FACTOR, FILES);
    let scheduler_args = ["--executor-timeout-seconds".to_string(), "3".to_string()];
    let executor_args = ["--heartbeat-interval-seconds".to_string(), "1".to_string()];
    let mut cluster = TestCluster::start(1, &scheduler_args, &executor_args)
        .await
        .expect("start a cluster of one executor");
    let work = tempfile::tempdir().expect("work dir");
    let pipeline = work.path().join("nightly.toml");
    let lineitem = data.join("lineitem");
    std::fs::write(
        &pipeline,
        format!(
            "name = \"nightly\"\n\
             [tables.lineitem]\npath = \"{}/\"\n\
             [[step]]\nname = \"rank\"\nretries = 1\nretry_delay = \"8s\"\n\
             [step.sql]\noutput = \"ranked\"\nquery = \"{HEAVY_FINAL_STAGE}\"\n",
            lineitem.display()
        ),
    )
    .expect("write pipeline");
    let history = work.path().join("history.sqlite");
    let output_dir = work.path().join("output");
    let run = std::process::Command::new(
        ember_jobs::cluster::launch::find_binary("ember").expect("ember binary"),
    )
    .arg("run")
    .arg(&pipeline)
    .args(["--cluster", &cluster.address(), "--history"])
    .arg(&history)
    .arg("--output-dir")
    .arg(&output_dir)
    .args(["--no-progress", "--format", "json", "--ds", "2026-12-01"])
    .env_remove("EMBER_AUTH_TOKEN")
    .env_remove("EMBER_AUTH_TOKEN_FILE")
    .env_remove("EMBER_TLS_CA")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("run the pipeline");

    // The step's job runs: its only executor dies.
    let started = Instant::now();
    let job = loop {
        assert!(started.elapsed() < QUERY_BOUND, "the step's job never ran");
        if let Some(job) = running_job(&cluster).await {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    cluster.kill("executor-1");
    // The job fails (3 s to notice, 3 s of grace); then an executor joins,
    // within the step's retry delay.
    loop {
        assert!(
            started.elapsed() < QUERY_BOUND,
            "job {job} did not fail without executors"
        );
        let jobs: Vec<serde_json::Value> = cluster.get_json("/api/jobs").await.unwrap_or_default();
        if jobs
            .iter()
            .any(|j| j["job_id"] == job.as_str() && j["status"] == "Failed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster
        .add_executor(1, &[])
        .await
        .expect("a new executor joins");
    let output = tokio::task::spawn_blocking(move || run.wait_with_output())
        .await
        .expect("wait task")
        .expect("the pipeline run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the retried run fails: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the run's JSON report");
    assert_eq!(report["state"], "succeeded", "{report}");

    // The history holds both attempts, the first with the scheduler's error.
    let run_id = report["run_id"].as_i64().expect("run id").to_string();
    let shown = std::process::Command::new(
        ember_jobs::cluster::launch::find_binary("ember").expect("ember binary"),
    )
    .args(["runs", "show", &run_id, "--format", "json", "--history"])
    .arg(&history)
    .output()
    .expect("ember runs show");
    let details: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("run details");
    let attempts: Vec<&serde_json::Value> = details["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["step"] == "rank")
        .collect();
    let states: Vec<&str> = attempts
        .iter()
        .map(|a| a["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, vec!["failed", "succeeded"], "{details}");
    let first_error = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(
        first_error.contains("executors were lost"),
        "the first attempt's recorded error: {first_error}"
    );
    eprintln!(
        "pipeline run {run_id}: attempt 1 failed ({first_error}); attempt 2 succeeded on the new executor, {:.1} s after the start",
        started.elapsed().as_secs_f64()
    );
}
