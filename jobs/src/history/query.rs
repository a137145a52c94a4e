//! Reading runs back: `ember runs list`, `ember runs show`, and the
//! scheduler's catch-up.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, named_params};

use super::error::{HistoryError, Result};
use super::model::{
    ArtifactKind, ArtifactRecord, AttemptRecord, RunDetails, RunId, RunState, RunSummary,
    StepRecord, StepState, Trigger, decode_count, decode_enum, decode_opt_time, decode_time,
    elapsed,
};
use super::store::History;

/// The columns [`summary_from_row`] reads, first in every run query; binds
/// `:succeeded`.
const SUMMARY_COLUMNS: &str = "r.id, r.pipeline, r.ds, r.triggered_by, r.state, r.started_at, \
     r.ended_at, r.error, \
     (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.state = :succeeded), \
     (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id)";

/// How many columns [`SUMMARY_COLUMNS`] has.
const SUMMARY_WIDTH: usize = 10;

impl History {
    /// Up to `limit` runs, newest (highest id) first, of `pipeline` or of
    /// every pipeline.
    ///
    /// Ids, not start times, order the list: they follow the order runs were
    /// recorded in this file, whichever process and clock recorded them.
    pub fn list_runs(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<RunSummary>> {
        let now = (self.clock)();
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs r \
             WHERE :pipeline IS NULL OR r.pipeline = :pipeline \
             ORDER BY r.id DESC LIMIT :limit"
        ))?;
        let mut rows = stmt.query(named_params! {
            ":succeeded": StepState::Succeeded.as_str(),
            ":pipeline": pipeline,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        })?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next()? {
            runs.push(summary_from_row(row, now)?);
        }
        Ok(runs)
    }

    /// Everything recorded about `run`: its steps, their attempts, and
    /// artifacts. [`HistoryError::RunNotFound`] if there is no such run.
    pub fn run(&self, run: RunId) -> Result<RunDetails> {
        let now = (self.clock)();
        let mut conn = self.lock();
        // One read transaction: a consistent snapshot while another process
        // writes.
        let tx = conn.transaction()?;
        let details = read_run(&tx, run, now)?;
        tx.commit()?;
        details.ok_or(HistoryError::RunNotFound(run))
    }

    /// The latest `scheduled_for` of the scheduled runs of `pipeline`,
    /// whatever their state: the scheduler catches up on ticks after it.
    pub fn last_scheduled(&self, pipeline: &str) -> Result<Option<DateTime<Utc>>> {
        let latest: Option<String> = self.lock().query_row(
            "SELECT MAX(scheduled_for) FROM runs WHERE pipeline = ?1 AND triggered_by = ?2",
            [pipeline, Trigger::Schedule.as_str()],
            |row| row.get(0),
        )?;
        decode_opt_time("runs", "scheduled_for", latest.as_deref())
    }
}

fn read_run(conn: &Connection, run: RunId, now: DateTime<Utc>) -> Result<Option<RunDetails>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SUMMARY_COLUMNS}, r.pipeline_path, r.params_json, r.resumed_from, \
         r.scheduled_for FROM runs r WHERE r.id = :run"
    ))?;
    let mut rows = stmt.query(named_params! {
        ":succeeded": StepState::Succeeded.as_str(),
        ":run": run,
    })?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let summary = summary_from_row(row, now)?;
    let pipeline_path: String = row.get(SUMMARY_WIDTH)?;
    let params_json: String = row.get(SUMMARY_WIDTH + 1)?;
    let resumed_from: Option<RunId> = row.get(SUMMARY_WIDTH + 2)?;
    let scheduled_for: Option<String> = row.get(SUMMARY_WIDTH + 3)?;
    Ok(Some(RunDetails {
        summary,
        pipeline_path,
        params_json,
        resumed_from,
        scheduled_for: decode_opt_time("runs", "scheduled_for", scheduled_for.as_deref())?,
        steps: read_steps(conn, run)?,
        attempts: read_attempts(conn, run)?,
        artifacts: read_artifacts(conn, run)?,
    }))
}

