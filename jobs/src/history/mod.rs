//! Pipeline run history: what ran, when, how it ended, and what it produced.
//!
//! The pipeline runner records every run here as it goes — the run, one row
//! per step (in declaration order), every attempt of a step, and the
//! artifacts steps produce (output paths, model paths, fitted feature
//! parameters and metrics as JSON) — and `ember runs list` / `ember runs show`
//! read it back ([`render`] for text, serde for `--format json`). The
//! scheduler reads [`History::last_scheduled`] to catch up on missed ticks,
//! and a runner starting up calls [`History::mark_dead_runs`] so that runs
//! whose process was killed do not stay `running` forever.
//!
//! # Why SQLite
//!
//! The history must survive crashes, be shared by several Ember processes on
//! one machine (a scheduler, a manual run, `ember runs list` in another
//! terminal), and need no server. An embedded SQLite file (`rusqlite`,
//! bundled, so no system library is needed) gives atomic multi-row updates,
//! indexed queries and locking between processes for free; a directory of
//! JSON files would need all three built by hand. The data is small (rows per
//! run, not per record), so one file holds years of runs.
//!
//! # What is stored
//!
//! Four tables (see [`schema`] for the DDL): `runs` (pipeline, ds, trigger,
//! state, parameters, the recording process's host and pid, times, error),
//! `steps` (state, attempt count, times, error, declaration ordinal),
//! `attempts` (per attempt: state, times, rows written, error) and
//! `artifacts` (kind, name, and a path or JSON value). Enums are stored as
//! lower-case text and timestamps as RFC 3339 UTC text with millisecond
//! precision, so the file is readable with the `sqlite3` shell; text this
//! version does not know is reported as [`HistoryError::Corrupt`]. The schema
//! version lives in `PRAGMA user_version` and is migrated on open.
//!
//! # Concurrency
//!
//! Within a process, [`History`] is `Send + Sync`: one connection behind a
//! `Mutex`, locked only for the length of one short statement or transaction,
//! so steps running concurrently on a tokio runtime can share an
//! `Arc<History>` and call it directly (each call is a few milliseconds of
//! blocking work, never held across an `.await`).
//!
//! Between processes, the file is in WAL mode, so readers never block the
//! writer; writes that take several statements run in `BEGIN IMMEDIATE`
//! transactions, and a writer waits up to [`BUSY_TIMEOUT`] for another
//! process's write instead of failing at once. Timestamps come from an
//! injectable [`Clock`], so tests are deterministic.

pub mod error;
pub mod model;
pub mod query;
pub mod recovery;
pub mod render;
pub mod schema;
pub mod store;

mod process;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod testing;

pub use error::{HistoryError, Result};
pub use model::{
    ArtifactKind, ArtifactRecord, AttemptRecord, NewRun, RunDetails, RunId, RunState, RunSummary,
    StepRecord, StepState, Trigger,
};
pub use recovery::PROCESS_DIED;
pub use store::{BUSY_TIMEOUT, Clock, History};
