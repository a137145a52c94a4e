//! Runs left `running` by a process that died.
//!
//! A runner killed with `SIGKILL`, by the OOM killer or a reboot records no
//! end, so its run would stay `running` forever. Any later process on the same
//! host calls [`History::mark_dead_runs`] (the pipeline runner does so before
//! it starts): a run whose recorded process is gone becomes
//! [`RunState::Killed`], and its unfinished steps and attempts `failed`.
//! Runs recorded on another host are left alone: their pid means nothing here.

use rusqlite::{Connection, TransactionBehavior, params};

use super::error::Result;
use super::model::{RunId, RunState, StepState};
use super::process::is_alive;
use super::store::History;

/// The error recorded on the steps and attempts of a killed run.
pub const PROCESS_DIED: &str = "process died";

impl History {
    /// Marks as [`RunState::Killed`] every `running` run recorded on this
    /// host whose process no longer exists (or whose pid now belongs to
    /// another process); their `running` and `pending` steps and `running`
    /// attempts become `failed` with the error [`PROCESS_DIED`]. Returns how
    /// many runs were marked.
    ///
    /// The end time recorded is the run's last recorded event (the last
    /// moment it is known to have been alive), so a run found days later does
    /// not show days of duration; the run's error says when it was found.
    pub fn mark_dead_runs(&self) -> Result<usize> {
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dead: Vec<(RunId, i64)> = {
            let mut stmt =
                tx.prepare("SELECT id, pid, pid_start FROM runs WHERE state = ?1 AND host = ?2")?;
            let rows = stmt.query_map(
                params![RunState::Running.as_str(), self.process.host],
                |row| {
                    Ok((
                        row.get::<_, RunId>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                    ))
                },
            )?;
            let mut dead = Vec::new();
            for row in rows {
                let (id, pid, start) = row?;
                if !is_alive(pid, start) {
                    dead.push((id, pid));
                }
            }
            dead
        };
        for (run, pid) in &dead {
            let ended = last_event(&tx, *run)?;
            let error = format!(
                "process {pid} on {} died before the run ended; found at {now}",
                self.process.host
            );
            tx.execute(
                "UPDATE runs SET state = ?2, ended_at = COALESCE(?3, started_at), error = ?4 \
                 WHERE id = ?1",
                params![run, RunState::Killed.as_str(), ended, error],
            )?;
            tx.execute(
                "UPDATE steps SET state = ?2, ended_at = ?3, error = ?4 \
                 WHERE run_id = ?1 AND state IN (?5, ?6)",
                params![
                    run,
                    StepState::Failed.as_str(),
                    ended,
                    PROCESS_DIED,
                    StepState::Running.as_str(),
                    StepState::Pending.as_str(),
                ],
            )?;
            tx.execute(
                "UPDATE attempts SET state = ?2, ended_at = ?3, error = ?4 \
                 WHERE run_id = ?1 AND state IN (?5, ?6)",
                params![
                    run,
                    StepState::Failed.as_str(),
                    ended,
                    PROCESS_DIED,
                    StepState::Running.as_str(),
                    StepState::Pending.as_str(),
                ],
            )?;
        }
        tx.commit()?;
        Ok(dead.len())
    }
}

