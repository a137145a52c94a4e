//! `ember-bench`: TPC-H on Ember and on single-process DataFusion, side by
//! side, with answers verified against DataFusion.
//!
//! ```text
//! ember-bench tpch --sf 1 --runs 3 --verify --output results.json
//! ember-bench tpch --sf 1 --engines cluster --cluster df://127.0.0.1:50050
//! ```
//!
//! Engines: `datafusion` (one process, the floor Ember is measured against),
//! `embedded` (Ember's in-process scheduler and executor) and `cluster` (a
//! running Ember cluster, `--cluster`). Each query runs `--runs` times on each
//! engine, engines alternating run by run so machine noise hits all of them;
//! the JSON report gives every run, the best and the median.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use ember_benchmarks::report::{EngineReport, QueryReport, TpchReport};
use ember_benchmarks::tpch::{TPCH_TABLES, generate_cached, query, query_numbers, sf1_row_count};
use ember_benchmarks::verify::compare_results;
use ember_core::{ClusterTarget, EmberContext};

#[derive(Debug, Parser)]
#[command(name = "ember-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate TPC-H data (once) and time the 22 queries.
    Tpch(TpchArgs),
    /// Time a model's evaluator over rows held in memory, at fixed thread counts.
    Score(ember_benchmarks::scoring::ScoreArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    Datafusion,
    Embedded,
    Cluster,
}

#[derive(Debug, clap::Args)]
struct TpchArgs {
    /// Scale factor.
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Data directory (default: `benchmarks/data/tpch-sf<SF>`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Parquet files per table.
    #[arg(long, default_value_t = 4)]
    files: usize,
    /// Runs per query and engine.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Queries (default: all 22).
    #[arg(long, value_delimiter = ',')]
    queries: Vec<usize>,
    /// Engines to time.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Engine::Datafusion, Engine::Embedded])]
    engines: Vec<Engine>,
    /// The cluster for the `cluster` engine.
    #[arg(long, env = "EMBER_CLUSTER")]
    cluster: Option<String>,
    /// Target partitions for every engine (default: Ember's default, the
    /// number of cores).
    #[arg(long)]
    partitions: Option<usize>,
    /// Compare every answer with DataFusion's (and, at SF 1, with TPC-H's row counts).
    #[arg(long)]
    verify: bool,
    /// `SET key = value` applied to Ember sessions, e.g. `ballista.planner.adaptive.enabled=true`.
    #[arg(long = "set", value_parser = parse_key_value)]
    settings: Vec<(String, String)>,
    /// Write the JSON report here.
    #[arg(long)]
    output: Option<PathBuf>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("'{s}' is not key=value"))
}

/// One engine's session.
enum Session {
    DataFusion(SessionContext),
    Ember(Box<EmberContext>),
}

impl Session {
    fn ctx(&self) -> &SessionContext {
        match self {
            Session::DataFusion(ctx) => ctx,
            Session::Ember(ember) => ember.session(),
        }
    }