fn summary_from_row(row: &Row<'_>, now: DateTime<Utc>) -> Result<RunSummary> {
    let started_at = decode_time("runs", "started_at", &row.get::<_, String>(5)?)?;
    let ended_at = decode_opt_time(
        "runs",
        "ended_at",
        row.get::<_, Option<String>>(6)?.as_deref(),
    )?;
    Ok(RunSummary {
        id: row.get(0)?,
        pipeline: row.get(1)?,
        ds: row.get(2)?,
        trigger: decode_enum(
            "runs",
            "triggered_by",
            &row.get::<_, String>(3)?,
            Trigger::parse,
        )?,
        state: decode_enum("runs", "state", &row.get::<_, String>(4)?, RunState::parse)?,
        started_at,
        ended_at,
        duration: elapsed(started_at, ended_at.unwrap_or(now)),
        steps_succeeded: decode_count("steps", "state", row.get(8)?)?,
        steps_total: decode_count("steps", "run_id", row.get(9)?)?,
        error: row.get(7)?,
    })
}

fn read_steps(conn: &Connection, run: RunId) -> Result<Vec<StepRecord>> {
    let mut stmt = conn.prepare(
        "SELECT s.name, s.state, s.attempts, s.started_at, s.ended_at, \
         (SELECT a.rows_written FROM attempts a \
          WHERE a.run_id = s.run_id AND a.step = s.name AND a.state = :succeeded \
          ORDER BY a.attempt DESC LIMIT 1), \
         s.error \
         FROM steps s WHERE s.run_id = :run ORDER BY s.ordinal",
    )?;
    let mut rows = stmt.query(named_params! {
        ":succeeded": StepState::Succeeded.as_str(),
        ":run": run,
    })?;
    let mut steps = Vec::new();
    while let Some(row) = rows.next()? {
        steps.push(StepRecord {
            name: row.get(0)?,
            state: decode_enum(
                "steps",
                "state",
                &row.get::<_, String>(1)?,
                StepState::parse,
            )?,
            attempts: decode_count("steps", "attempts", row.get(2)?)?,
            started_at: decode_opt_time(
                "steps",
                "started_at",
                row.get::<_, Option<String>>(3)?.as_deref(),
            )?,
            ended_at: decode_opt_time(
                "steps",
                "ended_at",
                row.get::<_, Option<String>>(4)?.as_deref(),
            )?,
            rows_written: decode_rows("attempts", row.get(5)?)?,
            error: row.get(6)?,
        });
    }
    Ok(steps)
}

fn read_attempts(conn: &Connection, run: RunId) -> Result<Vec<AttemptRecord>> {
    let mut stmt = conn.prepare(
        "SELECT a.step, a.attempt, a.state, a.started_at, a.ended_at, a.rows_written, a.error \
         FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.name = a.step \
         WHERE a.run_id = ?1 ORDER BY s.ordinal, a.attempt",
    )?;
    let mut rows = stmt.query([run])?;
    let mut attempts = Vec::new();
    while let Some(row) = rows.next()? {
        attempts.push(AttemptRecord {
            step: row.get(0)?,
            attempt: decode_count("attempts", "attempt", row.get(1)?)?,
            state: decode_enum(
                "attempts",
                "state",
                &row.get::<_, String>(2)?,
                StepState::parse,
            )?,
            started_at: decode_time("attempts", "started_at", &row.get::<_, String>(3)?)?,
            ended_at: decode_opt_time(
                "attempts",
                "ended_at",
                row.get::<_, Option<String>>(4)?.as_deref(),
            )?,
            rows_written: decode_rows("attempts", row.get(5)?)?,
            error: row.get(6)?,
        });
    }
    Ok(attempts)
}

