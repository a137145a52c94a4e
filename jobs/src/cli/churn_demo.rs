//! `ember demo churn`: the churn example end to end, from nothing.
//!
//! Generates the synthetic subscription business (unless the same data is
//! already there), writes the example pipeline next to it, runs the pipeline
//! embedded (or on `--cluster`) and ends with where everything is and the
//! headline numbers: held-out AUC, churn rate, and the riskiest customers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use clap::Args;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use ember_core::{ClusterTarget, EmberContext};

use crate::cli::pipeline_cmd::{DEFAULT_HISTORY, report};
use crate::demo::{ChurnDataConfig, generate_churn_data};
use crate::error::{JobsError, Result};
use crate::history::History;
use crate::output::{OutputFormat, write_rows};
use crate::pipeline::{Pipeline, RunOptions, run_pipeline};

/// The example pipeline, compiled in so the demo works from any directory.
pub const CHURN_PIPELINE: &str = include_str!("../../examples/churn/churn.toml");

/// Flags of `ember demo churn`.
#[derive(Debug, Args)]
pub struct ChurnDemoArgs {
    /// Where the data, the pipeline file and the outputs go.
    #[arg(long, default_value = "ember-demo/churn")]
    pub dir: PathBuf,
    /// Customers to simulate.
    #[arg(long, default_value_t = 5000)]
    pub customers: usize,
    /// The logical date (the data ends the day before).
    #[arg(long, default_value = "2026-11-01")]
    pub ds: String,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Only generate the data; do not run the pipeline.
    #[arg(long)]
    pub generate_only: bool,
    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,
    /// The run-history database.
    #[arg(long, env = "EMBER_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Never draw live progress, only log lines.
    #[arg(long)]
    pub no_progress: bool,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| JobsError::io(path, e))
}

/// Runs the demo.
pub async fn run(args: ChurnDemoArgs) -> Result<()> {
    let started = Instant::now();
    let ds = NaiveDate::parse_from_str(&args.ds, "%Y-%m-%d").map_err(|_| {
        JobsError::Usage(format!(
            "--ds '{}' is not a date; write YYYY-MM-DD",
            args.ds
        ))
    })?;
    let dir = absolute(&args.dir)?;
    std::fs::create_dir_all(&dir).map_err(|e| JobsError::io(&dir, e))?;
    let data_dir = dir.join("data");
    let config = ChurnDataConfig {
        customers: args.customers,
        seed: args.seed,
        as_of: ds,
        ..ChurnDataConfig::default()
    };
    let marker = dir.join("data-config.txt");
    let wanted = format!(
        "customers={} seed={} as_of={} months={}\n",
        config.customers, config.seed, config.as_of, config.months
    );
    let have = std::fs::read_to_string(&marker).unwrap_or_default();
    if have != wanted || !data_dir.exists() {
        eprintln!(
            "generating {} customers with billing and clickstream into {} ...",
            config.customers,
            data_dir.display()
        );
        let t = Instant::now();
        let summary = generate_churn_data(&config, &data_dir)?;
        std::fs::write(&marker, &wanted).map_err(|e| JobsError::io(&marker, e))?;
        eprintln!(
            "generated {} customers, {} bills, {} events ({} churners in the label window) in {:.1} s",
            summary.customers,
            summary.billing_rows,
            summary.events,
            summary.churners_in_label_window,
            t.elapsed().as_secs_f64()
        );
    } else {
        eprintln!("using the data already in {}", data_dir.display());
    }
    let pipeline_path = dir.join("churn.toml");
    std::fs::write(&pipeline_path, CHURN_PIPELINE).map_err(|e| JobsError::io(&pipeline_path, e))?;
    if args.generate_only {
        eprintln!("pipeline: {}", pipeline_path.display());
        return Ok(());
    }

    let pipeline = Arc::new(Pipeline::load(&pipeline_path)?);
    let history = Arc::new(History::open(&args.history)?);
    let target = ClusterTarget::parse(args.cluster.as_deref())?;
    let ember = Arc::new(EmberContext::connect(target).await?);
    let options = RunOptions {
        params: vec![(
            "data_dir".to_string(),
            data_dir.to_string_lossy().to_string(),
        )],
        output_dir: Some(dir.join("output")),
        live: !args.no_progress,
        ..RunOptions::manual(ds)
    };
    let result = run_pipeline(pipeline, ember, history, options).await?;
    eprint!("{}", report(&result));
    if !result.succeeded() {
        return Err(JobsError::Usage(format!(
            "the churn pipeline {} (run {}): {}",
            result.state.as_str(),
            result.run_id,
            result.error.clone().unwrap_or_default()
        )));
    }
    headline(&result.output_dir, &result.ds).await?;
    eprintln!(
        "done in {:.1} s. Inspect the run with `ember runs show {}`; the pipeline is {}",
        started.elapsed().as_secs_f64(),
        result.run_id,
        pipeline_path.display()
    );
    Ok(())
}

/// Prints the metrics and the riskiest customers from the outputs.
async fn headline(output_dir: &Path, ds: &str) -> Result<()> {
    let ctx = SessionContext::new();
    let metrics = output_dir.join("metrics").join(format!("ds={ds}"));
    let scores = output_dir.join("scores").join(format!("ds={ds}"));
    ctx.register_parquet(
        "metrics",
        &format!("{}/", metrics.display()),
        ParquetReadOptions::default(),
    )
    .await?;
    ctx.register_parquet(
        "scores",
        &format!("{}/", scores.display()),
        ParquetReadOptions::default(),
    )
    .await?;
    let show = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let df = ctx.sql(sql).await?;
            let schema = Arc::clone(df.schema().inner());
            let batches = df.collect().await?;
            let mut out = Vec::new();
            write_rows(&mut out, OutputFormat::Table, &schema, &batches)?;
            Ok::<String, JobsError>(String::from_utf8_lossy(&out).to_string())
        }
    };
    println!("held-out quality:");
    print!(
        "{}",
        show("SELECT round(auc, 4) AS auc, holdout_rows, round(churn_rate, 4) AS churn_rate FROM metrics").await?
    );
    println!("riskiest subscribers ({} scored):", scores.display());
    print!(
        "{}",
        show("SELECT customer_id, round(churn_probability, 4) AS churn_probability FROM scores ORDER BY churn_probability DESC, customer_id LIMIT 5").await?
    );
    Ok(())
}
