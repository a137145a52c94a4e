//! Helpers for the history's unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

use std::path::Path;

use super::{Clock, History, NewRun, RunState, StepState, Trigger};

/// A clock that only moves when told, starting at 2024-05-01T00:00:00Z.
#[derive(Clone)]
pub(crate) struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub(crate) fn new() -> Self {
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        TestClock(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap()
    }

    pub(crate) fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub(crate) fn clock(&self) -> Clock {
        let this = self.clone();
        Arc::new(move || this.now())
    }
}

/// An in-memory history on a [`TestClock`].
pub(crate) fn memory() -> (History, TestClock) {
    let clock = TestClock::new();
    let history = History::open_in_memory_with_clock(clock.clock()).unwrap();
    (history, clock)
}

/// A manual run of `pipeline` for `ds`.
pub(crate) fn new_run(pipeline: &str, ds: &str) -> NewRun {
    NewRun {
        pipeline: pipeline.to_string(),
        pipeline_path: format!("pipelines/{pipeline}.toml"),
        ds: ds.to_string(),
        trigger: Trigger::Manual,
        resumed_from: None,
        scheduled_for: None,
        params_json: "{}".to_string(),
    }
}

/// Step names from string literals.
pub(crate) fn steps(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The pid of a process that has exited and been reaped.
pub(crate) fn dead_pid() -> i64 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    i64::from(child.id())
}

/// Runs [`child_process`] in a new process of this test binary, on the
/// history at `path`, in `mode`.
pub(crate) fn spawn_child(path: &Path, mode: &str, pipeline: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "history::testing::child_process",
            "--ignored",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_DB, path)
        .env(CHILD_MODE, mode)
        .env(CHILD_PIPELINE, pipeline)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child of [`spawn_child`], failing with its output if it failed.
pub(crate) fn wait_child(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "child process failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const CHILD_DB: &str = "EMBER_HISTORY_TEST_CHILD_DB";
const CHILD_MODE: &str = "EMBER_HISTORY_TEST_CHILD_MODE";
const CHILD_PIPELINE: &str = "EMBER_HISTORY_TEST_CHILD_PIPELINE";

/// Writes the way a runner process does: `write` records 10 whole runs;
/// `crash` starts a run and a step and exits without ending them.
#[test]
#[ignore = "run as a separate process by the multi-process tests"]
fn child_process() {
    let path = std::env::var_os(CHILD_DB).expect("started by spawn_child");
    let mode = std::env::var(CHILD_MODE).unwrap();
    let pipeline = std::env::var(CHILD_PIPELINE).unwrap();
    let h = History::open(Path::new(&path)).unwrap();
    let names = steps(&["s1", "s2"]);
    match mode.as_str() {
        "write" => {
            for _ in 0..10 {
                let id = h
                    .start_run(&new_run(&pipeline, "2024-05-01"), &names)
                    .unwrap();
                for step in &names {
                    h.set_step_state(id, step, StepState::Running, None)
                        .unwrap();
                    let n = h.start_attempt(id, step).unwrap();
                    h.finish_attempt(id, step, n, StepState::Succeeded, None, Some(1))
                        .unwrap();
                    h.set_step_state(id, step, StepState::Succeeded, None)
                        .unwrap();
                }
                h.finish_run(id, RunState::Succeeded, None).unwrap();
            }
        }
        "crash" => {
            let id = h
                .start_run(&new_run(&pipeline, "2024-05-01"), &names)
                .unwrap();
            h.set_step_state(id, "s1", StepState::Running, None)
                .unwrap();
            h.start_attempt(id, "s1").unwrap();
        }
        other => unreachable!("unknown child mode {other}"),
    }
}
