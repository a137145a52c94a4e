//! `ember cluster up | down | status`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::cluster::local::{self, LocalClusterSpec, default_state_dir};
use crate::error::{JobsError, Result};

/// Local cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a scheduler and executors as separate processes and print the
    /// cluster's address (`df://HOST:PORT`) once every executor is ready.
    Up {
        /// Number of executors.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Scheduler port (default: a free port).
        #[arg(long)]
        port: Option<u16>,
        /// Task slots per executor.
        #[arg(long, default_value_t = 1)]
        vcores: usize,
        /// Memory limit per executor, e.g. `2GiB`.
        #[arg(long)]
        memory_limit: Option<String>,
        /// Memory each executor keeps for `ember train` GBDT rows between
        /// tree levels, e.g. `8GiB` (executors' default: 4GiB; `0` keeps none
        /// and every level re-reads the binned table).
        #[arg(long)]
        training_rows_memory: Option<String>,
        /// Where the cluster's record, logs and work directories go.
        #[arg(long, env = "EMBER_CLUSTER_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Stop the local cluster started by `up`.
    Down {
        /// The state directory given to `up`.
        #[arg(long, env = "EMBER_CLUSTER_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the local cluster's address, or fail if none is running.
    Status {
        /// The state directory given to `up`.
        #[arg(long, env = "EMBER_CLUSTER_DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// Runs a cluster command.
pub async fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Up {
            executors,
            port,
            vcores,
            memory_limit,
            training_rows_memory,
            state_dir,
        } => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            let spec = LocalClusterSpec {
                executors,
                port,
                vcores,
                memory_limit,
                training_rows_memory,
            };
            let cluster = local::up(&spec, &state_dir).await?;
            eprintln!(
                "started a scheduler and {} executor(s); logs in {}",
                cluster.executors.len(),
                state_dir.display()
            );
            println!("{}", cluster.address);
            Ok(())
        }
        ClusterCommand::Down { state_dir } => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            match local::down(&state_dir)? {
                Some(n) => eprintln!("stopped {n} process(es)"),
                None => eprintln!("no local cluster is running"),
            }
            Ok(())
        }
        ClusterCommand::Status { state_dir } => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            match local::running(&state_dir)? {
                Some(cluster) => {
                    println!("{}", cluster.address);
                    Ok(())
                }
                None => Err(JobsError::Cluster(
                    "no local cluster is running".to_string(),
                )),
            }
        }
    }
}
