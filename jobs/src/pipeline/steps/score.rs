//! `[step.score]`: a table scored with a model, as `ember score` does, plus
//! an optional drift check against the training rows, done before anything
//! is written.
//!
//! The model is a train step of the same pipeline (its model of this run's
//! date) or a path. Features are passed by the names the model was trained
//! with, so the input only needs those columns, in any order.

use ember_udfs::config::EmberConfig;
use ember_udfs::scoring::{model_cache, model_ref};

use super::{StepContext, StepOutcome};
use crate::history::ArtifactKind;
use crate::pipeline::drift;
use crate::pipeline::error::{PipelineError, Result};
use crate::pipeline::spec::ScoreStepSpec;
use crate::pipeline::tables;
use crate::train::{quote_ident, quote_literal};

/// Scores the input and writes the output; checks drift when asked.
pub async fn run(ctx: &StepContext, spec: &ScoreStepSpec) -> Result<StepOutcome> {
    let step = ctx.name().to_string();
    let model_ref_text = if ctx.pipeline.step(&spec.model).is_some() {
        super::train::model_path(&ctx.output_dir, &spec.model, &ctx.ds)
            .to_string_lossy()
            .to_string()
    } else {
        tables::resolve(&ctx.pipeline.dir, &ctx.render(&spec.model)?)
    };
    let fail = |message: String| PipelineError::Contract(format!("step '{step}': {message}"));
    let location = model_ref::resolve("score step", &model_ref_text, &EmberConfig::default())
        .map_err(|e| fail(e.to_string()))?;
    let (model, _) = model_cache::load_current(&location).map_err(|e| fail(e.to_string()))?;
    let features = model.feature_names.clone().ok_or_else(|| {
        fail(format!(
            "model '{model_ref_text}' was saved without feature names; train it with named columns"
        ))
    })?;
    let schema = ctx
        .ember
        .session()
        .table(&spec.input)
        .await?
        .schema()
        .inner()
        .clone();
    let missing: Vec<&str> = features
        .iter()
        .filter(|f| schema.field_with_name(f).is_err())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "table '{}' lacks feature column(s) {} of model '{model_ref_text}'",
            spec.input,
            missing.join(", ")
        )));
    }
    let column = spec
        .column
        .clone()
        .unwrap_or_else(|| "prediction".to_string());
    let kept = if spec.keep.is_empty() {
        "*".to_string()
    } else {
        for k in &spec.keep {
            if schema.field_with_name(k).is_err() {
                return Err(fail(format!(
                    "score.keep names column '{k}', which table '{}' does not have",
                    spec.input
                )));
            }
        }
        spec.keep
            .iter()
            .map(|k| quote_ident(k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let feature_list = features
        .iter()
        .map(|f| quote_ident(f))
        .collect::<Vec<_>>()
        .join(", ");
    let model_literal = quote_literal(&location.0);
    let outputs: Vec<String> = if model.num_outputs == 1 {
        vec![column.clone()]
    } else {
        (0..model.num_outputs)
            .map(|i| format!("{column}_{i}"))
            .collect()
    };
    let query = crate::cli::score_cmd::prediction_query(
        &model_literal,
        &feature_list,
        model.num_outputs,
        &outputs,
        &kept,
        &quote_ident(&spec.input),
    );
    let mut outcome = StepOutcome::default();

    if let Some(d) = &spec.drift {
        let columns = if d.columns.is_empty() {
            features.clone()
        } else {
            d.columns.clone()
        };
        let report = drift::population_stability(
            &ctx.runner(),
            &d.baseline,
            &spec.input,
            &columns,
            d.bins.unwrap_or(drift::DEFAULT_BINS),
        )
        .await?;
        let warn = d.warn.unwrap_or(drift::DEFAULT_WARN);
        let fail_at = d.fail.unwrap_or(drift::DEFAULT_FAIL);
        outcome.artifacts.push((
            ArtifactKind::Metrics,
            "drift_psi".to_string(),
            serde_json::to_string(&report).unwrap_or_default(),
        ));
        let over_fail: Vec<String> = report
            .iter()
            .filter(|c| c.psi > fail_at)
            .map(|c| format!("{} {:.3}", c.column, c.psi))
            .collect();
        if !over_fail.is_empty() {
            return Err(fail(format!(
                "drift between '{}' and '{}' above {fail_at}: PSI {}",
                d.baseline,
                spec.input,
                over_fail.join(", ")
            )));
        }
        for c in report.iter().filter(|c| c.psi > warn) {
            outcome.warnings.push(format!(
                "drift: column '{}' PSI {:.3} between '{}' and '{}' (warning above {warn})",
                c.column, c.psi, d.baseline, spec.input
            ));
        }
    }
    // Written only once the drift check has passed: a step that fails
    // leaves the previous output in place.
    ctx.write_output(&spec.output, &query, spec.partition_by_date, &mut outcome)
        .await?;
    Ok(outcome)
}
