//! `ember train`: one model over a whole Parquet dataset, written to a file.
//!
//! `--model gbdt` (default) writes XGBoost JSON, `linear` and `logistic` write
//! Ember linear JSON — the formats `predict` and `ember score` read, and in
//! the GBDT case what `xgboost.Booster(model_file=...)` loads. With no
//! parameters the GBDT uses XGBoost's defaults and 100 rounds. Embedded by
//! default; `--cluster df://host:port` runs every pass on the cluster.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::DataType;
use clap::{Args, ValueEnum};
use ember_core::{ClusterTarget, EmberContext};
use ember_udfs::training::params::{GbdtParams, LinearParams, LogisticParams, parse_param_text};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use crate::error::{JobsError, Result};
use crate::train::{self, TrainEngine, TrainProgress, write_model_file};

const INPUT_TABLE: &str = "ember_train_input";

/// What to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// Gradient-boosted trees (histogram method), saved as XGBoost JSON.
    Gbdt,
    /// Least squares (ridge with l2 > 0), saved as Ember linear JSON.
    Linear,
    /// Logistic regression (Newton's method), saved as Ember linear JSON.
    Logistic,
}

/// Flags of `ember train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The training rows: a Parquet file or a directory of Parquet files.
    #[arg(long)]
    pub input: String,

    /// The label column.
    #[arg(long)]
    pub label: String,

    /// Feature columns, comma-separated (default: every numeric column but the label).
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,

    /// Where to write the model (replaced atomically).
    #[arg(long)]
    pub model_out: PathBuf,

    /// The kind of model.
    #[arg(long, value_enum, default_value = "gbdt")]
    pub model: ModelKind,

    /// A training parameter, `name=value` (repeatable), with XGBoost's names:
    /// objective, num_boost_round, max_depth, eta, lambda, min_child_weight,
    /// gamma, max_bin; l2, max_iter, tol for linear/logistic.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,

    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,

    /// Directory for intermediate tables on a cluster (must be visible to
    /// every executor); default: next to --model-out.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,

    /// Never draw progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

fn param_map(args: &TrainArgs, function: &'static str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for text in &args.params {
        map.extend(parse_param_text(function, text)?);
    }
    Ok(map)
}

fn is_trainable(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// What a training run made.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// One line: model kind, rows, features, trees.
    pub summary: String,
    /// Where it ran (`embedded` or the cluster address).
    pub engine: String,
    /// The feature columns, in the model's order.
    pub features: Vec<String>,
}

/// Runs `ember train`.
pub async fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    let report = train_to_file(&args).await?;
    eprintln!(
        "{} in {:.2} s on {}; wrote {}",
        report.summary,
        started.elapsed().as_secs_f64(),
        report.engine,
        args.model_out.display()
    );
    Ok(())
}

