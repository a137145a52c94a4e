//! Command-line flags of `ember-executor`.

use std::path::PathBuf;
use std::str::FromStr;

use ballista_core::config::TaskSchedulingPolicy;
use clap::{Parser, ValueEnum};
use ember_core::ClusterTarget;

use crate::error::{ExecutorError, Result};

/// Ember's executor: runs tasks and serves their output over Arrow Flight.
#[derive(Debug, Parser)]
#[command(name = "ember-executor", version, about)]
pub struct Args {
    /// The scheduler to join.
    #[arg(long, default_value = "df://localhost:50050", env = "EMBER_CLUSTER")]
    pub scheduler: String,

    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,

    /// Host name other executors and clients use to reach this executor
    /// (default: the scheduler's view of the connection).
    #[arg(long)]
    pub external_host: Option<String>,

    /// Arrow Flight port (shuffle and result fetches).
    #[arg(long, default_value_t = 50051)]
    pub flight_port: u16,

    /// gRPC port the scheduler launches tasks on (push scheduling).
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,

    /// Directory for shuffle files and spills (default: a directory under the
    /// system temp directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,

    /// Task slots (default: the number of CPU cores).
    #[arg(long)]
    pub vcores: Option<usize>,

    /// Memory for all running tasks together, e.g. `512MB` or `4GiB`; tasks
    /// spill to the work directory beyond it. Default: 70% of the machine's
    /// (or cgroup's) memory. `0` means no limit.
    #[arg(long)]
    pub memory_limit: Option<String>,

    /// Memory for the rows of GBDT training runs (`ember train`) kept
    /// between tree levels, e.g. `4GiB`. Rows beyond it are re-read from
    /// the run's binned table at every level instead; `0` keeps none.
    #[arg(long, default_value = "4GiB")]
    pub training_rows_memory: String,

    /// Must match the scheduler's `--scheduling`.
    #[arg(long, value_enum, default_value_t = Scheduling::Push)]
    pub scheduling: Scheduling,

    /// Seconds between heartbeats to the scheduler; keep it well under the
    /// scheduler's `--executor-timeout-seconds` (10 s by default).
    #[arg(long, default_value_t = 2)]
    pub heartbeat_interval_seconds: u64,

    /// Seconds to keep retrying the scheduler at start-up.
    #[arg(long, default_value_t = 30)]
    pub scheduler_connect_timeout_seconds: u16,

    /// Log filter, e.g. `info` or `warn,ballista_executor=debug` (RUST_LOG wins).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// File holding the cluster's auth token (also `EMBER_AUTH_TOKEN_FILE`;
    /// or put the token itself in `EMBER_AUTH_TOKEN`). With a token, every
    /// port of the cluster refuses requests without it. Without one, the
    /// ports are open to anyone who can reach them.
    #[arg(long, env = "EMBER_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// TLS on this process's ports and connections.
    #[command(flatten)]
    pub tls: ember_core::tls::TlsFlags,

    /// Directories (or `s3://bucket/prefix`) queries may read and write; any
    /// other path is refused. Repeat it, or give a comma-separated list in
    /// `EMBER_DATA_ROOTS`. Default: no limit. Give executors and the
    /// scheduler the same roots (the scheduler lists files while planning).
    #[arg(long = "data-root", env = "EMBER_DATA_ROOTS", value_delimiter = ',')]
    pub data_roots: Vec<String>,
}

/// Task scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scheduling {
    /// The scheduler launches tasks on this executor.
    Push,
    /// This executor polls the scheduler for tasks.
    Pull,
}

impl From<Scheduling> for TaskSchedulingPolicy {
    fn from(s: Scheduling) -> Self {
        match s {
            Scheduling::Push => TaskSchedulingPolicy::PushStaged,
            Scheduling::Pull => TaskSchedulingPolicy::PullStaged,
        }
    }
}

impl Args {
    /// The scheduler's host and port from `--scheduler`.
    pub fn scheduler_host_port(&self) -> Result<(String, u16)> {
        match ClusterTarget::parse(Some(&self.scheduler))? {
            ClusterTarget::Remote { host, port } => Ok((host, port)),
            ClusterTarget::Embedded => Err(ExecutorError::Flag {
                flag: "--scheduler",
                reason: "an executor needs a scheduler address, e.g. df://localhost:50050".into(),
            }),
        }
    }

    /// `--memory-limit` in bytes; `None` when unset (auto-sized).
    pub fn memory_limit_bytes(&self) -> Result<Option<u64>> {
        self.memory_limit
            .as_deref()
            .map(|text| size_in_bytes("--memory-limit", text))
            .transpose()
    }

    /// `--training-rows-memory` in bytes.
    pub fn training_rows_memory_bytes(&self) -> Result<usize> {
        let bytes = size_in_bytes("--training-rows-memory", &self.training_rows_memory)?;
        usize::try_from(bytes).map_err(|_| ExecutorError::Flag {
            flag: "--training-rows-memory",
            reason: format!("{bytes} bytes do not fit this machine's address space"),
        })
    }
}

fn size_in_bytes(flag: &'static str, text: &str) -> Result<u64> {
    bytesize::ByteSize::from_str(text.trim())
        .map(|b| b.as_u64())
        .map_err(|e| ExecutorError::Flag {
            flag,
            reason: format!("'{text}' is not a size like 512MB or 4GiB ({e})"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ember-executor"];
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
    }

    #[test]
    fn memory_limits_accept_units() {
        assert_eq!(
            args(&["--memory-limit", "512MB"])
                .memory_limit_bytes()
                .unwrap(),
            Some(512_000_000)
        );
        assert_eq!(
            args(&["--memory-limit", "1GiB"])
                .memory_limit_bytes()
                .unwrap(),
            Some(1 << 30)
        );
        assert_eq!(args(&[]).memory_limit_bytes().unwrap(), None);
        let err = args(&["--memory-limit", "lots"])
            .memory_limit_bytes()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--memory-limit") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn training_rows_memory_defaults_to_4_gib_and_names_itself_when_wrong() {
        assert_eq!(args(&[]).training_rows_memory_bytes().unwrap(), 4 << 30);
        assert_eq!(
            args(&["--training-rows-memory", "0"])
                .training_rows_memory_bytes()
                .unwrap(),
            0
        );
        let err = args(&["--training-rows-memory", "half"])
            .training_rows_memory_bytes()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--training-rows-memory"), "{err}");
    }

    #[test]
    fn scheduler_address_is_parsed() {
        assert_eq!(
            args(&["--scheduler", "df://sched:7000"])
                .scheduler_host_port()
                .unwrap(),
            ("sched".to_string(), 7000)
        );
        assert!(
            args(&["--scheduler", "sched"])
                .scheduler_host_port()
                .is_err()
        );
    }
}
