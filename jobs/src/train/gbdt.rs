//! Distributed gradient boosting: sketch, bin, then one histogram query per
//! level and one margin-and-gradient update per round.

use datafusion::common::ScalarValue;
use ember_udfs::training::exact_float::f32s_to_json;
use ember_udfs::training::gbdt::cuts::cuts_from_sketch;
use ember_udfs::training::gbdt::grad::{Quantiser, base_margin, base_score, gradient_bound};
use ember_udfs::training::gbdt::hist;
use ember_udfs::training::gbdt::messages::{GradientPlan, LevelPlan, SketchState};
use ember_udfs::training::gbdt::model::GbdtModel;
use ember_udfs::training::gbdt::tree::{Grower, check_histogram_budget};
use ember_udfs::training::params::GbdtParams;

use crate::error::{JobsError, Result};
use crate::train::{TrainEngine, TrainProgress, quote_ident, quote_literal};

const FUNCTION: &str = "train_gbdt";

fn binary(value: ScalarValue, what: &str) -> Result<Vec<u8>> {
    match value {
        ScalarValue::Binary(Some(bytes)) | ScalarValue::LargeBinary(Some(bytes)) => Ok(bytes),
        other => Err(JobsError::Usage(format!(
            "internal: {what} returned {other:?}"
        ))),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| JobsError::Usage(format!("internal: {e}")))
}

/// Trains one GBDT model over `table` (label and feature columns by name).
pub async fn train_gbdt(
    engine: &TrainEngine,
    table: &str,
    label: &str,
    features: &[String],
    params: &GbdtParams,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<GbdtModel> {
    let label_sql = quote_ident(label);
    let feature_sql: Vec<String> = features.iter().map(|f| quote_ident(f)).collect();
    let bins: Vec<String> = (0..features.len()).map(|i| format!("b{i}")).collect();
    let bin_list = bins.join(", ");

    // 1. Label statistics and value sketches, merged over all partitions.
    let sketch_sql = format!(
        "SELECT __ember_gbdt_sketch({label_sql}, {}) FROM {}",
        feature_sql.join(", "),
        quote_ident(table)
    );
    let state = SketchState::from_bytes(
        FUNCTION,
        &binary(engine.single_value(&sketch_sql).await?, "the sketch")?,
    )?;
    let objective = state.labels.objective(FUNCTION, label, params.objective)?;
    let cuts: Vec<Vec<f32>> = state
        .features
        .iter()
        .map(|s| cuts_from_sketch(s, params.max_bins))
        .collect();
    check_histogram_budget(FUNCTION, params, &cuts)?;
    let base = base_score(objective, state.labels.mean());
    progress(TrainProgress::Pass("sketch"));

    // 2. The binned table: label, margin, the round's gradient pairs, one
    //    bin per feature.
    let start = base_margin(objective, base);
    let labels = &state.labels;
    let quantiser_after = |drift: f64| {
        let bound = gradient_bound(objective, labels.min, labels.max, start, drift);
        Quantiser::for_rows(FUNCTION, labels.count, bound)
    };
    let gradient = |quantiser: Quantiser| -> Result<String> {
        let plan = GradientPlan {
            objective: objective.name().to_string(),
            quantiser,
        };
        Ok(format!(
            "__ember_gbdt_gradient({}, __label, __margin) AS __gradient",
            quote_literal(&json(&plan)?)
        ))
    };
    let mut columns = vec![
        format!("CAST({label_sql} AS DOUBLE) AS __label"),
        format!("CAST({start:?} AS DOUBLE) AS __margin"),
    ];
    for ((feature, cut), bin) in feature_sql.iter().zip(&cuts).zip(&bins) {
        columns.push(format!(
            "__ember_gbdt_bin({}, {feature}) AS {bin}",
            quote_literal(&f32s_to_json(cut))
        ));
    }
    let mut quantiser = quantiser_after(0.0)?;
    let mut current = "__ember_train_round_0".to_string();
    let select = format!(
        "SELECT __label, __margin, {}, {bin_list} FROM (SELECT {} FROM {} WHERE {label_sql} IS NOT NULL)",
        gradient(quantiser)?,
        columns.join(", "),
        quote_ident(table)
    );
    engine.materialize(&current, &select).await?;
    progress(TrainProgress::Pass("bin"));

    // 3. Boosting: one histogram query per level; per round, one query adds
    //    the tree to the margins and stores the next round's gradients.
    let mut trees = Vec::with_capacity(params.rounds);
    let mut drift = 0.0;
    for round in 0..params.rounds {
        let mut grower = Grower::new(params, &cuts, quantiser);
        while let Some(build) = grower.pending() {
            let plan = LevelPlan {
                features: features.len(),
                stride: grower.stride(),
                build: build.to_vec(),
                tree: grower.tree().clone(),
            };
            let len = plan.build.len() * features.len() * plan.stride;
            let sql = format!(
                "SELECT __ember_gbdt_histogram({}, __gradient, {bin_list}) FROM {current}",
                quote_literal(&json(&plan)?)
            );
            let bytes = binary(engine.single_value(&sql).await?, "a histogram")?;
            grower.apply(&hist::from_bytes(FUNCTION, &bytes, len)?)?;
        }
        let tree = grower.finish();
        drift += tree.max_abs_leaf();
        if round + 1 < params.rounds {
            quantiser = quantiser_after(drift)?;
            let next = format!("__ember_train_round_{}", round + 1);
            let update = format!(
                "SELECT __label, __margin, {}, {bin_list} FROM \
                 (SELECT __label, __margin + __ember_gbdt_leaf({}, {bin_list}) AS __margin, {bin_list} FROM {current})",
                gradient(quantiser)?,
                quote_literal(&json(&tree)?)
            );
            engine.materialize(&next, &update).await?;
            engine.drop_table(&current).await?;
            current = next;
        }
        trees.push(tree);
        progress(TrainProgress::Step {
            done: round + 1,
            total: params.rounds,
        });
    }
    engine.drop_table(&current).await?;
    Ok(GbdtModel {
        objective,
        base_score: base,
        feature_names: features.to_vec(),
        cuts,
        trees,
        params: params.clone(),
        rows: state.labels.count,
    })
}
