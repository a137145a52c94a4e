//! `ember run`, `ember runs`, `ember schedule` and `ember backfill`: the
//! pipeline commands.
//!
//! All four share the run history (`--history`, default
//! `.ember/history.sqlite` under the current directory, or `$EMBER_HISTORY`),
//! so `ember runs list` shows scheduled, backfilled and manual runs alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use ember_core::{ClusterTarget, EmberContext};

use crate::error::{JobsError, Result};
use crate::history::{History, RunState, render};
use crate::pipeline::{Pipeline, RunOptions, RunResult, run_pipeline, scheduler};

/// The default history file.
pub const DEFAULT_HISTORY: &str = ".ember/history.sqlite";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Flags every pipeline command shares.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,
    /// The run-history database.
    #[arg(long, env = "EMBER_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// A pipeline parameter, `name=value` (repeatable); overrides `[params]`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Where outputs go (overrides the pipeline's `output_dir`).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Never draw live progress, only log lines.
    #[arg(long)]
    pub no_progress: bool,
    /// Print nothing while running (the final report still prints).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `ember run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (optional with --resume: the run's file is used).
    pub pipeline: Option<PathBuf>,
    /// The logical date, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub ds: Option<String>,
    /// Re-run only the failed and skipped steps of this run.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    /// How to print the final report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ember runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The latest runs, newest first.
    List(RunsListArgs),
    /// One run: its steps, attempts, errors and artifacts.
    Show(RunsShowArgs),
}

/// Flags of `ember runs list`.
#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Only runs of this pipeline.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// The run-history database.
    #[arg(long, env = "EMBER_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
}

/// Flags of `ember runs show`.
#[derive(Debug, Args)]
pub struct RunsShowArgs {
    /// The run id (see `ember runs list`).
    pub id: i64,
    /// The run-history database.
    #[arg(long, env = "EMBER_HISTORY", default_value = DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
}

/// Flags of `ember schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The directory of pipeline files; those with a [schedule] run by it.
    pub dir: PathBuf,
    /// Check once what is due, run it, and exit (for cron-driven setups and tests).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `ember backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// First date, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last date, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_date(flag: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| JobsError::Usage(format!("{flag} '{text}' is not a date; write YYYY-MM-DD")))
}

fn parse_params(params: &[String]) -> Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| JobsError::Usage(format!("--param '{p}': write NAME=VALUE")))
        })
        .collect()
}

fn open_history(path: &Path) -> Result<Arc<History>> {
    Ok(Arc::new(History::open(path)?))
}

async fn connect(common: &CommonArgs) -> Result<Arc<EmberContext>> {
    let target = ClusterTarget::parse(common.cluster.as_deref())?;
    Ok(Arc::new(EmberContext::connect(target).await?))
}

fn options(common: &CommonArgs, ds: NaiveDate) -> Result<RunOptions> {
    Ok(RunOptions {
        params: parse_params(&common.params)?,
        output_dir: common.output_dir.clone(),
        live: !common.no_progress,
        quiet: common.quiet,
        ..RunOptions::manual(ds)
    })
}

fn load(path: &Path) -> Result<Arc<Pipeline>> {
    Ok(Arc::new(Pipeline::load(path).map_err(JobsError::from)?))
}

/// The report printed when a run ends.
pub fn report(result: &RunResult) -> String {
    let mut out = format!(
        "run {} of '{}' for {}: {} in {:.1} s\n",
        result.run_id,
        result.pipeline,
        result.ds,
        result.state.as_str(),
        result.seconds
    );
    for step in &result.steps {
        let rows = step
            .rows_written
            .map(|r| format!(", {r} rows"))
            .unwrap_or_default();
        let error = step
            .error
            .as_deref()
            .map(|e| format!(" — {}", crate::error::one_line(e)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<22} {:<10} {} attempt(s){rows}{error}\n",
            step.name,
            step.state.as_str(),
            step.attempts
        ));
    }
    for (step, kind, name, value) in &result.artifacts {
        match kind.as_str() {
            "model" => out.push_str(&format!("  model ({step}): {value}\n")),
            "metrics" if name == "headline" => {
                out.push_str(&format!("  metrics ({step}): {value}\n"))
            }
            _ => {}
        }
    }
    out.push_str(&format!("  outputs: {}\n", result.output_dir.display()));
    out
}

