//! `ember score`: the one-line batch scoring job.
//!
//! Reads Parquet, appends the model's prediction to every row and writes
//! Parquet, atomically (the output appears complete or not at all). It is SQL
//! underneath — `SELECT *, predict(model, features...) FROM input` — so it runs
//! embedded or on a cluster like any query, with executors scoring their
//! partitions in parallel.
//!
//! Output columns: the input's columns, then `prediction` for a single-output
//! model (the probability of the positive class for a binary classifier, the
//! value for a regressor), or `prediction_0 .. prediction_{k-1}` (class
//! probabilities) for a multiclass model.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use arrow::datatypes::Schema;
use clap::Args;
use ember_core::{ClusterTarget, EmberContext};
use ember_udfs::config::EmberConfig;
use ember_udfs::scoring::{model_cache, model_ref};

use crate::error::{JobsError, Result};
use crate::sql::{SqlRunner, StatementKind};

const INPUT_TABLE: &str = "ember_score_input";

/// Flags of `ember score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model: a path or s3:// URI of an XGBoost JSON/UBJSON, LightGBM text or Ember model.
    #[arg(long)]
    pub model: String,

    /// The rows to score: a Parquet file or a directory of Parquet files.
    #[arg(long)]
    pub input: String,

    /// Where to write the scored rows: a file if it ends in `.parquet`, else a directory.
    #[arg(long)]
    pub output: String,

    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,

    /// Input columns to use as features, in the model's order (comma-separated).
    /// Needed only for a model saved without feature names; by default the
    /// model's feature names are the column names.
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,

    /// Name of the appended prediction column (a prefix for multiclass models).
    #[arg(long, default_value = "prediction")]
    pub prediction_column: String,

    /// Never draw job progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The feature columns to pass, checked against the input's schema.
fn feature_columns(
    args: &ScoreArgs,
    names: Option<&[String]>,
    input: &Schema,
    model: &str,
) -> Result<Vec<String>> {
    let columns: Vec<String> = match (args.features.is_empty(), names) {
        (false, _) => args.features.iter().map(|f| f.trim().to_string()).collect(),
        (true, Some(names)) => names.to_vec(),
        (true, None) => {
            return Err(JobsError::Usage(format!(
                "model '{model}' was saved without feature names; pass --features col1,col2,... in the model's order"
            )));
        }
    };
    let missing: Vec<&str> = columns
        .iter()
        .filter(|c| input.field_with_name(c).is_err())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(JobsError::Usage(format!(
            "input '{}' has no column(s) {} needed by model '{model}' (input columns: {})",
            args.input,
            missing.join(", "),
            input
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(columns)
}

/// The query that scores `table`: the `kept` columns (`*` for all) and one
/// prediction column per name in `outputs` (one for a single-output model,
/// one per class for multiclass, from `predict_proba`). `model_literal` and
/// `feature_list` are SQL text: the quoted model location and the quoted
/// feature columns in the model's order. `ember score` and pipelines' score
/// steps both run this.
pub(crate) fn prediction_query(
    model_literal: &str,
    feature_list: &str,
    num_outputs: usize,
    outputs: &[String],
    kept: &str,
    table: &str,
) -> String {
    if num_outputs == 1 {
        let column = outputs.first().map(String::as_str).unwrap_or("prediction");
        format!(
            "SELECT {kept}, predict({model_literal}, {feature_list}) AS {} FROM {table}",
            quote_ident(column)
        )
    } else {
        let per_class = outputs
            .iter()
            .enumerate()
            .map(|(i, name)| format!("__ember_p[{}] AS {}", i + 1, quote_ident(name)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT * EXCLUDE (__ember_p), {per_class} FROM \
             (SELECT {kept}, predict_proba({model_literal}, {feature_list}) AS __ember_p FROM {table})"
        )
    }
}

/// Runs `ember score`.
pub async fn run(args: ScoreArgs) -> Result<()> {
    let started = Instant::now();
    let input_path = Path::new(&args.input);
    if !args.input.contains("://") && !input_path.exists() {
        return Err(JobsError::Usage(format!(
            "input '{}' does not exist",
            args.input
        )));
    }
    let location = model_ref::resolve("ember score", &args.model, &EmberConfig::default())?;
    let (model, _) =
        model_cache::load_current(&location).map_err(|e| JobsError::Usage(e.to_string()))?;

    let target = ClusterTarget::parse(args.cluster.as_deref())?;
    let ember = EmberContext::connect(target).await?;
    let runner = SqlRunner::new(&ember, !args.no_progress);
    let table_location = if input_path.is_dir() && !args.input.ends_with('/') {
        format!("{}/", args.input)
    } else {
        args.input.clone()
    };
    let create = format!(
        "CREATE EXTERNAL TABLE {INPUT_TABLE} STORED AS PARQUET LOCATION {}",
        quote_literal(&table_location)
    );
    for statement in runner.parse(&create)? {
        runner.run(0, statement).await?;
    }
    let input_schema = ember
        .session()
        .table(INPUT_TABLE)
        .await?
        .schema()
        .inner()
        .clone();
    let features = feature_columns(
        &args,
        model.feature_names.as_deref(),
        &input_schema,
        &args.model,
    )?;
    let feature_list = features
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let model_literal = quote_literal(&location.0);

    let appended: Vec<String> = if model.num_outputs == 1 {
        vec![args.prediction_column.clone()]
    } else {
        (0..model.num_outputs)
            .map(|i| format!("{}_{i}", args.prediction_column))
            .collect()
    };
    if let Some(clash) = appended
        .iter()
        .find(|c| input_schema.field_with_name(c).is_ok())
    {
        return Err(JobsError::Usage(format!(
            "input '{}' already has a column '{clash}'; choose another name with --prediction-column",
            args.input
        )));
    }
    let query = prediction_query(
        &model_literal,
        &feature_list,
        model.num_outputs,
        &appended,
        "*",
        INPUT_TABLE,
    );
    let mut statements = runner.parse(&query)?;
    let statement = statements
        .pop()
        .ok_or_else(|| JobsError::Usage("internal: empty scoring query".to_string()))?;
    let outcome = runner.run_to_parquet(1, statement, &args.output).await?;
    if let StatementKind::Write { rows, target } = &outcome.kind {
        let seconds = started.elapsed().as_secs_f64();
        let message = format!(
            "scored {rows} row(s) with {} in {seconds:.2} s ({:.0} rows/s); wrote {target}",
            model.describe(),
            *rows as f64 / seconds.max(1e-9)
        );
        if std::io::stderr().is_terminal() || !args.no_progress {
            eprintln!("{message}");
        }
    }
    Ok(())
}
