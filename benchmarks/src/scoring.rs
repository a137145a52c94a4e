//! `ember-bench score`: Ember's evaluator timed the way the libraries'
//! predictors are timed by `benchmarks/scoring/side_by_side.py`: rows already
//! in memory, one call over all of them, at a fixed number of threads.
//!
//! The rows are read from Parquet into `Float64` columns in the model's
//! feature order first (not timed, as the libraries are handed a ready numpy
//! matrix); each run then computes raw scores and predictions for every row
//! inside a rayon pool of exactly `threads` threads. The report gives the best
//! of `runs`, rows per second and rows per second per thread, and can write
//! the predictions for the script to compare with the library's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use ember_udfs::scoring::model::Model;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

/// Flags of `ember-bench score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The rows, as one Parquet file whose columns include the model's features.
    #[arg(long)]
    pub input: PathBuf,
    /// Thread counts to time.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    pub threads: Vec<usize>,
    /// Runs per thread count (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Write the predictions (column `prediction`, or `prediction_<k>`) here as Parquet.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Timing at one thread count.
#[derive(Debug, Serialize)]
pub struct ThreadTiming {
    /// Threads in the pool.
    pub threads: usize,
    /// Best wall time of a run, seconds.
    pub best_seconds: f64,
    /// Rows per second in the best run.
    pub rows_per_second: f64,
    /// Rows per second per thread.
    pub rows_per_second_per_thread: f64,
}

/// The report of one `ember-bench score` run.
#[derive(Debug, Serialize)]
pub struct ScoreReport {
    /// Model file.
    pub model: String,
    /// Model description.
    pub description: String,
    /// Rows scored per run.
    pub rows: usize,
    /// Timings per thread count.
    pub timings: Vec<ThreadTiming>,
}

fn read_columns(input: &PathBuf, model: &Model) -> Result<Vec<Float64Array>, String> {
    let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(1 << 16).build())
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or("the input has no rows")?;
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    let names: Vec<String> = match &model.feature_names {
        Some(names) => names.clone(),
        None => schema
            .fields()
            .iter()
            .take(model.num_features)
            .map(|f| f.name().clone())
            .collect(),
    };
    names
        .iter()
        .map(|name| {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("{}: no column '{name}'", input.display()))?;
            let column =
                arrow::compute::cast(column, &DataType::Float64).map_err(|e| e.to_string())?;
            Ok(column.as_primitive::<Float64Type>().clone())
        })
        .collect()
}

fn write_predictions(
    path: &PathBuf,
    model: &Model,
    columns: &[&Float64Array],
) -> Result<(), String> {
    let mut scores = model.raw_scores(columns).map_err(|e| e.to_string())?;
    model.transform(&mut scores);
    let k = scores.num_outputs;
    let rows = scores.values.len() / k;
    let fields: Vec<Field> = (0..k)
        .map(|i| {
            Field::new(
                if k == 1 {
                    "prediction".to_string()
                } else {
                    format!("prediction_{i}")
                },
                DataType::Float64,
                true,
            )
        })
        .collect();
    let arrays = (0..k)
        .map(|i| {
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|r| scores.values[r * k + i]),
            )) as _
        })
        .collect();
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs `ember-bench score`.
pub fn run(args: ScoreArgs) -> Result<(), String> {
    let bytes = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let model =
        Model::from_bytes(&args.model.display().to_string(), &bytes).map_err(|e| e.to_string())?;
    let data = read_columns(&args.input, &model)?;
    let columns: Vec<&Float64Array> = data.iter().collect();
    let rows = columns.first().map_or(0, |c| c.len());
    let mut timings = Vec::new();
    for &threads in &args.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| e.to_string())?;
        let mut best = f64::INFINITY;
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let checksum = pool.install(|| -> Result<f64, String> {
                let mut scores = model.raw_scores(&columns).map_err(|e| e.to_string())?;
                model.transform(&mut scores);
                Ok(scores.values.iter().sum::<f64>())
            })?;
            best = best.min(started.elapsed().as_secs_f64());
            std::hint::black_box(checksum);
        }
        timings.push(ThreadTiming {
            threads,
            best_seconds: best,
            rows_per_second: rows as f64 / best,
            rows_per_second_per_thread: rows as f64 / best / threads as f64,
        });
    }
    if let Some(path) = &args.predictions {
        write_predictions(path, &model, &columns)?;
    }
    let report = ScoreReport {
        model: args.model.display().to_string(),
        description: model.describe(),
        rows,
        timings,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{} — {rows} rows", report.description);
        for t in &report.timings {
            println!(
                "  {} thread(s): {:.3} s, {:.0} rows/s, {:.0} rows/s/thread",
                t.threads, t.best_seconds, t.rows_per_second, t.rows_per_second_per_thread
            );
        }
    }
    Ok(())
}
