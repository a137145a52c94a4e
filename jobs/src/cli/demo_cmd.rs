//! `ember demo tpch`: a first command that needs nothing but Ember.
//!
//! Generates TPC-H data (once, with `tpchgen`, as Parquet), registers the
//! eight tables and runs TPC-H queries, embedded or on a cluster, printing
//! each answer and its time.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use ember_benchmarks::tpch::{TPCH_TABLES, generate_cached, query, query_numbers};
use ember_core::{ClusterTarget, EmberContext};

use crate::error::{JobsError, Result};
use crate::output::{OutputFormat, write_rows};
use crate::sql::{SqlRunner, StatementKind};

/// Demonstrations on generated data.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Generate TPC-H data and run TPC-H queries on it.
    Tpch(TpchDemoArgs),
    /// Generate a subscription business and run the churn pipeline on it:
    /// labels, clickstream features, GBDT, held-out AUC check, scores.
    Churn(super::churn_demo::ChurnDemoArgs),
}

/// Flags of `ember demo tpch`.
#[derive(Debug, Args)]
pub struct TpchDemoArgs {
    /// Scale factor (1 is about 1 GB of CSV, 6 million line items).
    #[arg(long, default_value_t = 0.1)]
    pub sf: f64,
    /// Queries to run, e.g. `1,3,18` (default: all 22).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<usize>,
    /// Where the data goes (default: `ember-demo/tpch-sf<SF>`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Parquet files per table.
    #[arg(long, default_value_t = 4)]
    pub files: usize,
    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,
}

/// Runs a demo.
pub async fn run(command: DemoCommand) -> Result<()> {
    match command {
        DemoCommand::Tpch(args) => tpch(args).await,
        DemoCommand::Churn(args) => super::churn_demo::run(args).await,
    }
}

async fn tpch(args: TpchDemoArgs) -> Result<()> {
    let numbers: Vec<usize> = if args.queries.is_empty() {
        query_numbers().collect()
    } else {
        args.queries.clone()
    };
    if let Some(bad) = numbers.iter().find(|n| query(**n).is_none()) {
        return Err(JobsError::Usage(format!(
            "--queries: there is no TPC-H query {bad} (1 to 22)"
        )));
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ember-demo/tpch-sf{}", args.sf)));
    let started = Instant::now();
    eprintln!(
        "generating TPC-H SF {} in {} (reused if already there)...",
        args.sf,
        dir.display()
    );
    let dir = generate_cached(args.sf, &dir, args.files)
        .map_err(|e| JobsError::Usage(format!("cannot generate TPC-H data: {e}")))?;
    let dir = std::path::absolute(&dir).map_err(|e| JobsError::io(&dir, e))?;
    eprintln!("data ready in {:.1} s", started.elapsed().as_secs_f64());

    let target = ClusterTarget::parse(args.cluster.as_deref())?;
    eprintln!("running on {}", target.describe());
    let ember = EmberContext::connect(target).await?;
    let runner = SqlRunner::new(&ember, true);
    let ddl: String = TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';",
                dir.join(t).display()
            )
        })
        .collect();
    for (i, statement) in runner.parse(&ddl)?.into_iter().enumerate() {
        runner.run(i + 1, statement).await?;
    }

    let mut total = 0.0;
    let stdout = std::io::stdout();
    for n in numbers {
        let Some(q) = query(n) else { continue };
        let started = Instant::now();
        let mut answer = None;
        for (i, statement) in runner.parse(q.sql)?.into_iter().enumerate() {
            let outcome = runner.run(i + 1, statement).await?;
            if outcome.kind == StatementKind::Query {
                answer = Some(outcome);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        total += seconds;
        if let Some(outcome) = answer {
            let rows: usize = outcome.batches.iter().map(|b| b.num_rows()).sum();
            println!("TPC-H q{n}: {rows} row(s) in {seconds:.3} s");
            let shown: Vec<_> = outcome
                .batches
                .iter()
                .map(|b| b.slice(0, b.num_rows().min(5)))
                .collect();
            write_rows(
                &mut stdout.lock(),
                OutputFormat::Table,
                &outcome.schema,
                &shown[..shown.len().min(1)],
            )?;
        }
    }
    println!("total query time: {total:.3} s");
    Ok(())
}
