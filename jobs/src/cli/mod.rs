//! The `ember` command: flags, sub-commands and their implementations.

mod cluster_cmd;
mod demo_cmd;
mod score_cmd;
mod sql_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

use crate::error::Result;

pub use cluster_cmd::ClusterCommand;
pub use demo_cmd::DemoCommand;
pub use score_cmd::ScoreArgs;
pub use sql_cmd::SqlArgs;
pub use train_cmd::{ModelKind, TrainArgs};

/// Ember: a distributed batch engine for SQL, feature engineering, training
/// and scoring.
#[derive(Debug, Parser)]
#[command(name = "ember", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Ember's sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL statements (embedded, or on a cluster with --cluster).
    Sql(SqlArgs),
    /// Score a Parquet dataset with a model and write the rows with their predictions.
    Score(ScoreArgs),
    /// Train one model (GBDT, linear or logistic) over a Parquet dataset and write it to a file.
    Train(TrainArgs),
    /// Start, stop or inspect a local cluster of separate processes.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run a demonstration on generated data.
    #[command(subcommand)]
    Demo(DemoCommand),
}

impl Cli {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        match self.command {
            Command::Sql(args) => sql_cmd::run(args).await,
            Command::Score(args) => score_cmd::run(args).await,
            Command::Train(args) => train_cmd::run(args).await,
            Command::Cluster(command) => cluster_cmd::run(command).await,
            Command::Demo(command) => demo_cmd::run(command).await,
        }
    }
}
