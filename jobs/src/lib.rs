//! Ember's jobs layer: running SQL scripts, local clusters, and the `ember`
//! command line.
//!
//! * [`sql`]: scripts of many statements, with atomic writes;
//! * [`output`]: how results are printed;
//! * [`progress`]: job progress on a terminal, read from the scheduler;
//! * [`cluster`]: starting and stopping Ember's processes on this machine;
//! * [`train`]: the driver that trains one model over a whole table;
//! * [`pipeline`]: nightly pipelines — steps, runner, contracts, schedules;
//! * [`demo`]: generated data for the demonstrations;
//! * [`history`]: the record of pipeline runs, in an embedded SQLite file;
//! * [`cli`]: the `ember` command's flags and sub-commands.

pub mod cli;
pub mod cluster;
pub mod demo;
pub mod error;
pub mod history;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod sql;
pub mod train;

pub use error::{JobsError, Result};
