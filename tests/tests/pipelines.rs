//! Pipelines as a user runs them: `ember run`, `ember runs`, `--resume`,
//! `ember backfill`, the scheduler, contracts and injected faults, embedded
//! and on the two-executor cluster.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ember_core::ClusterTarget;
use ember_jobs::history::{History, RunState, StepState};
use ember_jobs::pipeline::RunOptions;
use ember_jobs::pipeline::scheduler::{Clock, Scheduler};
use ember_tests::Mode;
use ember_tests::command::{ember, stderr, stdout};
use ember_tests::data::nums_table;
use serde_json::Value;

/// A work directory with the `nums` table (n = 1..=300, s = 's<n>').
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        nums_table(dir.path());
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn history(&self) -> PathBuf {
        self.path().join("history.sqlite")
    }

    fn write_pipeline(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            text.replace("NUMS", &self.path().join("nums").display().to_string()),
        )
        .unwrap();
        path
    }

    fn run(&self, mode: Mode, pipeline: &Path, extra: &[&str]) -> (Output, Value) {
        let history = self.history();
        let output_dir = self.path().join("output");
        let mut args = vec![
            "run",
            pipeline.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
            "--output-dir",
            output_dir.to_str().unwrap(),
            "--no-progress",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let output = ember(mode, &args);
        let report = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
        (output, report)
    }

    fn show(&self, run: i64) -> Value {
        let history = self.history();
        let output = ember(
            Mode::Embedded,
            &[
                "runs",
                "show",
                &run.to_string(),
                "--history",
                history.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    }

    fn rows(&self, relative: &str) -> usize {
        let dir = self.path().join("output").join(relative);
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).unwrap();
                let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
                total += parquet::file::reader::FileReader::metadata(&reader)
                    .file_metadata()
                    .num_rows() as usize;
            }
        }
        total
    }
}

fn step<'a>(details: &'a Value, name: &str) -> &'a Value {
    details["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {details}"))
}

fn attempts_of<'a>(details: &'a Value, name: &str) -> Vec<&'a Value> {
    details["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["step"] == name)
        .collect()
}

const FLAKY: &str = r#"
name = "flaky"
[tables.nums]
path = "NUMS"

# Fails on attempts 1 and 2 (1 / (attempt / 3) divides by zero), succeeds on 3.
[[step]]
name = "flaky"
retries = 2
retry_delay = "10ms"
[step.sql]
output = "doubled"
partition_by_date = true
query = "SELECT n, n * 2 AS m FROM nums WHERE 1 / ({{ attempt }} / 3) = 1"

[[step]]
name = "count"
depends_on = ["flaky"]
[step.check]
table = "doubled"
expect = { min_rows = 300, max_rows = 300, assert = ["m = 2 * n"] }
"#;

