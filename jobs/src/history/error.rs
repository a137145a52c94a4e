//! Errors of the run history.

use std::path::PathBuf;

use super::model::RunId;

/// Result alias for the run history.
pub type Result<T, E = HistoryError> = std::result::Result<T, E>;

/// What can go wrong reading or writing the run history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database file could not be opened, set up or migrated.
    #[error(
        "cannot open the run history at {}: {source}; check that the path is a writable \
         SQLite file (or a new path in a writable directory)",
        path.display()
    )]
    Open {
        /// The database file (`:memory:` for an in-memory history).
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The directory that should hold the database could not be created.
    #[error("cannot create the directory {} for the run history: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database was written by a newer Ember with a schema this one does
    /// not know.
    #[error(
        "the run history has schema version {found}, newer than the {supported} this ember \
         understands; upgrade ember, or use another history file"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// A statement failed (disk full, database locked for longer than the
    /// busy timeout, ...).
    #[error("run history: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No run has this id.
    #[error("run {0} not found in the run history; run `ember runs list` to see run ids")]
    RunNotFound(RunId),
    /// The run has no step of this name.
    #[error("run {run} has no step '{step}'; run `ember runs show {run}` to see its steps")]
    StepNotFound {
        /// The run.
        run: RunId,
        /// The step name asked for.
        step: String,
    },
    /// The step has no attempt with this number.
    #[error(
        "step '{step}' of run {run} has no attempt {attempt}; attempts are numbered from 1 by \
         `start_attempt`"
    )]
    AttemptNotFound {
        /// The run.
        run: RunId,
        /// The step.
        step: String,
        /// The attempt number asked for.
        attempt: u32,
    },
    /// A run was started with the same step name twice.
    #[error(
        "pipeline '{pipeline}' declares step '{step}' more than once; step names must be unique"
    )]
    DuplicateStep {
        /// The pipeline.
        pipeline: String,
        /// The repeated step name.
        step: String,
    },
    /// A value in the database is not one this version of Ember writes.
    #[error(
        "the run history is corrupt: {table}.{column} holds {value:?}, which this ember does not \
         recognise; it may have been written by a newer ember or edited by hand"
    )]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The offending value, as text.
        value: String,
    },
}

impl HistoryError {
    /// A [`HistoryError::Corrupt`] for `table.column` holding `value`.
    pub fn corrupt(table: &'static str, column: &'static str, value: impl Into<String>) -> Self {
        HistoryError::Corrupt {
            table,
            column,
            value: value.into(),
        }
    }
}