    /// Runs a script; returns the rows of its last query.
    async fn run(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        let mut last = Vec::new();
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let df = self.ctx().sql(statement).await.map_err(|e| e.to_string())?;
            let batches = df.collect().await.map_err(|e| e.to_string())?;
            if !batches.is_empty() {
                last = batches;
            }
        }
        Ok(last)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tpch(args) => tpch(args).await,
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

async fn tpch(args: TpchArgs) -> Result<(), String> {
    let numbers: Vec<usize> = if args.queries.is_empty() {
        query_numbers().collect()
    } else {
        args.queries.clone()
    };
    if let Some(bad) = numbers.iter().find(|n| query(**n).is_none()) {
        return Err(format!("--queries: there is no TPC-H query {bad}"));
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("benchmarks/data/tpch-sf{}", args.sf)));
    let started = Instant::now();
    let dir = generate_cached(args.sf, &dir, args.files).map_err(|e| e.to_string())?;
    let dir = std::path::absolute(&dir).map_err(|e| e.to_string())?;
    eprintln!(
        "data: {} ({:.1} s)",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    let partitions = args
        .partitions
        .unwrap_or_else(ember_core::config::default_target_partitions);

    let mut sessions = Vec::new();
    for engine in &args.engines {
        let session = match engine {
            Engine::Datafusion => Session::DataFusion(SessionContext::new_with_config(
                SessionConfig::new().with_target_partitions(partitions),
            )),
            Engine::Embedded => Session::Ember(Box::new(
                EmberContext::connect(ClusterTarget::Embedded)
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            Engine::Cluster => {
                let target =
                    ClusterTarget::parse(args.cluster.as_deref()).map_err(|e| e.to_string())?;
                if target == ClusterTarget::Embedded {
                    return Err("the cluster engine needs --cluster df://HOST:PORT".into());
                }
                Session::Ember(Box::new(
                    EmberContext::connect(target)
                        .await
                        .map_err(|e| e.to_string())?,
                ))
            }
        };
        let mut setup = format!("SET datafusion.execution.target_partitions = {partitions};");
        if matches!(session, Session::Ember(_)) {
            for (k, v) in &args.settings {
                setup.push_str(&format!("SET {k} = {v};"));
            }
        }
        for t in TPCH_TABLES {
            setup.push_str(&format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';",
                dir.join(t).display()
            ));
        }
        session.run(&setup).await?;
        sessions.push((*engine, session));
    }
    let oracle = if args.verify && !args.engines.contains(&Engine::Datafusion) {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new().with_target_partitions(partitions),
        );
        let session = Session::DataFusion(ctx);
        let mut setup = String::new();
        for t in TPCH_TABLES {
            setup.push_str(&format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';",
                dir.join(t).display()
            ));
        }
        session.run(&setup).await?;
        Some(session)
    } else {
        None
    };

    let mut reports: Vec<EngineReport> = args
        .engines
        .iter()
        .map(|e| EngineReport::new(format!("{e:?}").to_lowercase()))
        .collect();
    let mut failures = Vec::new();
    for n in &numbers {
        let Some(q) = query(*n) else { continue };
        let mut expected: Option<Vec<RecordBatch>> = None;
        if let Some(oracle) = &oracle {
            expected = Some(oracle.run(q.sql).await?);
        }
        let mut times = vec![Vec::new(); sessions.len()];
        let mut answers: Vec<Option<Vec<RecordBatch>>> = vec![None; sessions.len()];
        for _ in 0..args.runs.max(1) {
            for (i, (_, session)) in sessions.iter().enumerate() {
                let started = Instant::now();
                let batches = session.run(q.sql).await.map_err(|e| format!("q{n}: {e}"))?;
                times[i].push(started.elapsed().as_secs_f64());
                answers[i] = Some(batches);
            }
        }
        if args.verify && expected.is_none() {
            expected = sessions
                .iter()
                .position(|(e, _)| *e == Engine::Datafusion)
                .and_then(|i| answers[i].clone());
        }
        for (i, (engine, _)) in sessions.iter().enumerate() {
            let answer = answers[i].take().unwrap_or_default();
            let rows = answer.iter().map(RecordBatch::num_rows).sum();
            let verified = match (&expected, args.verify) {
                (Some(expected), true) => {
                    match compare_results(expected, &answer, q.is_ordered()) {
                        Ok(()) => Some(true),
                        Err(diff) => {
                            failures.push(format!("q{n} on {engine:?}: {diff}"));
                            Some(false)
                        }
                    }
                }
                _ => None,
            };
            if args.verify && args.sf == 1.0 && sf1_row_count(*n) != Some(rows) {
                failures.push(format!(
                    "q{n} on {engine:?}: {rows} rows, TPC-H gives {:?}",
                    sf1_row_count(*n)
                ));
            }
            let report = QueryReport::new(*n, std::mem::take(&mut times[i]), rows, verified);
            eprintln!(
                "q{n:<2} {:<10} best {:>8.3} s  median {:>8.3} s  rows {rows}",
                reports[i].engine, report.best_s, report.median_s
            );
            reports[i].queries.push(report);
        }
    }
    let report = TpchReport::new(args.sf, partitions, args.runs, reports);
    eprintln!("{}", report.summary());
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    match &args.output {
        Some(path) => std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?,
        None => println!("{json}"),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} answer(s) failed verification:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}
