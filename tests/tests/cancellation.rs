//! Cancellation: a job cancelled the way Ember cancels it (Ctrl-C in `ember
//! sql`, a pipeline step's `timeout`: `SqlRunner::with_cancel`, which asks
//! the scheduler's REST API, `PATCH /api/job/{id}`) is reported cancelled,
//! its running tasks are aborted on the executors, and the cluster takes
//! the next query.
//!
//! The query is CPU-bound and would run for hours: on each of two
//! single-core executors, a cross join of two 100 000-value series
//! (Ember's `generate_series`, an unnest) hashing every pair with `md5`.
//! Such a task never waits for I/O, so it can only be stopped where it
//! yields to tokio; `ember_core::cooperative` makes cross joins and unnests
//! yield every 128 batches.
//!
//! Stopping the task's future is not enough: Ballista 55's shuffle writers
//! run the stage's plan in a coordinator task spawned with `tokio::spawn`
//! (ballista-core `shuffle_writer.rs`, and likewise the sort and range
//! writers), and the executor drives the writer's partitions from detached
//! tasks too (ballista-executor `execution_engine.rs`,
//! `drive_shuffle_writer_stage`), so upstream the work went on to the end of
//! the task while the slot was handed to the next one. Ember's vendored
//! copies stop both once nobody waits for the result (`vendor/README.md`),
//! and this test checks the executors' CPU time falls to idle.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_core::jobs_api::JobProgress;
use ember_core::{ClusterTarget, EmberContext};
use ember_jobs::error::JobsError;
use ember_jobs::sql::SqlRunner;
use ember_tests::cluster::TestCluster;
use tokio::sync::watch;

/// Hours of work on two cores: 10^10 pairs per branch, each hashed.
const CPU_BOUND: &str = "\
SELECT sum(length(md5(CAST(a.value * b.value AS VARCHAR)))) \
FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b \
UNION ALL \
SELECT sum(length(md5(CAST(a.value + b.value AS VARCHAR)))) \
FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b";

/// Failure limits, not timings: how long the job may take to start its
/// tasks, and how long after the cancel each effect may take.
const START_BOUND: Duration = Duration::from_secs(60);
const STOP_BOUND: Duration = Duration::from_secs(10);
const FOLLOW_UP_BOUND: Duration = Duration::from_secs(30);
/// CPU an idle executor may use in one second (heartbeats, metrics).
const IDLE_CPU_PER_SECOND: Duration = Duration::from_millis(200);

