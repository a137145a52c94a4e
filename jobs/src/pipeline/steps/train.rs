//! `[step.train]`: one model over a table, with the distributed trainer.
//!
//! The step runs exactly what `ember train` runs (same defaults, same model
//! formats), on the run's cluster or embedded. The model is written to
//! `<output_dir>/models/<step>/ds=<date>/model.json`, a path that depends
//! only on the step and the date, so a score step (or a resumed run) finds it.

use std::path::PathBuf;

use super::{StepContext, StepOutcome};
use crate::cli::{ModelKind, TrainArgs, train_to_file};
use crate::history::ArtifactKind;
use crate::pipeline::error::{PipelineError, Result};
use crate::pipeline::spec::TrainStepSpec;
use crate::pipeline::tables::Format;

/// Where train step `step` writes its model for date `ds`.
pub fn model_path(output_dir: &std::path::Path, step: &str, ds: &str) -> PathBuf {
    output_dir
        .join("models")
        .join(step)
        .join(format!("ds={ds}"))
        .join("model.json")
}

fn param_text(ctx: &StepContext, value: &toml::Value) -> Result<String> {
    match value {
        toml::Value::String(s) => ctx.render(s),
        other => Ok(other.to_string()),
    }
}

/// Trains the model and writes it.
pub async fn run(
    ctx: &StepContext,
    spec: &TrainStepSpec,
    input: Option<(String, Format)>,
) -> Result<StepOutcome> {
    let Some((location, format)) = input else {
        return Err(PipelineError::Contract(format!(
            "step '{}': table '{}' is not registered",
            ctx.name(),
            spec.input
        )));
    };
    if format != Format::Parquet {
        return Err(PipelineError::Contract(format!(
            "step '{}': train.input '{}' must be Parquet (write it with a sql step first)",
            ctx.name(),
            spec.input
        )));
    }
    let model = match spec.model.as_deref() {
        Some("linear") => ModelKind::Linear,
        Some("logistic") => ModelKind::Logistic,
        _ => ModelKind::Gbdt,
    };
    let features = if spec.features.is_empty() && !spec.exclude.is_empty() {
        let schema = ctx
            .ember
            .session()
            .table(&spec.input)
            .await?
            .schema()
            .inner()
            .clone();
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != &spec.label && !spec.exclude.contains(f.name()))
            .filter(|f| {
                f.data_type().is_numeric() || f.data_type() == &arrow::datatypes::DataType::Boolean
            })
            .map(|f| f.name().clone())
            .collect()
    } else {
        spec.features.clone()
    };
    let model_out = model_path(&ctx.output_dir, ctx.name(), &ctx.ds);
    let cluster = match ctx.ember.target() {
        ember_core::ClusterTarget::Embedded => None,
        remote => Some(remote.describe()),
    };
    let args = TrainArgs {
        input: location,
        label: spec.label.clone(),
        features,
        model_out: model_out.clone(),
        model,
        params: spec
            .params
            .iter()
            .map(|(k, v)| param_text(ctx, v).map(|t| format!("{k}={t}")))
            .collect::<Result<_>>()?,
        cluster,
        work_dir: Some(ctx.output_dir.join(".work")),
        no_progress: true,
    };
    let report = train_to_file(&args).await?;
    let path = model_out.to_string_lossy().to_string();
    Ok(StepOutcome {
        rows_written: None,
        outputs: vec![],
        artifacts: vec![
            (ArtifactKind::Model, ctx.name().to_string(), path),
            (
                ArtifactKind::Metrics,
                "training".to_string(),
                serde_json::json!({"summary": report.summary, "engine": report.engine, "features": report.features}).to_string(),
            ),
        ],
        warnings: vec![],
    })
}