fn a_step_that_fails_twice_is_retried_and_the_run_succeeds(mode: Mode) {
    let work = Work::new();
    let pipeline = work.write_pipeline("flaky", FLAKY);
    let (output, report) = work.run(mode, &pipeline, &["--ds", "2026-11-01"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(report["state"], "succeeded", "{report}");
    let details = work.show(report["run_id"].as_i64().unwrap());
    let attempts = attempts_of(&details, "flaky");
    let states: Vec<&str> = attempts
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["failed", "failed", "succeeded"], "{details}");
    let first_error = attempts[0]["error"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace(' ', "");
    assert!(first_error.contains("dividebyzero"), "{details}");
    assert_eq!(step(&details, "flaky")["attempts"], 3);
    assert_eq!(step(&details, "count")["state"], "succeeded");
    assert_eq!(work.rows("doubled/ds=2026-11-01"), 300);
}

#[test]
fn retries_embedded() {
    a_step_that_fails_twice_is_retried_and_the_run_succeeds(Mode::Embedded);
}

#[test]
fn retries_on_the_cluster() {
    a_step_that_fails_twice_is_retried_and_the_run_succeeds(Mode::Cluster);
}

#[test]
fn rerunning_a_date_replaces_its_output_and_other_dates_are_kept() {
    let work = Work::new();
    let pipeline = work.write_pipeline("flaky", &FLAKY.replace("{{ attempt }}", "3"));
    for ds in ["2026-11-01", "2026-11-01", "2026-11-02"] {
        let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", ds]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(
        work.rows("doubled/ds=2026-11-01"),
        300,
        "a re-run must replace, not append"
    );
    assert_eq!(work.rows("doubled/ds=2026-11-02"), 300);
    let visible: Vec<String> = std::fs::read_dir(work.path().join("output/doubled"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let mut visible = visible;
    visible.sort();
    assert_eq!(
        visible,
        vec!["ds=2026-11-01", "ds=2026-11-02"],
        "nothing else is left behind"
    );
}

const SLOW: &str = r#"
name = "slow"
[tables.nums]
path = "NUMS"

[[step]]
name = "quick"
[step.sql]
output = "first"
query = "SELECT n FROM nums"

[[step]]
name = "slow"
depends_on = ["quick"]
timeout = "3s"
[step.sql]
output = "second"
query = "SLOW_QUERY"

[[step]]
name = "report"
depends_on = ["slow"]
[step.check]
table = "second"
expect = { min_rows = 1 }
"#;

/// Four billion pairs: several times the 3 s timeout. (A cancelled job
/// stops at once on the scheduler, and its tasks stop computing on the
/// executors within seconds: see docs/engine.md, "Cancellation".)
const TOO_SLOW: &str = "SELECT a.value AS n FROM generate_series(1, 200000) a CROSS JOIN generate_series(1, 20000) b WHERE a.value * b.value = -1";

#[test]
fn a_timed_out_step_has_its_job_cancelled_downstream_skipped_and_resume_completes_the_run() {
    let work = Work::new();
    let pipeline = work.write_pipeline("slow", &SLOW.replace("SLOW_QUERY", TOO_SLOW));
    let started = std::time::Instant::now();
    let (output, report) = work.run(Mode::Cluster, &pipeline, &["--ds", "2026-11-01"]);
    assert!(!output.status.success(), "the run must fail");
    assert!(
        started.elapsed().as_secs() < 60,
        "the timeout must stop the step"
    );
    assert_eq!(report["state"], "failed", "{report}");
    let run = report["run_id"].as_i64().unwrap();
    let details = work.show(run);
    assert_eq!(step(&details, "quick")["state"], "succeeded");
    assert_eq!(step(&details, "slow")["state"], "timed_out", "{details}");
    assert!(
        step(&details, "slow")["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 3s"),
        "{details}"
    );
    assert_eq!(step(&details, "report")["state"], "skipped");
    assert!(
        stderr(&output).contains(&format!("--resume {run}")),
        "{}",
        stderr(&output)
    );

    // The job was cancelled on the scheduler, not abandoned.
    let message = stderr(&output);
    let job = message
        .split("cancelled job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job was cancelled: {message}"));
    let status: Value = http_get_json(&format!(
        "{}/api/job/{job}",
        ember_tests::cluster::shared().http()
    ));
    assert_ne!(
        status["status"], "Running",
        "job {job} still runs after the timeout: {status}"
    );
    assert!(
        status["job_status"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("cancel"),
        "{status}"
    );

    // Fix the step, resume: only the failed and skipped steps run.
    std::fs::write(
        &pipeline,
        std::fs::read_to_string(&pipeline)
            .unwrap()
            .replace(TOO_SLOW, "SELECT n * 10 AS n FROM first")
            .replace("\"3s\"", "\"120s\""),
    )
    .unwrap();
    let history = work.history();
    let output = ember(
        Mode::Cluster,
        &[
            "run",
            "--resume",
            &run.to_string(),
            "--history",
            history.to_str().unwrap(),
            "--output-dir",
            work.path().join("output").to_str().unwrap(),
            "--no-progress",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let resumed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let details = work.show(resumed["run_id"].as_i64().unwrap());
    assert_eq!(details["summary"]["state"], "succeeded");
    assert_eq!(details["resumed_from"], run);
    assert_eq!(
        step(&details, "quick")["attempts"],
        0,
        "a succeeded step is kept, not re-run"
    );
    assert_eq!(step(&details, "slow")["attempts"], 1);
    assert_eq!(step(&details, "report")["state"], "succeeded");
    assert_eq!(work.rows("second"), 300);
}

fn http_get_json(url: &str) -> Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

const KILLABLE: &str = r#"
name = "killable"
[params]
slow = "0"
[tables.nums]
path = "NUMS"

[[step]]
name = "big"
[step.sql]
output = "big"
query = """
SELECT n, s FROM nums WHERE {{ slow }} = 0
UNION ALL
SELECT a.value AS n, 'x' AS s FROM generate_series(1, 200000) a CROSS JOIN generate_series(1, 200000) b
WHERE {{ slow }} = 1
"""
"#;

#[test]
fn a_run_killed_mid_write_leaves_the_previous_output_intact() {
    let work = Work::new();
    let pipeline = work.write_pipeline("killable", KILLABLE);
    let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-01"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(work.rows("big"), 300);
    let before: Vec<String> = names(&work.path().join("output/big"));

    let history = work.history();
    let mut child = KillOnDrop(
        std::process::Command::new(ember_jobs::cluster::launch::find_binary("ember").unwrap())
            .args([
                "run",
                pipeline.to_str().unwrap(),
                "--history",
                history.to_str().unwrap(),
                "--output-dir",
                work.path().join("output").to_str().unwrap(),
                "--no-progress",
                "--param",
                "slow=1",
                "--ds",
                "2026-11-01",
            ])
            .env_remove("EMBER_CLUSTER")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until the step runs, then kill the whole process.
    let store = History::open(&history).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let runs = store.list_runs(Some("killable"), 1).unwrap();
        if let Some(run) = runs.first()
            && run.state == RunState::Running
            && store
                .run(run.id)
                .unwrap()
                .steps
                .iter()
                .any(|s| s.state == StepState::Running)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second run never started its step"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The new output is being written, to a hidden staging directory.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !names(&work.path().join("output"))
        .iter()
        .any(|n| n.starts_with(".big.ember-staging-"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    assert_eq!(work.rows("big"), 300, "the previous output must be intact");
    assert_eq!(
        names(&work.path().join("output/big")),
        before,
        "no partial files inside the output"
    );
    let visible: Vec<String> = names(&work.path().join("output"))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, vec!["big"], "no partial output visible next to it");

    // The next look at the history marks the killed run.
    let output = ember(
        Mode::Embedded,
        &[
            "runs",
            "list",
            "--history",
            history.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let runs: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(runs[0]["state"], "killed", "{runs}");
}

/// A child process killed when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

const CONTRACT: &str = r#"
name = "contract"
[tables.nums]
path = "NUMS"
[tables.nums.expect]
columns = { n = "Int64", s = "string" }

[[step]]
name = "copy"
[step.sql]
output = "copy"
query = "SELECT * FROM nums"
"#;

#[test]
fn a_changed_or_missing_column_fails_the_contract_naming_it() {
    let work = Work::new();
    let pipeline = work.write_pipeline("contract", CONTRACT);
    let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-01"]);
    assert!(output.status.success(), "{}", stderr(&output));

    // Upstream changes `n` to text.
    let nums = work.path().join("nums");
    std::fs::remove_dir_all(&nums).unwrap();
    std::fs::create_dir_all(&nums).unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("s", arrow::datatypes::DataType::Utf8, false),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow::array::StringArray::from(vec!["1"])),
            Arc::new(arrow::array::StringArray::from(vec!["a"])),
        ],
    )
    .unwrap();
    ember_tests::data::write_parquet(&nums.join("part-0.parquet"), &batch);
    let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-02"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("column 'n' of table 'nums' has type Utf8")
            && message.contains("expected Int64"),
        "{message}"
    );
    assert_eq!(work.rows("copy"), 300, "the previous output is kept");

    // A missing column is named too.
    std::fs::write(
        &pipeline,
        CONTRACT
            .replace("NUMS", &nums.display().to_string())
            .replace(
                "n = \"Int64\", s = \"string\"",
                "n = \"string\", s = \"string\", score = \"Float64\"",
            ),
    )
    .unwrap();
    let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-02"]);
    let message = stderr(&output);
    assert!(
        message.contains("has no column 'score' (expected Float64"),
        "{message}"
    );
}

#[test]
fn malformed_cyclic_and_dangling_pipelines_are_rejected_before_anything_runs() {
    let work = Work::new();
    let cases = [
        (
            "typo",
            FLAKY.replace("depends_on", "depends_om"),
            vec!["depends_om", "line 18, column 1"],
        ),
        (
            "cycle",
            FLAKY.replace(
                "name = \"flaky\"\nretries",
                "name = \"flaky\"\ndepends_on = [\"count\"]\nretries",
            ),
            vec!["cycle", "flaky -> count -> flaky"],
        ),
        (
            "dangling",
            FLAKY.replace("depends_on = [\"flaky\"]", "depends_on = [\"flakey\"]"),
            vec!["depends on 'flakey'", "not a step"],
        ),
    ];
    for (name, text, wanted) in cases {
        let pipeline = work.write_pipeline(name, &text);
        let (output, _) = work.run(Mode::Embedded, &pipeline, &[]);
        assert!(!output.status.success(), "{name} must be rejected");
        let message = stderr(&output);
        for w in wanted {
            assert!(message.contains(w), "{name}: expected '{w}' in: {message}");
        }
    }
    let output = ember(
        Mode::Embedded,
        &[
            "runs",
            "list",
            "--history",
            work.history().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(stdout(&output).trim(), "[]", "nothing ran");
    assert!(!work.path().join("output").exists(), "nothing was written");
}

#[test]
fn a_failed_run_calls_the_on_failure_hook_with_the_run_as_json() {
    let work = Work::new();
    let alert = work.path().join("alert.json");
    let text = FLAKY.replace("retries = 2", "retries = 0").replacen(
        "name = \"flaky\"\n",
        &format!(
            "name = \"flaky\"\non_failure = {{ command = \"cat > '{}'\" }}\n",
            alert.display()
        ),
        1,
    );
    let pipeline = work.write_pipeline("hooked", &text);
    let (output, report) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-03"]);
    assert!(!output.status.success());
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
    assert_eq!(sent["state"], "failed");
    assert_eq!(sent["pipeline"], "flaky");
    assert_eq!(sent["ds"], "2026-11-03");
    assert_eq!(sent["run_id"], report["run_id"]);
    assert!(
        sent["error"]
            .as_str()
            .unwrap()
            .contains("step 'flaky' failed"),
        "{sent}"
    );
}

#[test]
fn backfill_runs_every_date_of_the_range() {
    let work = Work::new();
    let pipeline = work.write_pipeline("flaky", &FLAKY.replace("{{ attempt }}", "3"));
    let history = work.history();
    let output = ember(
        Mode::Embedded,
        &[
            "backfill",
            pipeline.to_str().unwrap(),
            "--from",
            "2026-10-30",
            "--to",
            "2026-11-01",
            "--history",
            history.to_str().unwrap(),
            "--output-dir",
            work.path().join("output").to_str().unwrap(),
            "--no-progress",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    for ds in ["2026-10-30", "2026-10-31", "2026-11-01"] {
        assert_eq!(work.rows(&format!("doubled/ds={ds}")), 300);
    }
    let output = ember(
        Mode::Embedded,
        &[
            "runs",
            "list",
            "--history",
            history.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let runs: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let triggers: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, vec!["backfill"; 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_due_dates_and_catches_up_after_downtime() {
    let work = Work::new();
    let text = FLAKY.replace("{{ attempt }}", "3").replacen(
        "name = \"flaky\"\n",
        "name = \"flaky\"\nschedule = { cron = \"0 2 * * *\", timezone = \"Europe/Berlin\", catchup = \"all\" }\n",
        1,
    );
    let dir = work.path().join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("flaky.toml"),
        text.replace("NUMS", &work.path().join("nums").display().to_string()),
    )
    .unwrap();
    let now: Arc<Mutex<DateTime<Utc>>> =
        Arc::new(Mutex::new("2026-11-20T12:00:00Z".parse().unwrap()));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || *now.lock().unwrap())
    };
    let history = Arc::new(History::open(&work.history()).unwrap());
    let template = RunOptions {
        output_dir: Some(work.path().join("output")),
        live: false,
        quiet: true,
        ..RunOptions::manual(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
    };
    let mut scheduler = Scheduler::new(
        &dir,
        ClusterTarget::Embedded,
        Arc::clone(&history),
        clock,
        template,
    );

    // First sight: nothing is backfilled.
    assert!(scheduler.tick().await.unwrap().is_empty());
    // 02:00 Berlin = 01:00 UTC; at 01:00:30 on the 21st the run for the 20th is due.
    *now.lock().unwrap() = "2026-11-21T01:00:30Z".parse().unwrap();
    let runs = scheduler.tick().await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.ds.as_str()).collect::<Vec<_>>(),
        vec!["2026-11-20"]
    );
    assert!(runs[0].succeeded());
    // Nothing more the same day.
    *now.lock().unwrap() = "2026-11-21T09:00:00Z".parse().unwrap();
    assert!(scheduler.tick().await.unwrap().is_empty());
    // Three days of downtime: `catchup = "all"` makes up every missed date, oldest first.
    *now.lock().unwrap() = "2026-11-24T03:00:00Z".parse().unwrap();
    let runs = scheduler.tick().await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.ds.as_str()).collect::<Vec<_>>(),
        vec!["2026-11-21", "2026-11-22", "2026-11-23"]
    );
    let listed = history.list_runs(Some("flaky"), 10).unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|r| r.state == RunState::Succeeded));
    assert_eq!(
        history.last_scheduled("flaky").unwrap(),
        Some("2026-11-24T01:00:00Z".parse().unwrap())
    );
}

/// The churn example end to end on small generated data: embedded and on
/// the cluster, with identical outputs.
#[test]
fn the_churn_pipeline_gives_identical_outputs_embedded_and_on_the_cluster() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("churn");
    let output = ember(
        Mode::Embedded,
        &[
            "demo",
            "churn",
            "--dir",
            dir.to_str().unwrap(),
            "--customers",
            "2500",
            "--generate-only",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let pipeline = dir.join("churn.toml");
    let data = format!("data_dir={}", dir.join("data").display());
    let mut results = Vec::new();
    for mode in [Mode::Embedded, Mode::Cluster] {
        let out = work.path().join(format!("out-{mode:?}"));
        let history = work.path().join("history.sqlite");
        let output = ember(
            mode,
            &[
                "run",
                pipeline.to_str().unwrap(),
                "--ds",
                "2026-11-01",
                "--param",
                &data,
                "--param",
                "rounds=20",
                "--param",
                "min_auc=0.6",
                "--output-dir",
                out.to_str().unwrap(),
                "--history",
                history.to_str().unwrap(),
                "--no-progress",
                "--format",
                "json",
            ],
        );
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
        results.push(out);
    }
    for table in [
        "labels/ds=2026-11-01",
        "train_features",
        "metrics/ds=2026-11-01",
        "scores/ds=2026-11-01",
    ] {
        let a = sorted_rows(&results[0].join(table));
        let b = sorted_rows(&results[1].join(table));
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a, b, "{table} differs between embedded and cluster");
    }
    let model_a =
        std::fs::read_to_string(results[0].join("models/train/ds=2026-11-01/model.json")).unwrap();
    let model_b =
        std::fs::read_to_string(results[1].join("models/train/ds=2026-11-01/model.json")).unwrap();
    let strip = |m: &str| {
        let mut v: Value = serde_json::from_str(m).unwrap();
        v["learner"]["attributes"]
            .as_object_mut()
            .map(|a| a.remove("ember_version"));
        v
    };
    assert_eq!(strip(&model_a), strip(&model_b), "the models differ");
}

/// Every row of a Parquet directory as text, sorted.
fn sorted_rows(dir: &Path) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_parquet("t", &format!("{}/", dir.display()), Default::default())
            .await
            .unwrap();
        let batches = ctx
            .sql("SELECT * FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    })
}

const RUN_TIMEOUT: &str = r#"
name = "deadline"
timeout = "5s"
[tables.nums]
path = "NUMS"

[[step]]
name = "slow"
[step.sql]
output = "slow"
query = "TOO_SLOW"

[[step]]
name = "after"
depends_on = ["slow"]
[step.check]
table = "slow"
expect = { min_rows = 0 }

[[step]]
name = "independent"
[step.sql]
output = "copy"
query = "SELECT * FROM nums"
"#;

#[test]
fn the_run_level_timeout_cancels_running_steps_and_skips_the_rest() {
    let work = Work::new();
    let pipeline = work.write_pipeline("deadline", &RUN_TIMEOUT.replace("TOO_SLOW", TOO_SLOW));
    let started = std::time::Instant::now();
    let (output, report) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-01"]);
    assert!(!output.status.success());
    assert!(
        started.elapsed().as_secs() < 30,
        "the run timeout must stop the run"
    );
    assert_eq!(report["state"], "timed_out", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("exceeded its timeout of 5s"),
        "{report}"
    );
    let details = work.show(report["run_id"].as_i64().unwrap());
    assert_eq!(step(&details, "slow")["state"], "timed_out", "{details}");
    assert_eq!(step(&details, "after")["state"], "skipped");
    assert_eq!(
        step(&details, "independent")["state"],
        "succeeded",
        "independent branches run"
    );
    assert!(
        stderr(&output).contains("cancelled job"),
        "{}",
        stderr(&output)
    );
}

const DRIFT: &str = r#"
name = "drift"
[params]
shift = "0"
[tables.nums]
path = "NUMS"

[[step]]
name = "train_set"
[step.sql]
output = "train_set"
query = "SELECT CAST(n AS DOUBLE) AS x, CAST(n % 2 AS DOUBLE) AS y FROM nums"

[[step]]
name = "fresh"
[step.sql]
output = "fresh"
query = "SELECT CAST(n + {{ shift }} AS DOUBLE) AS x FROM nums"

[[step]]
name = "train"
depends_on = ["train_set"]
[step.train]
input = "train_set"
label = "y"
features = ["x"]
model = "linear"

[[step]]
name = "score"
depends_on = ["train", "fresh", "train_set"]
[step.score]
model = "train"
input = "fresh"
output = "scores"
[step.score.drift]
baseline = "train_set"
"#;

#[test]
fn drift_between_training_and_scoring_rows_fails_the_score_step_naming_the_column() {
    let work = Work::new();
    let pipeline = work.write_pipeline("drift", DRIFT);
    let (output, report) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-01"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let details = work.show(report["run_id"].as_i64().unwrap());
    let psi = details["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "drift_psi")
        .unwrap();
    let values: Value = serde_json::from_str(psi["value"].as_str().unwrap()).unwrap();
    assert_eq!(values[0]["column"], "x");
    assert!(
        values[0]["psi"].as_f64().unwrap() < 1e-9,
        "same rows, no drift: {values}"
    );

    let before = sorted_rows(&work.path().join("output/scores"));
    // Half the scored rows move past the training range.
    let (output, _) = work.run(
        Mode::Embedded,
        &pipeline,
        &["--ds", "2026-11-02", "--param", "shift=150"],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("drift between 'train_set' and 'fresh' above 0.25: PSI x "),
        "{message}"
    );
    assert_eq!(
        sorted_rows(&work.path().join("output/scores")),
        before,
        "a failed step leaves the previous output"
    );
}

const CHECKED_OUTPUT: &str = r#"
name = "checked"
[params]
factor = "2"
[tables.nums]
path = "NUMS"

[[step]]
name = "double"
[step.sql]
output = "doubled"
query = "SELECT n, n * {{ factor }} AS m FROM nums"
[step.expect]
columns = { n = "Int64", m = "Int64" }
assert = ["m = 2 * n"]
"#;

#[test]
fn an_output_that_breaks_its_contract_is_never_published() {
    let work = Work::new();
    let pipeline = work.write_pipeline("checked", CHECKED_OUTPUT);
    let (output, _) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-01"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = sorted_rows(&work.path().join("output/doubled"));
    assert_eq!(before.len(), 300);

    let (output, _) = work.run(
        Mode::Embedded,
        &pipeline,
        &["--ds", "2026-11-02", "--param", "factor=3"],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("300 of 300 rows of table 'doubled' fail `m = 2 * n`; e.g. n="),
        "{message}"
    );
    assert_eq!(
        sorted_rows(&work.path().join("output/doubled")),
        before,
        "the checked-out output must not replace the good one"
    );
    let hidden: Vec<String> = names(&work.path().join("output"))
        .into_iter()
        .filter(|n| n.contains("staging"))
        .collect();
    assert!(
        hidden.is_empty(),
        "the rejected staging output is removed: {hidden:?}"
    );
}

#[test]
fn a_failed_run_posts_the_run_to_the_on_failure_url() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        // Read the head, then as many body bytes as Content-Length says.
        loop {
            let n = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).to_string()
    });
    let work = Work::new();
    let text = FLAKY.replace("retries = 2", "retries = 0").replacen(
        "name = \"flaky\"\n",
        &format!("name = \"flaky\"\non_failure = {{ url = \"{url}\" }}\n"),
        1,
    );
    let pipeline = work.write_pipeline("posted", &text);
    let (output, report) = work.run(Mode::Embedded, &pipeline, &["--ds", "2026-11-04"]);
    assert!(!output.status.success());
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /alerts"), "{request}");
    let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["state"], "failed");
    assert_eq!(sent["run_id"], report["run_id"]);
    assert!(
        stderr(&output).contains("on_failure hook ran"),
        "{}",
        stderr(&output)
    );
}
