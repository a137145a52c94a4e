//! Errors of the `ember-scheduler` process.

/// Result alias for the scheduler process.
pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

/// Why the scheduler could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The listening address is taken or invalid.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The event-log directory cannot be created.
    #[error("cannot create event-log directory {path}: {source}")]
    EventLogDir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Ember's engine layer failed.
    #[error(transparent)]
    Ember(#[from] ember_core::EmberError),
    /// Ballista's scheduler failed.
    #[error("scheduler error: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
}