fn read_artifacts(conn: &Connection, run: RunId) -> Result<Vec<ArtifactRecord>> {
    let mut stmt = conn.prepare(
        "SELECT step, kind, name, value, recorded_at FROM artifacts \
         WHERE run_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([run])?;
    let mut artifacts = Vec::new();
    while let Some(row) = rows.next()? {
        artifacts.push(ArtifactRecord {
            step: row.get(0)?,
            kind: decode_enum(
                "artifacts",
                "kind",
                &row.get::<_, String>(1)?,
                ArtifactKind::parse,
            )?,
            name: row.get(2)?,
            value: row.get(3)?,
            recorded_at: decode_time("artifacts", "recorded_at", &row.get::<_, String>(4)?)?,
        });
    }
    Ok(artifacts)
}

fn decode_rows(table: &'static str, value: Option<i64>) -> Result<Option<u64>> {
    value
        .map(|n| decode_count(table, "rows_written", n))
        .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::history::testing::{memory, new_run, steps};

    #[test]
    fn list_runs_is_newest_first_and_filters_by_pipeline() {
        let (h, clock) = memory();
        let mut ids = Vec::new();
        for (pipeline, ds) in [
            ("a", "2024-05-01"),
            ("b", "2024-05-01"),
            ("a", "2024-05-02"),
        ] {
            ids.push(h.start_run(&new_run(pipeline, ds), &steps(&["x"])).unwrap());
            clock.advance_ms(1_000);
        }
        let all: Vec<RunId> = h
            .list_runs(None, 10)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(all, vec![ids[2], ids[1], ids[0]]);
        let only_a = h.list_runs(Some("a"), 10).unwrap();
        assert_eq!(
            only_a.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[2], ids[0]]
        );
        assert!(only_a.iter().all(|r| r.pipeline == "a"));
        assert_eq!(only_a[0].ds, "2024-05-02");
        assert_eq!(h.list_runs(None, 1).unwrap().len(), 1);
        assert!(h.list_runs(None, 0).unwrap().is_empty());
        assert_eq!(h.list_runs(None, usize::MAX).unwrap().len(), 3);
        assert!(h.list_runs(Some("nope"), 10).unwrap().is_empty());
    }

    #[test]
    fn a_running_run_lasts_until_now() {
        let (h, clock) = memory();
        let id = h
            .start_run(&new_run("a", "2024-05-01"), &steps(&["x"]))
            .unwrap();
        clock.advance_ms(2_000);
        let r = &h.list_runs(None, 1).unwrap()[0];
        assert_eq!(
            (r.id, r.ended_at, r.duration),
            (id, None, std::time::Duration::from_secs(2))
        );
    }

    #[test]
    fn step_counts_in_the_summary() {
        let (h, _clock) = memory();
        let id = h
            .start_run(&new_run("a", "2024-05-01"), &steps(&["x", "y", "z"]))
            .unwrap();
        h.set_step_state(id, "x", StepState::Succeeded, None)
            .unwrap();
        h.set_step_state(id, "y", StepState::Skipped, None).unwrap();
        h.set_step_state(id, "z", StepState::Failed, Some("bad"))
            .unwrap();
        h.finish_run(id, RunState::Failed, Some("step z failed"))
            .unwrap();
        let r = &h.list_runs(None, 1).unwrap()[0];
        assert_eq!((r.steps_succeeded, r.steps_total), (1, 3));
        assert_eq!(r.error.as_deref(), Some("step z failed"));
    }

    #[test]
    fn last_scheduled_is_the_latest_scheduled_tick_of_the_pipeline() {
        let (h, _clock) = memory();
        assert_eq!(h.last_scheduled("a").unwrap(), None);
        let tick = |day: u32| Utc.with_ymd_and_hms(2024, 5, day, 2, 0, 0).unwrap();
        let scheduled = |pipeline: &str, day: u32| {
            let mut run = new_run(pipeline, &format!("2024-05-{day:02}"));
            run.trigger = Trigger::Schedule;
            run.scheduled_for = Some(tick(day));
            run
        };
        let failed = h.start_run(&scheduled("a", 3), &[]).unwrap();
        h.finish_run(failed, RunState::Failed, Some("boom"))
            .unwrap();
        h.start_run(&scheduled("a", 2), &[]).unwrap();
        h.start_run(&scheduled("b", 9), &[]).unwrap();
        // Not scheduled: ignored even with a later tick recorded.
        let mut manual = scheduled("a", 20);
        manual.trigger = Trigger::Backfill;
        h.start_run(&manual, &[]).unwrap();

        assert_eq!(h.last_scheduled("a").unwrap(), Some(tick(3)));
        assert_eq!(h.last_scheduled("b").unwrap(), Some(tick(9)));
        assert_eq!(h.last_scheduled("c").unwrap(), None);
    }
}