/// Trains the model `args` describe and writes it (atomically) to
/// `args.model_out`; pipelines' train steps call this too.
pub async fn train_to_file(args: &TrainArgs) -> Result<TrainReport> {
    let input_path = Path::new(&args.input);
    if !args.input.contains("://") && !input_path.exists() {
        return Err(JobsError::Usage(format!(
            "input '{}' does not exist",
            args.input
        )));
    }
    // Parameters are checked before any work starts.
    let function = match args.model {
        ModelKind::Gbdt => "train_gbdt",
        ModelKind::Linear => "train_linear",
        ModelKind::Logistic => "train_logistic",
    };
    let map = param_map(args, function)?;
    let gbdt = (args.model == ModelKind::Gbdt)
        .then(|| GbdtParams::from_map(function, &map))
        .transpose()?;
    let linear = (args.model == ModelKind::Linear)
        .then(|| LinearParams::from_map(function, &map))
        .transpose()?;
    let logistic = (args.model == ModelKind::Logistic)
        .then(|| LogisticParams::from_map(function, &map))
        .transpose()?;

    let target = ClusterTarget::parse(args.cluster.as_deref())?;
    let engine = match target {
        ClusterTarget::Embedded => TrainEngine::local()?,
        remote => {
            let ember = EmberContext::connect(remote).await?;
            // Hundreds of short jobs: Ballista's push mode has the lower latency.
            ember.set_job_status_polling(false)?;
            // Their shuffles are one histogram per partition.
            ember.set_shuffle_compression(false)?;
            let base = match &args.work_dir {
                Some(dir) => dir.clone(),
                None => std::path::absolute(&args.model_out)
                    .map_err(|e| JobsError::io(&args.model_out, e))?
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let dir = std::path::absolute(
                base.join(format!(".ember-train-{}", uuid::Uuid::new_v4().simple())),
            )
            .map_err(|e| JobsError::io(&base, e))?;
            std::fs::create_dir_all(&dir).map_err(|e| JobsError::io(&dir, e))?;
            TrainEngine::Cluster {
                ember: Box::new(ember),
                work_dir: dir,
            }
        }
    };
    let result = train_with(&engine, args, gbdt, linear, logistic).await;
    if let TrainEngine::Cluster { work_dir, .. } = &engine {
        let _ = std::fs::remove_dir_all(work_dir);
    }
    let (text, summary, features) = result?;
    write_model_file(&args.model_out, &text)?;
    Ok(TrainReport {
        summary,
        engine: engine.describe(),
        features,
    })
}

async fn train_with(
    engine: &TrainEngine,
    args: &TrainArgs,
    gbdt: Option<GbdtParams>,
    linear: Option<LinearParams>,
    logistic: Option<LogisticParams>,
) -> Result<(String, String, Vec<String>)> {
    let location = if Path::new(&args.input).is_dir() && !args.input.ends_with('/') {
        format!("{}/", args.input)
    } else {
        args.input.clone()
    };
    engine.register_parquet(INPUT_TABLE, &location).await?;
    let schema = engine
        .session()
        .table(INPUT_TABLE)
        .await?
        .schema()
        .inner()
        .clone();
    let column_type = |name: &str| schema.field_with_name(name).map(|f| f.data_type().clone());
    let available = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match column_type(&args.label) {
        Ok(t) if is_trainable(&t) => {}
        Ok(t) => {
            return Err(JobsError::Usage(format!(
                "label '{}' has type {t}; it must be numeric",
                args.label
            )));
        }
        Err(_) => {
            return Err(JobsError::Usage(format!(
                "input '{}' has no label column '{}' (columns: {})",
                args.input,
                args.label,
                available()
            )));
        }
    }
    let features: Vec<String> = if args.features.is_empty() {
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != &args.label && is_trainable(f.data_type()))
            .map(|f| f.name().clone())
            .collect()
    } else {
        args.features.iter().map(|f| f.trim().to_string()).collect()
    };
    if features.is_empty() {
        return Err(JobsError::Usage(format!(
            "input '{}' has no numeric feature columns besides the label",
            args.input
        )));
    }
    for feature in &features {
        match column_type(feature) {
            Ok(t) if is_trainable(&t) => {}
            Ok(t) => {
                return Err(JobsError::Usage(format!(
                    "feature '{feature}' has type {t}; features must be numeric (encode categories first)"
                )));
            }
            Err(_) => {
                return Err(JobsError::Usage(format!(
                    "input '{}' has no column '{feature}' (columns: {})",
                    args.input,
                    available()
                )));
            }
        }
    }

    let bar = progress_bar(!args.no_progress && std::io::stderr().is_terminal());
    let tree_jobs = std::sync::Mutex::new(None);
    let report = |p: TrainProgress| match p {
        TrainProgress::TreeJobs { jobs, missing } => {
            if let Ok(mut seen) = tree_jobs.lock() {
                *seen = Some(jobs - missing);
            }
            if missing > 0 {
                bar.suspend(|| {
                    eprintln!(
                        "note: {missing} of {jobs} tree jobs could not grow their tree (a \
                         partition's rows or state not held where Ballista ran its task, or the \
                         job failed; see the log) and it was grown with one query per level \
                         instead; the model is the same, only slower"
                    )
                });
            }
        }
        TrainProgress::Pass(name) => bar.set_message(format!("{name} done")),
        TrainProgress::Step { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        TrainProgress::Reread { levels, total } => bar.suspend(|| {
            eprintln!(
                "note: {levels} of {total} tree levels re-read the binned table because the \
                 processes that ran them had not kept its rows (partitions that moved between \
                 executors, a restarted executor, or more rows than the executors' \
                 --training-rows-memory); the model is the same, only slower"
            )
        }),
    };
    let outcome = if let Some(params) = gbdt {
        let model = train::train_gbdt(
            engine,
            INPUT_TABLE,
            &args.label,
            &features,
            &params,
            &report,
        )
        .await?;
        let in_jobs = match tree_jobs.lock().ok().and_then(|seen| *seen) {
            Some(grown) => format!(" ({grown} grown in one cluster job each)"),
            None => String::new(),
        };
        let summary = format!(
            "trained gbdt ({}) on {} rows x {} features: {} trees{in_jobs}, {} leaves",
            model.objective.name(),
            model.rows,
            features.len(),
            model.trees.len(),
            model
                .trees
                .iter()
                .map(|t| t.nodes.iter().filter(|n| n.is_leaf()).count())
                .sum::<usize>()
        );
        (model.to_xgboost_json()?, summary)
    } else if let Some(params) = linear {
        let text =
            train::train_linear(engine, INPUT_TABLE, &args.label, &features, params.l2).await?;
        (
            text,
            format!(
                "trained linear least squares on {} features",
                features.len()
            ),
        )
    } else if let Some(params) = logistic {
        let model = train::train_logistic(
            engine,
            INPUT_TABLE,
            &args.label,
            &features,
            &params,
            &report,
        )
        .await?;
        let summary = format!(
            "trained logistic regression on {} rows x {} features in {} Newton iterations",
            model.params.get("rows").cloned().unwrap_or_default(),
            features.len(),
            model.params.get("iterations").cloned().unwrap_or_default()
        );
        let text = serde_json::to_string_pretty(&model)
            .map_err(|e| JobsError::Usage(format!("internal: {e}")))?;
        (text, summary)
    } else {
        return Err(JobsError::Usage("internal: no model kind".into()));
    };
    bar.finish_and_clear();
    Ok((outcome.0, outcome.1, features))
}

fn progress_bar(enabled: bool) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if enabled {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("training {bar:30} {pos}/{len} {msg} [{elapsed}]")
        {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}
