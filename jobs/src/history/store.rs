//! [`History`]: opening the database and recording a run as it goes.
//!
//! Reading runs back is in [`query`](super::query); marking runs whose
//! process died is in [`recovery`](super::recovery).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::error::{HistoryError, Result};
use super::model::{ArtifactKind, NewRun, RunId, RunState, StepState, decode_count, encode_time};
use super::process::ProcessId;
use super::schema;

/// Where the history reads the time: `Utc::now` outside tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How long a statement waits for another process's write to finish before
/// failing with `database is locked`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The run history: one SQLite database, shared by every Ember process that
/// opens the same file.
///
/// `History` is `Send + Sync`; every method takes `&self`, locks the one
/// connection for the length of a short statement or transaction, and never
/// holds it across an `.await`, so it can be shared as an `Arc<History>`
/// between the concurrently running steps of a pipeline.
pub struct History {
    pub(super) conn: Mutex<Connection>,
    pub(super) clock: Clock,
    /// This process, as recorded with the runs it starts.
    pub(super) process: ProcessId,
    path: PathBuf,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens (creating it and its parent directories if needed) the history
    /// at `path`, on the system clock.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_clock(path, Arc::new(Utc::now))
    }

    /// Opens the history at `path`, taking every timestamp from `clock`.
    ///
    /// The file is put in WAL mode (readers do not block the writer, and
    /// other processes can write between our statements), waits up to
    /// [`BUSY_TIMEOUT`] for another process's write, enforces foreign keys,
    /// and is migrated to the current schema.
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| HistoryError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::setup(conn, path, clock)
    }

    /// A history that lives in memory and is lost when dropped, on the
    /// system clock.
    pub fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with_clock(Arc::new(Utc::now))
    }

    /// A history in memory, taking every timestamp from `clock`.
    pub fn open_in_memory_with_clock(clock: Clock) -> Result<Self> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| HistoryError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::setup(conn, path, clock)
    }

    fn setup(mut conn: Connection, path: &Path, clock: Clock) -> Result<Self> {
        configure(&mut conn).map_err(|e| match e {
            // SQLite reads the file lazily: "file is not a database" and
            // permission errors surface here, not in `Connection::open`.
            HistoryError::Sqlite(source) => HistoryError::Open {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })?;
        Ok(History {
            conn: Mutex::new(conn),
            clock,
            process: ProcessId::current(),
            path: path.to_path_buf(),
        })
    }

    /// The database file (`:memory:` for an in-memory history).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a new run, `running` from now, recording this process's host
    /// and pid (see [`mark_dead_runs`](Self::mark_dead_runs)), with one
    /// `pending` step per name in `steps`, in that order.
    pub fn start_run(&self, run: &NewRun, steps: &[String]) -> Result<RunId> {
        if let Some(step) = first_duplicate(steps) {
            return Err(HistoryError::DuplicateStep {
                pipeline: run.pipeline.clone(),
                step: step.to_string(),
            });
        }
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(from) = run.resumed_from
            && !run_exists(&tx, from)?
        {
            return Err(HistoryError::RunNotFound(from));
        }
        tx.execute(
            "INSERT INTO runs (pipeline, pipeline_path, ds, triggered_by, state, resumed_from, \
             scheduled_for, params_json, host, pid, pid_start, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                run.pipeline,
                run.pipeline_path,
                run.ds,
                run.trigger.as_str(),
                RunState::Running.as_str(),
                run.resumed_from,
                run.scheduled_for.map(encode_time),
                run.params_json,
                self.process.host,
                self.process.pid,
                self.process.start,
                now,
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO steps (run_id, name, ordinal, state) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (ordinal, step) in (0_i64..).zip(steps) {
                insert.execute(params![id, step, ordinal, StepState::Pending.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// Records how the run ended (or, with [`RunState::Running`], that it is
    /// running again, clearing its end time).
    pub fn finish_run(&self, run: RunId, state: RunState, error: Option<&str>) -> Result<()> {
        let ended = state.is_terminal().then(|| self.now());
        let updated = self.lock().execute(
            "UPDATE runs SET state = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
            params![run, state.as_str(), ended, error],
        )?;
        if updated == 0 {
            return Err(HistoryError::RunNotFound(run));
        }
        Ok(())
    }

    /// Moves a step to `state` with `error` (`None` clears it).
    ///
    /// `running` sets the step's start time the first time only; a terminal
    /// state (succeeded, failed, timed out, skipped) sets its end time, and
    /// `pending` or `running` clears it.
    pub fn set_step_state(
        &self,
        run: RunId,
        step: &str,
        state: StepState,
        error: Option<&str>,
    ) -> Result<()> {
        let now = self.now();
        let started = (state == StepState::Running).then_some(now.as_str());
        let ended = state.is_terminal().then_some(now.as_str());
        let conn = self.lock();
        let updated = conn.execute(
            "UPDATE steps SET state = ?3, error = ?4, started_at = COALESCE(started_at, ?5), \
             ended_at = ?6 WHERE run_id = ?1 AND name = ?2",
            params![run, step, state.as_str(), error, started, ended],
        )?;
        if updated == 0 {
            return Err(missing_step(&conn, run, step)?);
        }
        Ok(())
    }

    /// Starts a new attempt of a step, `running` from now, and returns its
    /// number: 1 for the first attempt, then 2, ...; the step's attempt count
    /// becomes that number. The step's own state is left to
    /// [`set_step_state`](Self::set_step_state).
    pub fn start_attempt(&self, run: RunId, step: &str) -> Result<u32> {
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let attempt: Option<i64> = tx
            .query_row(
                "UPDATE steps SET attempts = attempts + 1 WHERE run_id = ?1 AND name = ?2 \
                 RETURNING attempts",
                params![run, step],
                |row| row.get(0),
            )
            .optional()?;
        let Some(attempt) = attempt else {
            return Err(missing_step(&tx, run, step)?);
        };
        tx.execute(
            "INSERT INTO attempts (run_id, step, attempt, state, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, step, attempt, StepState::Running.as_str(), now],
        )?;
        tx.commit()?;
        decode_count("steps", "attempts", attempt)
    }

    /// Records how an attempt ended, with the rows it wrote if known.
    pub fn finish_attempt(
        &self,
        run: RunId,
        step: &str,
        attempt: u32,
        state: StepState,
        error: Option<&str>,
        rows_written: Option<u64>,
    ) -> Result<()> {
        let ended = state.is_terminal().then(|| self.now());
        let rows = rows_written.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let conn = self.lock();
        let updated = conn.execute(
            "UPDATE attempts SET state = ?4, ended_at = ?5, error = ?6, rows_written = ?7 \
             WHERE run_id = ?1 AND step = ?2 AND attempt = ?3",
            params![run, step, attempt, state.as_str(), ended, error, rows],
        )?;
        if updated == 0 {
            if step_exists(&conn, run, step)? {
                return Err(HistoryError::AttemptNotFound {
                    run,
                    step: step.to_string(),
                    attempt,
                });
            }
            return Err(missing_step(&conn, run, step)?);
        }
        Ok(())
    }

    /// Records something a step produced: `value` is a path (outputs,
    /// models) or a JSON document (fitted feature parameters, metrics).
    pub fn record_artifact(
        &self,
        run: RunId,
        step: &str,
        kind: ArtifactKind,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let now = self.now();
        let conn = self.lock();
        let inserted = conn.execute(
            "INSERT INTO artifacts (run_id, step, kind, name, value, recorded_at) \
             SELECT run_id, name, ?3, ?4, ?5, ?6 FROM steps WHERE run_id = ?1 AND name = ?2",
            params![run, step, kind.as_str(), name, value, now],
        )?;
        if inserted == 0 {
            return Err(missing_step(&conn, run, step)?);
        }
        Ok(())
    }

    /// The connection. A panic while it was held leaves no half-done write
    /// behind (an open transaction rolls back when dropped), so a poisoned
    /// lock is still safe to use.
    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The clock's time as stored.
    pub(super) fn now(&self) -> String {
        encode_time((self.clock)())
    }
}

/// Connection settings and migrations, applied on every open.
fn configure(conn: &mut Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Returns the resulting mode: `memory` for an in-memory database.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // In WAL mode NORMAL never corrupts the file; a power loss may drop the
    // last commits, which for a run log is the right trade for fewer fsyncs.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    schema::migrate(conn)
}

fn first_duplicate(steps: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    steps
        .iter()
        .find(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
}

pub(super) fn run_exists(conn: &Connection, run: RunId) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM runs WHERE id = ?1", [run], |_| Ok(()))
        .optional()?
        .is_some())
}

fn step_exists(conn: &Connection, run: RunId, step: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM steps WHERE run_id = ?1 AND name = ?2",
            params![run, step],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The error for a (run, step) that matched no row: the run or the step is
/// missing.
fn missing_step(conn: &Connection, run: RunId, step: &str) -> Result<HistoryError> {
    Ok(if run_exists(conn, run)? {
        HistoryError::StepNotFound {
            run,
            step: step.to_string(),
        }
    } else {
        HistoryError::RunNotFound(run)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::history::model::{ArtifactRecord, AttemptRecord, RunSummary, StepRecord, Trigger};
    use crate::history::testing::{TestClock, memory, new_run, spawn_child, steps, wait_child};

    #[test]
    fn history_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<History>();
    }

    #[test]
    fn full_run_lifecycle_round_trips() {
        let (h, clock) = memory();
        let t0 = clock.now();
        let mut run = new_run("churn", "2024-05-01");
        run.trigger = Trigger::Schedule;
        run.scheduled_for = Some(Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap());
        run.params_json = r#"{"threshold":0.5}"#.to_string();
        let id = h.start_run(&run, &steps(&["features", "train"])).unwrap();

        let d = h.run(id).unwrap();
        assert_eq!(d.summary.state, RunState::Running);
        assert_eq!(d.summary.steps_total, 2);
        assert_eq!(d.summary.steps_succeeded, 0);
        assert!(
            d.steps
                .iter()
                .all(|s| s.state == StepState::Pending && s.attempts == 0)
        );

        clock.advance_ms(1_000);
        h.set_step_state(id, "features", StepState::Running, None)
            .unwrap();
        let a = h.start_attempt(id, "features").unwrap();
        clock.advance_ms(2_500);
        h.finish_attempt(id, "features", a, StepState::Succeeded, None, Some(42))
            .unwrap();
        h.set_step_state(id, "features", StepState::Succeeded, None)
            .unwrap();
        h.set_step_state(id, "train", StepState::Running, None)
            .unwrap();
        let a = h.start_attempt(id, "train").unwrap();
        clock.advance_ms(500);
        h.finish_attempt(id, "train", a, StepState::Succeeded, None, None)
            .unwrap();
        h.set_step_state(id, "train", StepState::Succeeded, None)
            .unwrap();
        h.record_artifact(
            id,
            "train",
            ArtifactKind::Model,
            "churn",
            "/models/churn.json",
        )
        .unwrap();
        clock.advance_ms(10);
        h.finish_run(id, RunState::Succeeded, None).unwrap();

        let d = h.run(id).unwrap();
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        assert_eq!(
            d.summary,
            RunSummary {
                id,
                pipeline: "churn".into(),
                ds: "2024-05-01".into(),
                trigger: Trigger::Schedule,
                state: RunState::Succeeded,
                started_at: t0,
                ended_at: Some(at(4_010)),
                duration: Duration::from_millis(4_010),
                steps_succeeded: 2,
                steps_total: 2,
                error: None,
            }
        );
        assert_eq!(d.pipeline_path, "pipelines/churn.toml");
        assert_eq!(d.params_json, r#"{"threshold":0.5}"#);
        assert_eq!(d.resumed_from, None);
        assert_eq!(d.scheduled_for, run.scheduled_for);
        assert_eq!(
            d.steps,
            vec![
                StepRecord {
                    name: "features".into(),
                    state: StepState::Succeeded,
                    attempts: 1,
                    started_at: Some(at(1_000)),
                    ended_at: Some(at(3_500)),
                    rows_written: Some(42),
                    error: None,
                },
                StepRecord {
                    name: "train".into(),
                    state: StepState::Succeeded,
                    attempts: 1,
                    started_at: Some(at(3_500)),
                    ended_at: Some(at(4_000)),
                    rows_written: None,
                    error: None,
                },
            ]
        );
        assert_eq!(
            d.attempts,
            vec![
                AttemptRecord {
                    step: "features".into(),
                    attempt: 1,
                    state: StepState::Succeeded,
                    started_at: at(1_000),
                    ended_at: Some(at(3_500)),
                    rows_written: Some(42),
                    error: None,
                },
                AttemptRecord {
                    step: "train".into(),
                    attempt: 1,
                    state: StepState::Succeeded,
                    started_at: at(3_500),
                    ended_at: Some(at(4_000)),
                    rows_written: None,
                    error: None,
                },
            ]
        );
        assert_eq!(
            d.artifacts,
            vec![ArtifactRecord {
                step: "train".into(),
                kind: ArtifactKind::Model,
                name: "churn".into(),
                value: "/models/churn.json".into(),
                recorded_at: at(4_000),
            }]
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["summary"]["state"], "succeeded");
        assert_eq!(json["steps"][0]["started_at"], "2024-05-01T00:00:01.000Z");
    }

    #[test]
    fn steps_keep_declaration_order() {
        let (h, _clock) = memory();
        let names = steps(&["zeta", "alpha", "mid", "beta"]);
        let id = h.start_run(&new_run("p", "2024-05-01"), &names).unwrap();
        let got: Vec<String> = h
            .run(id)
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(got, names);
    }

    #[test]
    fn attempts_are_numbered_per_step_and_counted() {
        let (h, clock) = memory();
        let id = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a", "b"]))
            .unwrap();
        assert_eq!(h.start_attempt(id, "a").unwrap(), 1);
        h.finish_attempt(id, "a", 1, StepState::Failed, Some("boom"), Some(5))
            .unwrap();
        assert_eq!(h.start_attempt(id, "b").unwrap(), 1);
        clock.advance_ms(100);
        assert_eq!(h.start_attempt(id, "a").unwrap(), 2);
        h.finish_attempt(id, "a", 2, StepState::TimedOut, Some("slow"), None)
            .unwrap();
        assert_eq!(h.start_attempt(id, "a").unwrap(), 3);
        h.finish_attempt(id, "a", 3, StepState::Succeeded, None, Some(7))
            .unwrap();

        let d = h.run(id).unwrap();
        assert_eq!(d.steps[0].attempts, 3);
        assert_eq!(d.steps[1].attempts, 1);
        // Rows of the last succeeded attempt, not of the failed first one.
        assert_eq!(d.steps[0].rows_written, Some(7));
        let seen: Vec<(&str, u32, StepState, Option<&str>)> = d
            .attempts
            .iter()
            .map(|a| (a.step.as_str(), a.attempt, a.state, a.error.as_deref()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("a", 1, StepState::Failed, Some("boom")),
                ("a", 2, StepState::TimedOut, Some("slow")),
                ("a", 3, StepState::Succeeded, None),
                ("b", 1, StepState::Running, None),
            ]
        );
        assert_eq!(d.attempts[3].ended_at, None);
        assert_eq!(d.attempts[1].ended_at, Some(clock.now()));
    }

    #[test]
    fn step_times_follow_its_states() {
        let (h, clock) = memory();
        let t0 = clock.now();
        let id = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
            .unwrap();
        h.set_step_state(id, "a", StepState::Running, None).unwrap();
        clock.advance_ms(1_000);
        h.set_step_state(id, "a", StepState::Failed, Some("boom"))
            .unwrap();
        let s = &h.run(id).unwrap().steps[0];
        assert_eq!((s.started_at, s.ended_at), (Some(t0), Some(clock.now())));
        assert_eq!(s.error.as_deref(), Some("boom"));
        // Running again keeps the first start, clears the end and the error.
        clock.advance_ms(1_000);
        h.set_step_state(id, "a", StepState::Running, None).unwrap();
        let s = &h.run(id).unwrap().steps[0];
        assert_eq!(
            (s.started_at, s.ended_at, s.error.as_deref()),
            (Some(t0), None, None)
        );
    }

    #[test]
    fn artifacts_are_kept_in_order_with_their_kind() {
        let (h, clock) = memory();
        let id = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["fit", "eval"]))
            .unwrap();
        let params = r#"{"scaler":{"mean":[1.0,2.0]}}"#;
        h.record_artifact(id, "fit", ArtifactKind::FeatureParams, "scaler", params)
            .unwrap();
        clock.advance_ms(5);
        h.record_artifact(
            id,
            "eval",
            ArtifactKind::Metrics,
            "holdout",
            r#"{"auc":0.91}"#,
        )
        .unwrap();
        h.record_artifact(
            id,
            "fit",
            ArtifactKind::Output,
            "features",
            "/data/features/ds=2024-05-01",
        )
        .unwrap();
        let d = h.run(id).unwrap();
        let got: Vec<(&str, ArtifactKind, &str, &str)> = d
            .artifacts
            .iter()
            .map(|a| (a.step.as_str(), a.kind, a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("fit", ArtifactKind::FeatureParams, "scaler", params),
                ("eval", ArtifactKind::Metrics, "holdout", r#"{"auc":0.91}"#),
                (
                    "fit",
                    ArtifactKind::Output,
                    "features",
                    "/data/features/ds=2024-05-01"
                ),
            ]
        );
        assert_eq!(d.artifacts[1].recorded_at, clock.now());
        let value: serde_json::Value = serde_json::from_str(&d.artifacts[0].value).unwrap();
        assert_eq!(value["scaler"]["mean"][1], 2.0);
    }

    #[test]
    fn unknown_runs_steps_and_attempts_are_errors() {
        let (h, _clock) = memory();
        let id = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
            .unwrap();
        assert!(matches!(
            h.finish_run(99, RunState::Failed, None),
            Err(HistoryError::RunNotFound(99))
        ));
        assert!(matches!(
            h.set_step_state(99, "a", StepState::Running, None),
            Err(HistoryError::RunNotFound(99))
        ));
        let err = h
            .set_step_state(id, "b", StepState::Running, None)
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::StepNotFound { run, step } if *run == id && step == "b")
        );
        assert!(matches!(
            h.start_attempt(id, "b"),
            Err(HistoryError::StepNotFound { .. })
        ));
        assert!(matches!(
            h.finish_attempt(id, "a", 1, StepState::Succeeded, None, None),
            Err(HistoryError::AttemptNotFound { attempt: 1, .. })
        ));
        assert!(matches!(
            h.record_artifact(id, "b", ArtifactKind::Model, "m", "/m"),
            Err(HistoryError::StepNotFound { .. })
        ));
        assert!(matches!(
            h.record_artifact(7, "a", ArtifactKind::Model, "m", "/m"),
            Err(HistoryError::RunNotFound(7))
        ));
        let err = h.run(42).unwrap_err();
        assert!(matches!(err, HistoryError::RunNotFound(42)));
        assert!(err.to_string().contains("ember runs list"), "{err}");
        // A failed start left no attempt behind.
        assert!(h.run(id).unwrap().attempts.is_empty());
    }

    #[test]
    fn duplicate_steps_and_unknown_resumed_runs_are_refused() {
        let (h, _clock) = memory();
        let err = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a", "b", "a"]))
            .unwrap_err();
        assert!(matches!(&err, HistoryError::DuplicateStep { step, .. } if step == "a"));
        let mut resume = new_run("p", "2024-05-01");
        resume.trigger = Trigger::Resume;
        resume.resumed_from = Some(5);
        assert!(matches!(
            h.start_run(&resume, &steps(&["a"])),
            Err(HistoryError::RunNotFound(5))
        ));
        assert!(h.list_runs(None, 10).unwrap().is_empty());

        let first = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
            .unwrap();
        resume.resumed_from = Some(first);
        let second = h.start_run(&resume, &steps(&["a"])).unwrap();
        let d = h.run(second).unwrap();
        assert_eq!(
            (d.resumed_from, d.summary.trigger),
            (Some(first), Trigger::Resume)
        );
    }

    #[test]
    fn open_creates_parent_directories_and_reopening_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("nested").join("history.db");
        let clock = TestClock::new();
        let id = {
            let h = History::open_with_clock(&path, clock.clock()).unwrap();
            let id = h
                .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
                .unwrap();
            h.finish_run(id, RunState::Succeeded, None).unwrap();
            id
        };
        assert!(path.exists());
        for _ in 0..2 {
            let h = History::open_with_clock(&path, clock.clock()).unwrap();
            assert_eq!(
                schema::version(&h.lock()).unwrap(),
                schema::latest_version()
            );
            let d = h.run(id).unwrap();
            assert_eq!(d.summary.state, RunState::Succeeded);
            assert_eq!(d.steps.len(), 1);
        }
        let mode: String = History::open(&path)
            .unwrap()
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        std::fs::write(
            &path,
            "this is not a database, it is a text file of some length",
        )
        .unwrap();
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(&err, HistoryError::Open { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("history.db"), "{err}");
    }

    #[test]
    fn two_handles_on_one_file_both_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let clock = TestClock::new();
        let a = Arc::new(History::open_with_clock(&path, clock.clock()).unwrap());
        let b = Arc::new(History::open_with_clock(&path, clock.clock()).unwrap());
        let workers: Vec<_> = [("from_a", Arc::clone(&a)), ("from_b", Arc::clone(&b))]
            .into_iter()
            .map(|(pipeline, h)| {
                std::thread::spawn(move || {
                    let names = steps(&["s1", "s2", "s3"]);
                    for i in 0..10 {
                        let id = h
                            .start_run(&new_run(pipeline, "2024-05-01"), &names)
                            .unwrap();
                        for step in &names {
                            h.set_step_state(id, step, StepState::Running, None)
                                .unwrap();
                            let n = h.start_attempt(id, step).unwrap();
                            h.finish_attempt(id, step, n, StepState::Succeeded, None, Some(i))
                                .unwrap();
                            h.set_step_state(id, step, StepState::Succeeded, None)
                                .unwrap();
                        }
                        h.finish_run(id, RunState::Succeeded, None).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        for h in [&a, &b] {
            let runs = h.list_runs(None, 100).unwrap();
            assert_eq!(runs.len(), 20);
            assert!(
                runs.iter()
                    .all(|r| r.state == RunState::Succeeded && r.steps_succeeded == 3)
            );
            assert_eq!(h.list_runs(Some("from_a"), 100).unwrap().len(), 10);
        }
    }

    #[test]
    fn two_processes_write_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let h = History::open(&path).unwrap();
        let children = [
            spawn_child(&path, "write", "child_a"),
            spawn_child(&path, "write", "child_b"),
        ];
        for _ in 0..10 {
            let id = h
                .start_run(&new_run("parent", "2024-05-01"), &steps(&["s"]))
                .unwrap();
            h.start_attempt(id, "s").unwrap();
            h.finish_run(id, RunState::Succeeded, None).unwrap();
        }
        for child in children {
            wait_child(child);
        }
        let runs = h.list_runs(None, 100).unwrap();
        assert_eq!(runs.len(), 30);
        assert!(runs.iter().all(|r| r.state == RunState::Succeeded));
        for pipeline in ["parent", "child_a", "child_b"] {
            assert_eq!(
                h.list_runs(Some(pipeline), 100).unwrap().len(),
                10,
                "{pipeline}"
            );
        }
        let pids: i64 = h
            .lock()
            .query_row("SELECT COUNT(DISTINCT pid) FROM runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pids, 3);
    }

    #[test]
    fn concurrent_steps_share_one_handle() {
        let (h, _clock) = memory();
        let h = Arc::new(h);
        let names: Vec<String> = (0..8).map(|i| format!("step_{i}")).collect();
        let id = h.start_run(&new_run("p", "2024-05-01"), &names).unwrap();
        let workers: Vec<_> = names
            .iter()
            .cloned()
            .map(|step| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        let n = h.start_attempt(id, &step).unwrap();
                        h.finish_attempt(id, &step, n, StepState::Failed, Some("retry"), None)
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let d = h.run(id).unwrap();
        assert!(d.steps.iter().all(|s| s.attempts == 3));
        assert_eq!(d.attempts.len(), 24);
    }

    #[test]
    fn corrupt_enum_text_is_reported_not_a_panic() {
        let (h, _clock) = memory();
        let id = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
            .unwrap();
        h.lock()
            .execute("UPDATE runs SET state = 'exploded' WHERE id = ?1", [id])
            .unwrap();
        let err = h.run(id).unwrap_err();
        assert!(
            matches!(&err, HistoryError::Corrupt { table: "runs", column: "state", value } if value == "exploded"),
            "{err:?}"
        );
        assert!(err.to_string().contains("runs.state"), "{err}");
        assert!(h.list_runs(None, 10).is_err());

        h.lock()
            .execute("UPDATE runs SET state = 'running'", [])
            .unwrap();
        h.lock()
            .execute("UPDATE steps SET state = 'Pending'", [])
            .unwrap();
        assert!(matches!(
            h.run(id),
            Err(HistoryError::Corrupt {
                table: "steps",
                column: "state",
                ..
            })
        ));
    }

    #[test]
    fn jobs_error_wraps_history_errors() {
        let err: crate::JobsError = HistoryError::RunNotFound(3).into();
        assert!(err.to_string().starts_with("run 3 not found"), "{err}");
    }
}
