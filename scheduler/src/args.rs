//! Command-line flags of `ember-scheduler`.

use std::path::PathBuf;

use ballista_core::config::TaskSchedulingPolicy;
use clap::{Parser, ValueEnum};

/// Ember's scheduler: plans jobs into stages and hands tasks to executors.
#[derive(Debug, Parser)]
#[command(name = "ember-scheduler", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "EMBER_SCHEDULER_BIND_HOST")]
    pub bind_host: String,

    /// Port for gRPC, REST and probes (0 picks a free port).
    #[arg(short, long, default_value_t = 50050, env = "EMBER_SCHEDULER_PORT")]
    pub port: u16,

    /// Host name executors and clients use to reach this scheduler.
    #[arg(
        long,
        default_value = "localhost",
        env = "EMBER_SCHEDULER_EXTERNAL_HOST"
    )]
    pub external_host: String,

    /// Directory for per-job event logs (read by Ballista's history server).
    #[arg(long)]
    pub event_log_dir: Option<PathBuf>,

    /// Log filter, e.g. `info` or `warn,ballista_scheduler=debug` (RUST_LOG wins).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// How tasks reach executors: `push` (the scheduler launches them, lower
    /// latency) or `pull` (executors poll). Executors must use the same.
    #[arg(long, value_enum, default_value_t = Scheduling::Push)]
    pub scheduling: Scheduling,

    /// Seconds without a heartbeat after which an executor is considered lost
    /// and its tasks are rescheduled. Executors beat every 2 s by default, so
    /// 10 s is five missed beats: a dead node costs a running job about 10 s
    /// (Ballista's default, 180 s, costs three minutes). It is also how long
    /// jobs wait for an executor to come back once every executor is gone,
    /// before they fail.
    #[arg(long, default_value_t = 10)]
    pub executor_timeout_seconds: u64,

    /// How often, in seconds, to look for lost executors.
    #[arg(long, default_value_t = 2)]
    pub expire_dead_executor_interval_seconds: u64,

    /// Executors that must be registered before `/readyz` answers 200.
    #[arg(long, default_value_t = 1)]
    pub min_ready_executors: usize,

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
    /// The scheduler launches tasks on executors.
    Push,
    /// Executors poll the scheduler for tasks.
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
