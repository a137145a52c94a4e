//! Errors of the jobs layer and the `ember` command.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Result alias for the jobs layer.
pub type Result<T, E = JobsError> = std::result::Result<T, E>;

/// What can go wrong running a job or a command.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// A query failed to parse, plan or run.
    #[error("{}", describe_datafusion_error(.0))]
    Query(#[from] DataFusionError),
    /// Connecting to or starting a cluster failed.
    #[error(transparent)]
    Engine(#[from] ember_core::EmberError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing results failed.
    #[error("cannot write results: {0}")]
    Output(#[from] arrow::error::ArrowError),
    /// A local cluster command failed.
    #[error("{0}")]
    Cluster(String),
    /// A model could not be trained (bad label, parameter, data).
    #[error(transparent)]
    Train(#[from] ember_udfs::training::error::TrainError),
    /// The job was cancelled (a pipeline step's timeout, or its run's).
    #[error("cancelled{}", .0.as_ref().map(|id| format!(" (job {id} cancelled on the scheduler)")).unwrap_or_default())]
    Cancelled(Option<String>),
    /// The run history could not be read or written.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// A pipeline could not be loaded or run.
    #[error(transparent)]
    Pipeline(Box<crate::pipeline::PipelineError>),
    /// The command line is inconsistent.
    #[error("{0}")]
    Usage(String),
}

impl From<crate::pipeline::PipelineError> for JobsError {
    fn from(e: crate::pipeline::PipelineError) -> Self {
        match e {
            crate::pipeline::PipelineError::Step(inner) => inner,
            other => JobsError::Pipeline(Box::new(other)),
        }
    }
}

impl JobsError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        JobsError::Io {
            path: path.into(),
            source,
        }
    }
}

/// One line for a DataFusion error: the innermost message without the
/// `External error:` / `Context` layers Ballista and DataFusion add, and with
/// the `Job ... failed:` prefix of a distributed failure kept short.
pub fn describe_datafusion_error(e: &DataFusionError) -> String {
    let inner = e.find_root();
    let text = match inner {
        DataFusionError::External(ext) => ext.to_string(),
        other => other.to_string(),
    };
    explain_connect_error(&explain_resources_exhausted(&one_line(&text)))
}

/// Ballista reports a scheduler or executor it cannot reach as tonic's debug
/// rendering; this names the address and what to do.
fn explain_connect_error(text: &str) -> String {
    const MARK: &str = "\"tcp connect error\", ";
    let Some(start) = text.find(MARK) else {
        return text.to_string();
    };
    let rest = &text[start + MARK.len()..];
    let address = rest.split(',').next().unwrap_or_default().trim();
    let reason = if text.contains("ConnectionRefused") {
        "connection refused"
    } else if text.contains("TimedOut") {
        "timed out"
    } else {
        "connection failed"
    };
    format!(
        "cannot reach {address} ({reason}): the scheduler or an executor is down or \
         restarting; resubmit once it is back"
    )
}

/// A task that ran out of its memory pool reaches the client as Ballista's
/// debug rendering of the executor's error. This keeps DataFusion's own
/// message and says what to change.
fn explain_resources_exhausted(text: &str) -> String {
    const DEBUG_FORM: &str = "ResourcesExhausted(\"";
    let message = if let Some(start) = text.find(DEBUG_FORM) {
        let rest = &text[start + DEBUG_FORM.len()..];
        rest.find("\")").map_or(rest, |end| &rest[..end])
    } else if let Some(start) = text.find("Resources exhausted: ") {
        &text[start + "Resources exhausted: ".len()..]
    } else {
        return text.to_string();
    };
    // Keep "... Job <id> failed: " so the job can be looked up.
    let job = text
        .find("Job ")
        .and_then(|at| {
            text[at..]
                .find(" failed: ")
                .map(|end| &text[..at + end + 9])
        })
        .unwrap_or_default();
    format!(
        "{job}out of memory: {message}. An operator could not spill within the memory limit; \
         raise the executors' --memory-limit (each task slot gets the limit divided by the \
         executor's vcores) or use fewer vcores per executor"
    )
}

/// Collapses whitespace runs (including newlines) to single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_out_of_memory_is_explained() {
        let cluster = "Execution error: Job 038G failed: Job failed due to stage 2 failed: Task failed due to runtime execution error: DataFusionError(Shared(External(DataFusionError(ResourcesExhausted(\"Failed to allocate additional 1363.1 KB for FinalHashAggregateStream[0] - 1024.0 KB remain available for the total memory pool: fair(pool_size: 1024.0 KB)\")))))";
        let text = explain_resources_exhausted(cluster);
        assert!(
            text.starts_with("Execution error: Job 038G failed: out of memory: Failed to allocate additional 1363.1 KB"),
            "{text}"
        );
        assert!(
            text.contains("pool_size: 1024.0 KB). An operator") && text.contains("--memory-limit"),
            "{text}"
        );
        let local = "Resources exhausted: Failed to allocate 5 MB";
        assert!(
            explain_resources_exhausted(local)
                .starts_with("out of memory: Failed to allocate 5 MB.")
        );
        assert_eq!(
            explain_resources_exhausted("table 'x' not found"),
            "table 'x' not found"
        );
    }

    #[test]
    fn an_unreachable_process_is_named() {
        let text = "Execution error: tonic::transport::Error(Transport, ConnectError(ConnectError(\"tcp connect error\", 127.0.0.1:41895, Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" })))";
        assert_eq!(
            explain_connect_error(text),
            "cannot reach 127.0.0.1:41895 (connection refused): the scheduler or an executor is \
             down or restarting; resubmit once it is back"
        );
        assert_eq!(explain_connect_error("plain"), "plain");
    }
}
