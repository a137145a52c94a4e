//! `ember-bench tpch`: the 22 queries on every engine asked for, run by run
//! in turn, each answer checked against single-process DataFusion.
//!
//! Engines: `datafusion` (one process, the floor Ember is measured against),
//! `embedded` (Ember's in-process scheduler and executor), `cluster` (a
//! running Ember cluster, `--cluster`) and `spark` (Apache Spark through
//! `benchmarks/spark/tpch_spark.py`, see [`crate::spark`]). For each query,
//! every engine runs once, then every engine again, `--runs` times, so
//! machine noise hits all of them alike; the report keeps every run, the best
//! and the median.
//!
//! Ember's answers are compared cell by cell with DataFusion's (and at SF 1
//! with the row counts of the TPC-H specification); Spark's, which stay in
//! the Spark process, by their row count.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::ValueEnum;
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use ember_core::object_store::EmberObjectStoreRegistry;
use ember_core::{ClusterTarget, EmberContext};

use crate::error::{BenchError, Result};
use crate::report::{EngineReport, QueryReport, TpchReport, write_report_files};
use crate::spark::{SparkOptions, SparkServer};
use crate::tpch::{TPCH_TABLES, generate_cached, query, query_numbers, sf1_row_count};
use crate::verify::compare_results;

/// An engine `ember-bench tpch` can time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Single-process DataFusion.
    Datafusion,
    /// Ember with its in-process scheduler and executor.
    Embedded,
    /// Ember on a running cluster (`--cluster`).
    Cluster,
    /// Apache Spark (`--spark-python`, `--spark-master`).
    Spark,
}

impl Engine {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Datafusion => "datafusion",
            Engine::Embedded => "embedded",
            Engine::Cluster => "cluster",
            Engine::Spark => "spark",
        }
    }
}

/// Arguments of `ember-bench tpch`.
#[derive(Debug, clap::Args)]
pub struct TpchArgs {
    /// Scale factor.
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// Data directory (default: `benchmarks/data/tpch-sf<SF>`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Read the tables from here instead (`s3://bucket/tpch-sf10`, or a path
    /// every node of a cluster sees): one Parquet directory per table, as
    /// `--data-dir` holds them. Nothing is generated.
    #[arg(long, conflicts_with = "data_dir")]
    pub data_url: Option<String>,
    /// Parquet files per table.
    #[arg(long, default_value_t = 4)]
    pub files: usize,
    /// Runs per query and engine.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Queries (default: all 22).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<usize>,
    /// Engines to time, in the order they take turns.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Engine::Datafusion, Engine::Embedded])]
    pub engines: Vec<Engine>,
    /// The cluster for the `cluster` engine.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,
    /// Target partitions for every engine, Spark's shuffle partitions
    /// included (default: Ember's default, the number of cores).
    #[arg(long)]
    pub partitions: Option<usize>,
    /// Compare every answer with DataFusion's (and, at SF 1, with TPC-H's row counts).
    #[arg(long)]
    pub verify: bool,
    /// `SET key = value` applied to Ember sessions, e.g. `ballista.planner.adaptive.enabled=true`.
    #[arg(long = "set", value_parser = parse_key_value)]
    pub settings: Vec<(String, String)>,
    /// The Python that has `pyspark` (for the `spark` engine).
    #[arg(long, env = "EMBER_BENCH_PYTHON", default_value = "python3")]
    pub spark_python: PathBuf,
    /// Spark's master: `local[N]` (default: N = the partitions) or `spark://HOST:7077`.
    #[arg(long)]
    pub spark_master: Option<String>,
    /// Spark driver memory.
    #[arg(long, default_value = "4g")]
    pub spark_driver_memory: String,
    /// Extra Spark settings, `KEY=VALUE`.
    #[arg(long = "spark-conf")]
    pub spark_conf: Vec<String>,
    /// The Spark runner (default: `benchmarks/spark/tpch_spark.py` of this checkout).
    #[arg(long)]
    pub spark_runner: Option<PathBuf>,
    /// Write the report here as JSON, with a Markdown table (`.md`) and a
    /// chart (`.svg`) beside it.
    #[arg(long)]
    pub output: Option<PathBuf>,
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
    Spark(SparkServer),
}

/// One run of a query: its time and its answer (Spark keeps its answer and
/// reports only the row count).
struct Run {
    seconds: f64,
    rows: usize,
    answer: Option<Vec<RecordBatch>>,
}