/// The cluster's executor processes, `(name, pid)`, found by Flight port.
fn executor_pids(cluster: &TestCluster) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if !args.first().is_some_and(|a| a.ends_with("ember-executor")) {
            continue;
        }
        let port = args
            .iter()
            .position(|a| a == "--flight-port")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| p.parse::<u16>().ok());
        if let Some(name) = port.and_then(|p| cluster.executor_named_by_port(p)) {
            found.push((name, pid));
        }
    }
    found.sort();
    found
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user + system) the processes have used so far.
fn cpu_time(pids: &[(String, u32)]) -> Duration {
    let ticks: u64 = pids
        .iter()
        .map(|(_, pid)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // utime and stime: fields 14 and 15, the 12th and 13th after the
            // command name (which is in parentheses and may hold spaces).
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

/// CPU the processes use over the next `window`.
async fn cpu_over(pids: &[(String, u32)], window: Duration) -> Duration {
    let before = cpu_time(pids);
    tokio::time::sleep(window).await;
    cpu_time(pids).saturating_sub(before)
}

/// The executors running a task of `job_id` (by Ballista executor id).
async fn executors_running(cluster: &TestCluster, job_id: &str) -> BTreeSet<String> {
    let url = format!("/api/ember/job/{job_id}");
    let Some(progress) = cluster.get_json::<JobProgress>(&url).await else {
        return BTreeSet::new();
    };
    progress
        .stages
        .iter()
        .flat_map(|s| s.tasks.iter())
        .filter(|t| t.status == "Running")
        .filter_map(|t| t.executor_id.clone())
        .collect()
}

async fn running_job(cluster: &TestCluster) -> Option<String> {
    let jobs: Vec<serde_json::Value> = cluster.get_json("/api/jobs").await?;
    jobs.iter()
        .find(|j| j["status"].as_str() == Some("Running"))
        .and_then(|j| j["job_id"].as_str().map(str::to_string))
}

/// What was measured after the cancel.
#[derive(Debug)]
struct Figures {
    /// Executors' CPU in the second before the cancel.
    busy_cpu_per_second: Duration,
    /// Cancel until the query returned `Cancelled`.
    query_returned: Duration,
    /// Cancel until every executor logged its task aborted and finished.
    tasks_aborted: Option<Duration>,
    /// Cancel until the executors' CPU use fell to idle, if it did within
    /// [`STOP_BOUND`].
    cpu_idle: Option<Duration>,
    /// Executors' CPU in the last second measured.
    last_cpu_per_second: Duration,
    /// How long the follow-up query took.
    follow_up: Duration,
}

/// Starts the CPU-bound job on a fresh two-executor cluster, cancels it
/// once both executors run its tasks, and measures what follows.
async fn cancel_a_cpu_bound_job() -> Figures {
    let cluster = TestCluster::start(2, &[], &[])
        .await
        .expect("start a cluster of two single-core executors");
    let pids = executor_pids(&cluster);
    assert_eq!(pids.len(), 2, "executor processes: {pids:?}");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = Arc::new(EmberContext::connect(target).await.expect("connect"));

    let (cancel, cancelled) = watch::channel(false);
    let query = {
        let ember = Arc::clone(&ember);
        tokio::spawn(async move {
            SqlRunner::new(&ember, false)
                .with_cancel(cancelled)
                .query(CPU_BOUND)
                .await
        })
    };

    // Both executors run a task of the job, and burn CPU.
    let submitted = Instant::now();
    let job_id = loop {
        assert!(!query.is_finished(), "the query ended: {:?}", query.await);
        assert!(submitted.elapsed() < START_BOUND, "the job never ran");
        if let Some(job) = running_job(&cluster).await
            && executors_running(&cluster, &job).await.len() == 2
        {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let busy_cpu_per_second = cpu_over(&pids, Duration::from_secs(1)).await;
    assert!(
        busy_cpu_per_second > Duration::from_millis(500),
        "the executors are not busy: {busy_cpu_per_second:?} CPU in 1 s"
    );

    // Cancel as a pipeline step timeout does.
    let cancelled_at = Instant::now();
    cancel.send(true).unwrap();
    let outcome = tokio::time::timeout(STOP_BOUND, query)
        .await
        .expect("the cancelled query returns")
        .expect("query task");
    let query_returned = cancelled_at.elapsed();
    match outcome {
        Err(JobsError::Cancelled(Some(id))) => assert_eq!(id, job_id),
        other => panic!("expected the job to be cancelled, got {other:?}"),
    }
    let status: serde_json::Value = cluster
        .get_json(&format!("/api/job/{job_id}"))
        .await
        .expect("job status");
    let job_status = status["job_status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        job_status.to_lowercase().contains("cancel"),
        "job {job_id}: {job_status}"
    );

    // Each executor aborts its task, and CPU use falls to idle (or not).
    let mut tasks_aborted = None;
    let mut cpu_idle = None;
    let mut last_cpu_per_second = Duration::ZERO;
    while cancelled_at.elapsed() < STOP_BOUND {
        last_cpu_per_second = cpu_over(&pids, Duration::from_secs(1)).await;
        if tasks_aborted.is_none()
            && pids
                .iter()
                .all(|(name, _)| aborted(&cluster, name, &job_id))
        {
            tasks_aborted = Some(cancelled_at.elapsed());
        }
        if cpu_idle.is_none() && last_cpu_per_second <= IDLE_CPU_PER_SECOND {
            cpu_idle = Some(cancelled_at.elapsed());
        }
        if cpu_idle.is_some() && tasks_aborted.is_some() {
            break;
        }
    }

    // The cluster takes the next query.
    let started = Instant::now();
    let rows = tokio::time::timeout(
        FOLLOW_UP_BOUND,
        SqlRunner::new(&ember, false).query("SELECT count(*) FROM generate_series(1, 1000)"),
    )
    .await
    .expect("the follow-up query finishes")
    .expect("the follow-up query succeeds");
    assert_eq!(ember_tests::sql::row_count(&rows), 1);
    let figures = Figures {
        busy_cpu_per_second,
        query_returned,
        tasks_aborted,
        cpu_idle,
        last_cpu_per_second,
        follow_up: started.elapsed(),
    };
    let secs = |d: Option<Duration>| {
        d.map_or("not within the bound".into(), |d| {
            format!("{:.2} s", d.as_secs_f64())
        })
    };
    eprintln!(
        "job {job_id} ({job_status}): executors used {:.2} s CPU per second before the cancel; \
         after it the query returned in {:.2} s, both tasks were aborted after {}, \
         CPU fell to idle after {} (last second: {:.2} s CPU), \
         and a follow-up query took {:.2} s",
        figures.busy_cpu_per_second.as_secs_f64(),
        figures.query_returned.as_secs_f64(),
        secs(figures.tasks_aborted),
        secs(figures.cpu_idle),
        figures.last_cpu_per_second.as_secs_f64(),
        figures.follow_up.as_secs_f64(),
    );
    figures
}

/// Whether executor `name` logged a task of `job_id` aborted and finished.
fn aborted(cluster: &TestCluster, name: &str, job_id: &str) -> bool {
    let log = std::fs::read_to_string(cluster.log(&format!("{name}.log"))).unwrap_or_default();
    log.contains("Task has been aborted!")
        && log.contains(&format!("Finished task : [TID {job_id}/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_stops_on_the_executors_and_the_cluster_takes_the_next_query() {
    let figures = cancel_a_cpu_bound_job().await;
    assert!(
        figures.tasks_aborted.is_some(),
        "an executor did not abort its task within {} s: {figures:?}",
        STOP_BOUND.as_secs()
    );
    assert!(
        figures.cpu_idle.is_some(),
        "the executors still use {:?} CPU per second {} s after the cancel: {figures:?}",
        figures.last_cpu_per_second,
        STOP_BOUND.as_secs()
    );
}
