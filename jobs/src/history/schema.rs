//! The history's tables, and the migrations that create and evolve them.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Opening a
//! file applies the missing ones, each in its own `BEGIN IMMEDIATE`
//! transaction that re-reads the version first, so two processes opening a
//! new file at once apply each migration exactly once. A file with a higher
//! version than this build has migrations for was written by a newer Ember,
//! and is refused rather than guessed at.
//!
//! Migrations are append-only: a released one is never edited, a change is a
//! new entry.

use rusqlite::{Connection, TransactionBehavior};

use super::error::{HistoryError, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1];

/// Version 1: runs, their steps, the attempts of each step, and artifacts.
const V1: &str = r#"
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline      TEXT    NOT NULL,
    pipeline_path TEXT    NOT NULL,
    ds            TEXT    NOT NULL,                -- logical date, YYYY-MM-DD
    triggered_by  TEXT    NOT NULL,                -- Trigger::as_str
    state         TEXT    NOT NULL,                -- RunState::as_str
    resumed_from  INTEGER REFERENCES runs (id),
    scheduled_for TEXT,                            -- RFC 3339 UTC, ms
    params_json   TEXT    NOT NULL,
    host          TEXT    NOT NULL,                -- host name of the recording process
    pid           INTEGER NOT NULL,                -- its process id
    pid_start     INTEGER,                         -- its start time (/proc/<pid>/stat field 22), against pid reuse
    started_at    TEXT    NOT NULL,
    ended_at      TEXT,
    error         TEXT
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
CREATE INDEX runs_by_state ON runs (state);
CREATE INDEX runs_by_schedule ON runs (pipeline, triggered_by, scheduled_for);

CREATE TABLE steps (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    name       TEXT    NOT NULL,
    ordinal    INTEGER NOT NULL,                   -- declaration order in the pipeline
    state      TEXT    NOT NULL,                   -- StepState::as_str
    attempts   INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    ended_at   TEXT,
    error      TEXT,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE attempts (
    run_id       INTEGER NOT NULL,
    step         TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,                 -- from 1
    state        TEXT    NOT NULL,                 -- StepState::as_str
    started_at   TEXT    NOT NULL,
    ended_at     TEXT,
    rows_written INTEGER,
    error        TEXT,
    PRIMARY KEY (run_id, step, attempt),
    FOREIGN KEY (run_id, step) REFERENCES steps (run_id, name)
) WITHOUT ROWID;

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL,
    step        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,                  -- ArtifactKind::as_str
    name        TEXT    NOT NULL,
    value       TEXT    NOT NULL,                  -- a path or a JSON document
    recorded_at TEXT    NOT NULL,
    FOREIGN KEY (run_id, step) REFERENCES steps (run_id, name)
);
CREATE INDEX artifacts_by_run ON artifacts (run_id, id);
"#;

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the database up to [`latest_version`]; a no-op on an up-to-date file.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = latest_version();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > supported {
            return Err(HistoryError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// The schema version of the open database.
#[cfg(test)]
pub(crate) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), latest_version());
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), latest_version());
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN \
                 ('runs', 'steps', 'attempts', 'artifacts')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, HistoryError::SchemaTooNew { found, supported }
            if found == latest_version() + 1 && supported == latest_version())
        );
        assert!(err.to_string().contains("upgrade ember"));
    }
}
