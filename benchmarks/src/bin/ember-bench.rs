//! `ember-bench`: Ember side by side with single-process DataFusion and
//! Apache Spark, every answer verified against DataFusion.
//!
//! ```text
//! ember-bench tpch --sf 1 --runs 3 --verify --output results/tpch-sf1.json
//! ember-bench tpch --sf 1 --engines datafusion,embedded,cluster,spark \
//!     --cluster df://127.0.0.1:50050 --spark-python .venv/bin/python --verify
//! ember-bench report --input ember.json --input spark.json --output tpch-sf1.json
//! ember-bench summary --dir benchmarks/results/2026-11-23-vm
//! ember-bench score --model m.json --input rows.parquet --threads 1,2
//! ```
//!
//! `tpch --output X.json` also writes `X.md` (the table: per query, every
//! engine, the Spark/Ember and Ember/DataFusion ratios, totals, geometric
//! means, targets) and `X.svg` (the chart). `report` merges reports taken
//! apart, for example Spark's own runner on a Spark cluster, and redraws them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ember_benchmarks::report::{load_report, summary_page, write_atomically, write_report_files};
use ember_benchmarks::{BenchError, tpch};

#[derive(Debug, Parser)]
#[command(name = "ember-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate TPC-H data (once) and time the 22 queries on each engine.
    Tpch(Box<tpch::TpchArgs>),
    /// Merge JSON reports and write the JSON, table and chart.
    Report(ReportArgs),
    /// Write DIR/README.md: every report of a results directory on one page.
    Summary {
        /// A results directory, e.g. `benchmarks/results/2026-11-23-vm`.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Time a model's evaluator over rows held in memory, at fixed thread counts.
    Score(ember_benchmarks::scoring::ScoreArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// JSON reports of one scale factor; a later report's engine replaces an earlier one's.
    #[arg(long, required = true)]
    input: Vec<PathBuf>,
    /// The merged report (`.json`); the table and chart go beside it.
    #[arg(long)]
    output: PathBuf,
}

fn report(args: ReportArgs) -> Result<(), BenchError> {
    let mut inputs = args.input.iter();
    let Some(first) = inputs.next() else {
        return Err(BenchError::Invalid(
            "--input: name at least one report".into(),
        ));
    };
    let mut merged = load_report(first)?;
    for path in inputs {
        merged
            .merge(load_report(path)?)
            .map_err(|e| BenchError::Invalid(format!("{}: {e}", path.display())))?;
    }
    for written in write_report_files(&merged, &args.output)? {
        eprintln!("wrote {}", written.display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tpch(args) => tpch::run(*args).await.map_err(|e| e.to_string()),
        Command::Report(args) => report(args).map_err(|e| e.to_string()),
        Command::Summary { dir } => summary_page(&dir)
            .and_then(|page| write_atomically(&dir.join("README.md"), &page))
            .map(|()| eprintln!("wrote {}", dir.join("README.md").display()))
            .map_err(|e| e.to_string()),
        Command::Score(args) => ember_benchmarks::scoring::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ember-bench: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