/// The latest timestamp recorded for `run`, its steps, attempts or artifacts.
fn last_event(conn: &Connection, run: RunId) -> Result<Option<String>> {
    Ok(conn.query_row(
        "SELECT MAX(t) FROM ( \
             SELECT started_at AS t FROM runs WHERE id = ?1 \
             UNION ALL SELECT started_at FROM steps WHERE run_id = ?1 \
             UNION ALL SELECT ended_at FROM steps WHERE run_id = ?1 \
             UNION ALL SELECT started_at FROM attempts WHERE run_id = ?1 \
             UNION ALL SELECT ended_at FROM attempts WHERE run_id = ?1 \
             UNION ALL SELECT recorded_at FROM artifacts WHERE run_id = ?1)",
        [run],
        |row| row.get(0),
    )?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::history::ArtifactKind;
    use crate::history::testing::{dead_pid, memory, new_run, spawn_child, steps, wait_child};

    /// Pretends `run` was recorded by `pid` on `host`.
    fn recorded_by(h: &History, run: RunId, host: &str, pid: i64, start: Option<i64>) {
        h.lock()
            .execute(
                "UPDATE runs SET host = ?2, pid = ?3, pid_start = ?4 WHERE id = ?1",
                params![run, host, pid, start],
            )
            .unwrap();
    }

    #[test]
    fn runs_of_dead_processes_are_killed_and_ours_are_not() {
        let (h, clock) = memory();
        let t0 = clock.now();
        let ours = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a"]))
            .unwrap();
        let dead = h
            .start_run(&new_run("p", "2024-05-01"), &steps(&["a", "b", "c"]))
            .unwrap();
        let host = h.process.host.clone();
        recorded_by(&h, dead, &host, dead_pid(), None);
        h.set_step_state(dead, "a", StepState::Succeeded, None)
            .unwrap();
        h.set_step_state(dead, "b", StepState::Running, None)
            .unwrap();
        h.start_attempt(dead, "b").unwrap();
        clock.advance_ms(1_500);
        h.record_artifact(dead, "b", ArtifactKind::Output, "o", "/o")
            .unwrap();
        clock.advance_ms(3_600_000);

        assert_eq!(h.mark_dead_runs().unwrap(), 1);
        assert_eq!(h.run(ours).unwrap().summary.state, RunState::Running);

        let d = h.run(dead).unwrap();
        assert_eq!(d.summary.state, RunState::Killed);
        // Ended at its last recorded event, not when the death was noticed.
        let last = t0 + chrono::Duration::milliseconds(1_500);
        assert_eq!(d.summary.ended_at, Some(last));
        let error = d.summary.error.unwrap();
        assert!(error.contains("died before the run ended"), "{error}");
        let states: Vec<(StepState, Option<&str>)> = d
            .steps
            .iter()
            .map(|s| (s.state, s.error.as_deref()))
            .collect();
        assert_eq!(
            states,
            vec![
                (StepState::Succeeded, None),
                (StepState::Failed, Some(PROCESS_DIED)),
                (StepState::Failed, Some(PROCESS_DIED)),
            ]
        );
        assert_eq!(d.steps[1].ended_at, Some(last));
        assert_eq!(d.attempts[0].state, StepState::Failed);
        assert_eq!(d.attempts[0].error.as_deref(), Some(PROCESS_DIED));

        // Already killed: nothing more to do.
        assert_eq!(h.mark_dead_runs().unwrap(), 0);
    }

    /// End to end: a real process records a run, exits without ending it,
    /// and a later process finds it.
    #[test]
    fn a_run_whose_process_exited_is_found_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        wait_child(spawn_child(&path, "crash", "crashed"));
        let h = History::open(&path).unwrap();
        let ours = h.start_run(&new_run("ours", "2024-05-01"), &[]).unwrap();

        assert_eq!(h.mark_dead_runs().unwrap(), 1);
        let crashed = h.list_runs(Some("crashed"), 1).unwrap().remove(0);
        assert_eq!(crashed.state, RunState::Killed);
        let d = h.run(crashed.id).unwrap();
        assert_eq!(d.steps[0].state, StepState::Failed);
        assert_eq!(d.attempts[0].error.as_deref(), Some(PROCESS_DIED));
        assert_eq!(h.run(ours).unwrap().summary.state, RunState::Running);
    }

    #[test]
    fn finished_runs_and_other_hosts_are_left_alone() {
        let (h, _clock) = memory();
        let finished = h.start_run(&new_run("p", "2024-05-01"), &[]).unwrap();
        h.finish_run(finished, RunState::Failed, Some("boom"))
            .unwrap();
        let host = h.process.host.clone();
        recorded_by(&h, finished, &host, dead_pid(), None);
        let elsewhere = h.start_run(&new_run("p", "2024-05-01"), &[]).unwrap();
        recorded_by(&h, elsewhere, "some-other-host", dead_pid(), None);

        assert_eq!(h.mark_dead_runs().unwrap(), 0);
        assert_eq!(h.run(finished).unwrap().summary.state, RunState::Failed);
        assert_eq!(h.run(elsewhere).unwrap().summary.state, RunState::Running);
    }

    /// Start times come from `/proc`, so only Linux can tell a reused pid.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_reused_pid_does_not_keep_a_run_alive() {
        let (h, _clock) = memory();
        let start = h.process.start.expect("/proc/self/stat has a start time");
        let run = h.start_run(&new_run("p", "2024-05-01"), &[]).unwrap();
        let (host, pid) = (h.process.host.clone(), h.process.pid);
        recorded_by(&h, run, &host, pid, Some(start + 1));
        assert_eq!(h.mark_dead_runs().unwrap(), 1);
        assert_eq!(h.run(run).unwrap().summary.state, RunState::Killed);
    }
}
