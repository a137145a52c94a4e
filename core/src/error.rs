//! Errors of Ember's engine layer.

use ballista_core::error::BallistaError;
use datafusion::error::DataFusionError;

/// Result alias for Ember's engine layer.
pub type Result<T, E = EmberError> = std::result::Result<T, E>;

/// What can go wrong while building sessions, starting processes or talking
/// to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum EmberError {
    /// A query failed to plan or run.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Ballista's scheduler or executor failed.
    #[error("cluster error: {0}")]
    Ballista(#[from] BallistaError),
    /// A cluster address is malformed.
    #[error("invalid cluster address '{address}': {reason}")]
    InvalidClusterAddress {
        /// The address as given.
        address: String,
        /// Why it is not usable.
        reason: String,
    },
    /// The scheduler at `address` could not be reached.
    #[error("cannot reach the Ember scheduler at {address}: {reason}")]
    Unreachable {
        /// The scheduler address.
        address: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The scheduler at `address` refused this client's auth token.
    #[error("the Ember scheduler at {address} refused this client: {reason}")]
    Unauthenticated {
        /// The scheduler address.
        address: String,
        /// The scheduler's explanation.
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl EmberError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        EmberError::Io {
            path: path.to_string(),
            source,
        }
    }
}

impl From<EmberError> for DataFusionError {
    fn from(e: EmberError) -> Self {
        match e {
            EmberError::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
