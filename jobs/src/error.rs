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
    /// An input file is unreadable: not in its format, truncated, corrupt.
    #[error("cannot read {}: {problem}", .path.display())]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A write ran out of disk space; its partial output was removed.
    #[error(
        "cannot write {}: no space left on device; nothing was left there (a previous output \
         is kept as it was). Free space on that file system, or on the executors' --work-dir \
         (shuffle and spill files), and run again",
        .path.display()
    )]
    StorageFull {
        /// The write's target.
        path: PathBuf,
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
    explain_missing_file(&explain_storage_full(&explain_connect_error(
        &explain_resources_exhausted(&one_line(&text)),
    )))
}

/// A file listed when the job was planned but gone when a task opened it
/// reaches the client as the object store's "Object at location ... not
/// found" under several layers; this names the file and the likely cause.
fn explain_missing_file(text: &str) -> String {
    const MARK: &str = "Object at location ";
    let Some(start) = text.find(MARK) else {
        return text.to_string();
    };
    let rest = &text[start + MARK.len()..];
    let Some(end) = rest.find(" not found") else {
        return text.to_string();
    };
    format!(
        "cannot read {}: the file does not exist; it was deleted or moved after the query \
         listed its input files. Run again once the input is complete",
        &rest[..end]
    )
}

/// Whether an error's text says a disk is full (`ENOSPC`), in any of the
/// renderings it reaches the client in.
pub fn is_storage_full(text: &str) -> bool {
    text.to_lowercase().contains("no space left on device")
        || text.contains("StorageFull")
        || text.contains("os error 28")
}

/// A full disk reaches the client as the executor's debug rendering of an
/// `io::Error`, naming no path; outside a write (see
/// [`JobsError::StorageFull`]) the disk that fills is an executor's work
/// directory, so this says which flag moves it.
fn explain_storage_full(text: &str) -> String {
    if !is_storage_full(text) {
        return text.to_string();
    }
    "no space left on device: an executor's --work-dir (shuffle and spill files) or the \
     output's file system is full; free space there or point --work-dir at a larger disk"
        .to_string()
}

/// A failed write: a full disk is reported against the write's target.
pub fn explain_write_error(error: JobsError, target: &std::path::Path) -> JobsError {
    if is_storage_full(&error.to_string()) {
        JobsError::StorageFull {
            path: target.to_path_buf(),
        }
    } else {
        error
    }
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

    #[test]
    fn a_full_disk_is_explained() {
        let text = "Job 1 failed: \"Task failed due to IO error: DataFusionError(Shared(External(DataFusionError(IoError(Custom { kind: Other, error: Generic { store: \\\"LocalFileSystem\\\", source: UnableToCopyDataToFile { source: Os { code: 28, kind: StorageFull, message: \\\"No space left on device\\\" } } } })))))\"";
        assert!(explain_storage_full(text).starts_with("no space left on device: "));
        let write = explain_write_error(
            JobsError::Cluster(text.to_string()),
            std::path::Path::new("/data/out"),
        );
        assert!(
            write
                .to_string()
                .starts_with("cannot write /data/out: no space left on device"),
            "{write}"
        );
        assert_eq!(explain_storage_full("plain"), "plain");
    }

    #[test]
    fn a_file_deleted_after_listing_is_named() {
        let text = "Job 1 failed: DataFusionError(ParquetError(General(\"Failed to fetch metadata for file tmp/a/p2.parquet: Object Store error: Object at location /tmp/a/p2.parquet not found: No such file or directory (os error 2)\")))";
        assert!(
            explain_missing_file(text).starts_with(
                "cannot read /tmp/a/p2.parquet: the file does not exist; it was deleted"
            ),
            "{}",
            explain_missing_file(text)
        );
        assert_eq!(explain_missing_file("plain"), "plain");
    }
}
