//! The `ember` command: flags, sub-commands and their implementations.

mod churn_demo;
mod cluster_cmd;
mod demo_cmd;
pub mod pipeline_cmd;
pub(crate) mod score_cmd;
mod sql_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

use crate::error::Result;

pub use cluster_cmd::ClusterCommand;
pub use demo_cmd::DemoCommand;
pub use score_cmd::ScoreArgs;
pub use sql_cmd::SqlArgs;
pub use train_cmd::{ModelKind, TrainArgs, TrainReport, train_to_file};

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
    /// Run a pipeline (a TOML file of steps) for one logical date.
    Run(pipeline_cmd::RunArgs),
    /// List and inspect pipeline runs from the run history.
    #[command(subcommand)]
    Runs(pipeline_cmd::RunsCommand),
    /// Run every scheduled pipeline of a directory when it is due.
    Schedule(pipeline_cmd::ScheduleArgs),
    /// Run a pipeline for every date of a range.
    Backfill(pipeline_cmd::BackfillArgs),
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
            Command::Run(args) => pipeline_cmd::run(args).await,
            Command::Runs(command) => pipeline_cmd::runs(command).await,
            Command::Schedule(args) => pipeline_cmd::schedule(args).await,
            Command::Backfill(args) => pipeline_cmd::backfill(args).await,
            Command::Demo(command) => demo_cmd::run(command).await,
        }
    }
}
