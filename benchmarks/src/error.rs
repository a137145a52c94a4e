//! The one error type of `ember-bench`: every failure names the file, the
//! engine or the query it concerns.

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use ember_core::EmberError;

use crate::tpch::GenerateError;

/// `Result` with [`BenchError`].
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// What can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Generating TPC-H data.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// Planning or running a query on DataFusion or Ember.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Connecting to Ember.
    #[error(transparent)]
    Ember(#[from] EmberError),
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A report that is not a benchmark report.
    #[error("{}: not a benchmark report: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The Spark runner could not start or answered an error.
    #[error("spark: {0}")]
    Spark(String),
    /// Drawing the chart.
    #[error("chart: {0}")]
    Chart(String),
    /// A query failed on one engine.
    #[error("q{query} on {engine}: {source}")]
    Query {
        /// TPC-H query number.
        query: usize,
        /// The engine.
        engine: String,
        /// The cause.
        source: Box<BenchError>,
    },
    /// Bad arguments.
    #[error("{0}")]
    Invalid(String),
    /// Queries that failed or whose answers differ from the oracle's (the
    /// report is written first).
    #[error("{} failure(s):\n{}", .0.len(), .0.join("\n"))]
    Failures(Vec<String>),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
