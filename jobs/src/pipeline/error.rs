//! What can go wrong loading or running a pipeline.
//!
//! Loading errors (a malformed file, a cycle, a dangling dependency) are
//! found before anything runs; step errors are recorded in the run history
//! and decide retries.

use std::path::PathBuf;

/// Result alias for pipelines.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// A pipeline problem.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The pipeline file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The pipeline file is not valid TOML, or has an unknown or misspelled key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parses but does not describe a valid pipeline.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the step, table or field.
        message: String,
    },
    /// A `{{ name }}` placeholder names nothing known.
    #[error("step '{step}': unknown placeholder '{{{{ {name} }}}}' (known: {known})")]
    Template {
        /// The step (or `pipeline`) whose text holds the placeholder.
        step: String,
        /// The unknown name.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A data contract failed.
    #[error("{0}")]
    Contract(String),
    /// A step exceeded its timeout; its job was cancelled.
    #[error("timed out after {0}")]
    TimedOut(String),
    /// A step failed while running.
    #[error(transparent)]
    Step(#[from] crate::error::JobsError),
    /// The run history could not be read or written.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

impl From<datafusion::error::DataFusionError> for PipelineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        PipelineError::Step(crate::error::JobsError::from(e))
    }
}