impl Session {
    /// Runs a script; returns the rows of its last query.
    async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut last = Vec::new();
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let batches = ctx.sql(statement).await?.collect().await?;
            if !batches.is_empty() {
                last = batches;
            }
        }
        Ok(last)
    }

    async fn setup(&self, sql: &str) -> Result<()> {
        match self {
            Session::DataFusion(ctx) => Self::run_sql(ctx, sql).await.map(drop),
            Session::Ember(ember) => Self::run_sql(ember.session(), sql).await.map(drop),
            Session::Spark(_) => Ok(()),
        }
    }

    async fn run(&mut self, n: usize, sql: &str) -> Result<Run> {
        let sql_run = |batches: Vec<RecordBatch>, started: Instant| Run {
            seconds: started.elapsed().as_secs_f64(),
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
            answer: Some(batches),
        };
        match self {
            Session::DataFusion(ctx) => {
                let started = Instant::now();
                Ok(sql_run(Self::run_sql(ctx, sql).await?, started))
            }
            Session::Ember(ember) => {
                let started = Instant::now();
                Ok(sql_run(Self::run_sql(ember.session(), sql).await?, started))
            }
            Session::Spark(spark) => {
                let (seconds, rows) = tokio::task::block_in_place(|| spark.run(n))?;
                Ok(Run {
                    seconds,
                    rows,
                    answer: None,
                })
            }
        }
    }
}

fn table_ddl(location: &str) -> String {
    TPCH_TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/{t}/';",
                location.trim_end_matches('/')
            )
        })
        .collect()
}

/// Single-process DataFusion, reading S3 the way Ember does.
fn datafusion_context(partitions: usize) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(EmberObjectStoreRegistry::new()))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(
        SessionConfig::new().with_target_partitions(partitions),
        runtime,
    ))
}

/// Where the tables are: a generated local directory or `--data-url`.
async fn data_location(args: &TpchArgs) -> Result<String> {
    if let Some(url) = &args.data_url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("benchmarks/data/tpch-sf{}", args.sf)));
    let started = Instant::now();
    let (sf, files) = (args.sf, args.files);
    let dir = tokio::task::spawn_blocking(move || generate_cached(sf, &dir, files))
        .await
        .map_err(|e| BenchError::Invalid(format!("generating TPC-H data: {e}")))??;
    let dir = std::path::absolute(&dir).map_err(|e| BenchError::io(&dir, e))?;
    eprintln!(
        "data: {} ({:.1} s)",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir.to_string_lossy().to_string())
}

async fn open_session(
    engine: Engine,
    args: &TpchArgs,
    location: &str,
    partitions: usize,
) -> Result<(Session, Option<String>)> {
    let session = match engine {
        Engine::Datafusion => Session::DataFusion(datafusion_context(partitions)?),
        Engine::Embedded => Session::Ember(Box::new(
            EmberContext::connect(ClusterTarget::Embedded).await?,
        )),
        Engine::Cluster => {
            let target = ClusterTarget::parse(args.cluster.as_deref())?;
            if target == ClusterTarget::Embedded {
                return Err(BenchError::Invalid(
                    "the cluster engine needs --cluster df://HOST:PORT".into(),
                ));
            }
            Session::Ember(Box::new(EmberContext::connect(target).await?))
        }
        Engine::Spark => {
            let options = SparkOptions {
                python: args.spark_python.clone(),
                runner: args
                    .spark_runner
                    .clone()
                    .unwrap_or_else(SparkOptions::default_runner),
                master: args
                    .spark_master
                    .clone()
                    .unwrap_or_else(|| format!("local[{partitions}]")),
                partitions,
                data_dir: location.to_string(),
                driver_memory: args.spark_driver_memory.clone(),
                conf: args.spark_conf.clone(),
            };
            let server = tokio::task::block_in_place(|| SparkServer::start(&options))?;
            let detail = server.detail.clone();
            return Ok((Session::Spark(server), Some(detail)));
        }
    };
    let mut setup = format!("SET datafusion.execution.target_partitions = {partitions};");
    if matches!(session, Session::Ember(_)) {
        for (k, v) in &args.settings {
            setup.push_str(&format!("SET {k} = {v};"));
        }
    }
    setup.push_str(&table_ddl(location));
    session.setup(&setup).await?;
    let detail = match engine {
        Engine::Datafusion => format!("DataFusion 55, one process, {partitions} partitions"),
        Engine::Embedded => {
            format!("Ember embedded (Ballista 55 in-process), {partitions} partitions")
        }
        _ => format!(
            "Ember on {}, {partitions} partitions",
            args.cluster.as_deref().unwrap_or("?")
        ),
    };
    Ok((session, Some(detail)))
}

