//! Errors of the `ember-executor` process.

/// Result alias for the executor process.
pub type Result<T, E = ExecutorError> = std::result::Result<T, E>;

/// Why the executor could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A flag has an unusable value.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The work directory cannot be created.
    #[error("cannot create work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The scheduler did not accept connections in time.
    #[error("cannot reach the scheduler at {address} within {seconds} s: {reason}")]
    SchedulerUnreachable {
        /// The scheduler's address.
        address: String,
        /// How long start-up waited.
        seconds: u16,
        /// The last connection error.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Ember's engine layer failed.
    #[error(transparent)]
    Ember(#[from] ember_core::EmberError),
    /// Ballista's executor failed.
    #[error("executor error: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// Registering with the scheduler failed at the transport level, which a
    /// TLS mismatch between the two looks like.
    #[error(
        "cannot register with the scheduler at {address}: {source}; if the scheduler serves TLS, \
         start this executor with --tls-cert, --tls-key and --tls-ca (the cluster's CA)"
    )]
    PlainToTls {
        /// The scheduler's address.
        address: String,
        /// Ballista's error.
        source: ballista_core::error::BallistaError,
    },
}