fn finish(result: RunResult, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Text => eprint!("{}", report(&result)),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        ),
    }
    if result.state == RunState::Succeeded {
        Ok(())
    } else {
        Err(JobsError::Usage(format!(
            "run {} {}: {}; after fixing, `ember run --resume {}` re-runs what failed",
            result.run_id,
            result.state.as_str(),
            result.error.unwrap_or_default(),
            result.run_id
        )))
    }
}

/// Runs `ember run`.
pub async fn run(args: RunArgs) -> Result<()> {
    let history = open_history(&args.common.history)?;
    let path = match (&args.pipeline, args.resume) {
        (Some(p), _) => p.clone(),
        (None, Some(id)) => PathBuf::from(history.run(id)?.pipeline_path),
        (None, None) => {
            return Err(JobsError::Usage(
                "give a pipeline file (or --resume RUN_ID)".to_string(),
            ));
        }
    };
    let pipeline = load(&path)?;
    let ds = match &args.ds {
        Some(text) => parse_date("--ds", text)?,
        None => chrono::Local::now().date_naive(),
    };
    let mut options = options(&args.common, ds)?;
    options.resume = args.resume;
    let ember = connect(&args.common).await?;
    let result = run_pipeline(pipeline, ember, history, options)
        .await
        .map_err(JobsError::from)?;
    finish(result, args.format)
}

/// Runs `ember runs ...`.
pub async fn runs(command: RunsCommand) -> Result<()> {
    match command {
        RunsCommand::List(args) => {
            let history = open_history(&args.history)?;
            history.mark_dead_runs()?;
            let runs = history.list_runs(args.pipeline.as_deref(), args.limit)?;
            match args.format {
                ReportFormat::Text => print!("{}", render::runs_table(&runs)),
                ReportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).unwrap_or_default()
                ),
            }
        }
        RunsCommand::Show(args) => {
            let history = open_history(&args.history)?;
            history.mark_dead_runs()?;
            let details = history.run(args.id)?;
            match args.format {
                ReportFormat::Text => print!("{}", render::run_report(&details)),
                ReportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&details).unwrap_or_default()
                ),
            }
        }
    }
    Ok(())
}

/// Runs `ember schedule`.
pub async fn schedule(args: ScheduleArgs) -> Result<()> {
    let history = open_history(&args.common.history)?;
    let target = ClusterTarget::parse(args.common.cluster.as_deref())?;
    let template = options(&args.common, chrono::Local::now().date_naive())?;
    let clock: scheduler::Clock = Arc::new(chrono::Utc::now);
    let mut scheduler = scheduler::Scheduler::new(&args.dir, target, history, clock, template);
    let found = scheduler.pipelines().map_err(JobsError::from)?;
    eprintln!(
        "ember schedule: {} scheduled pipeline(s) in {}: {}",
        found.len(),
        args.dir.display(),
        found
            .iter()
            .map(|(p, _)| format!(
                "{} ({})",
                p.spec.name,
                p.spec
                    .schedule
                    .as_ref()
                    .map(|s| s.cron.as_str())
                    .unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if args.once {
        let results = scheduler.tick().await.map_err(JobsError::from)?;
        for r in &results {
            eprint!("{}", report(r));
        }
        return Ok(());
    }
    scheduler.run_forever().await.map_err(JobsError::from)
}

/// Runs `ember backfill`.
pub async fn backfill(args: BackfillArgs) -> Result<()> {
    let from = parse_date("--from", &args.from)?;
    let to = parse_date("--to", &args.to)?;
    let history = open_history(&args.common.history)?;
    let pipeline = load(&args.pipeline)?;
    let target = ClusterTarget::parse(args.common.cluster.as_deref())?;
    let template = options(&args.common, from)?;
    let results = scheduler::backfill(pipeline, target, history, from, to, template)
        .await
        .map_err(JobsError::from)?;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .map(|r| format!("{} (run {})", r.ds, r.run_id))
        .collect();
    for r in &results {
        eprint!("{}", report(r));
    }
    if failed.is_empty() {
        eprintln!("backfill: {} date(s) succeeded", results.len());
        Ok(())
    } else {
        Err(JobsError::Usage(format!(
            "backfill: {} of {} date(s) failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        )))
    }
}
