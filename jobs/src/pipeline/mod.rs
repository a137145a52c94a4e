//! Nightly pipelines: a DAG of SQL, feature, training, scoring and check
//! steps in one TOML file, run with retries, timeouts, history and schedules.
//!
//! * [`spec`] is the file format and [`load`] validates it before anything
//!   runs (unknown keys, cycles, dangling dependencies, missing `depends_on`).
//! * [`runner`] runs a pipeline for one logical date on an
//!   [`ember_core::EmberContext`] (embedded or a cluster), recording runs,
//!   steps and attempts in the SQLite [`crate::history`].
//! * [`steps`] holds what each step kind does; [`expect`] and [`drift`] are
//!   the data contracts; [`schedule_spec`] and [`scheduler`] decide when a
//!   pipeline is due and run it; [`hook`] reports failures.
//!
//! The file format and every field are documented in `docs/pipelines.md`.

pub mod display;
pub mod drift;
pub mod error;
pub mod expect;
pub mod hook;
pub mod load;
pub mod runner;
pub mod schedule_spec;
pub mod scheduler;
pub mod spec;
pub mod steps;
pub mod tables;
pub mod template;

pub use error::{PipelineError, Result};
pub use load::Pipeline;
pub use runner::{RunOptions, RunResult, run_pipeline};