/// Runs `ember-bench tpch`.
pub async fn run(args: TpchArgs) -> Result<()> {
    let numbers: Vec<usize> = if args.queries.is_empty() {
        query_numbers().collect()
    } else {
        args.queries.clone()
    };
    if let Some(bad) = numbers.iter().find(|n| query(**n).is_none()) {
        return Err(BenchError::Invalid(format!(
            "--queries: there is no TPC-H query {bad}"
        )));
    }
    if args.engines.is_empty() {
        return Err(BenchError::Invalid("--engines: name at least one".into()));
    }
    let location = data_location(&args).await?;
    let partitions = args
        .partitions
        .unwrap_or_else(ember_core::config::default_target_partitions);

    let mut sessions = Vec::new();
    let mut reports = Vec::new();
    for engine in &args.engines {
        let (session, detail) = open_session(*engine, &args, &location, partitions).await?;
        sessions.push((*engine, session));
        let mut report = EngineReport::new(engine.name().to_string());
        report.detail = detail;
        reports.push(report);
    }
    let mut oracle = match (args.verify, args.engines.contains(&Engine::Datafusion)) {
        (true, false) => Some(
            open_session(Engine::Datafusion, &args, &location, partitions)
                .await?
                .0,
        ),
        _ => None,
    };

    let mut failures = Vec::new();
    for n in &numbers {
        let Some(q) = query(*n) else { continue };
        let mut expected: Option<Vec<RecordBatch>> = None;
        if let Some(oracle) = &mut oracle {
            expected = oracle.run(*n, q.sql).await?.answer;
        }
        let mut times = vec![Vec::new(); sessions.len()];
        let mut last: Vec<Option<Run>> = (0..sessions.len()).map(|_| None).collect();
        // An engine that fails a query is reported and skips its other runs
        // of it; the other engines and queries go on.
        let mut failed = vec![false; sessions.len()];
        for _ in 0..args.runs.max(1) {
            for (i, (engine, session)) in sessions.iter_mut().enumerate() {
                if failed[i] {
                    continue;
                }
                match session.run(*n, q.sql).await {
                    Ok(run) => {
                        times[i].push(run.seconds);
                        last[i] = Some(run);
                    }
                    Err(e) => {
                        let error = BenchError::Query {
                            query: *n,
                            engine: engine.name().to_string(),
                            source: Box::new(e),
                        };
                        eprintln!("{error}");
                        failures.push(error.to_string());
                        failed[i] = true;
                        last[i] = None;
                    }
                }
            }
        }
        if args.verify && expected.is_none() {
            expected = sessions
                .iter()
                .position(|(e, _)| *e == Engine::Datafusion)
                .and_then(|i| last[i].as_ref().and_then(|r| r.answer.clone()));
        }
        for (i, (engine, _)) in sessions.iter().enumerate() {
            let Some(run) = last[i].take() else { continue };
            let verified = match (&expected, &run.answer, args.verify) {
                (Some(expected), Some(answer), true) => {
                    match compare_results(expected, answer, q.is_ordered()) {
                        Ok(()) => Some(true),
                        Err(diff) => {
                            failures.push(format!("q{n} on {}: {diff}", engine.name()));
                            Some(false)
                        }
                    }
                }
                (Some(expected), None, true) => {
                    let want: usize = expected.iter().map(RecordBatch::num_rows).sum();
                    if want != run.rows {
                        failures.push(format!(
                            "q{n} on {}: {} rows, DataFusion gives {want}",
                            engine.name(),
                            run.rows
                        ));
                    }
                    None
                }
                _ => None,
            };
            if args.verify && args.sf == 1.0 && sf1_row_count(*n) != Some(run.rows) {
                failures.push(format!(
                    "q{n} on {}: {} rows, TPC-H gives {:?}",
                    engine.name(),
                    run.rows,
                    sf1_row_count(*n)
                ));
            }
            let report = QueryReport::new(*n, std::mem::take(&mut times[i]), run.rows, verified);
            eprintln!(
                "q{n:<2} {:<10} best {:>8.3} s  median {:>8.3} s  rows {}",
                reports[i].engine, report.best_s, report.median_s, run.rows
            );
            reports[i].queries.push(report);
        }
    }
    drop(sessions);
    let report = TpchReport::new(args.sf, partitions, args.runs, reports);
    eprintln!("{}", report.summary());
    match &args.output {
        Some(path) => {
            for written in write_report_files(&report, path)? {
                eprintln!("wrote {}", written.display());
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| BenchError::Invalid(e.to_string()))?
        ),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failures(failures))
    }
}
