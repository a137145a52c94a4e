//! Distributed logistic regression: one Newton-sums query per iteration.

use datafusion::common::ScalarValue;
use ember_udfs::scoring::model::ember_linear::{FORMAT, LinearModelFile, VERSION};
use ember_udfs::training::exact_float::f64s_to_json;
use ember_udfs::training::logistic::{NewtonSums, newton_step, not_converged};
use ember_udfs::training::params::LogisticParams;

use crate::error::{JobsError, Result};
use crate::train::{TrainEngine, TrainProgress, quote_ident, quote_literal};

const FUNCTION: &str = "train_logistic";

/// Trains logistic regression over `table`; the model as Ember linear JSON.
pub async fn train_logistic(
    engine: &TrainEngine,
    table: &str,
    label: &str,
    features: &[String],
    params: &LogisticParams,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<LinearModelFile> {
    let columns = std::iter::once(label)
        .chain(features.iter().map(String::as_str))
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ");
    // The rows are read once into the engine's working set (memory embedded,
    // Parquet on a cluster) so iterations do not re-read the input's columns.
    let working = "__ember_train_logistic";
    let select = format!(
        "SELECT {columns} FROM {} WHERE {} IS NOT NULL",
        quote_ident(table),
        quote_ident(label)
    );
    engine.materialize(working, &select).await?;
    let mut beta = vec![0.0; features.len() + 1];
    let mut result = None;
    for iteration in 1..=params.max_iter {
        let beta_json = f64s_to_json(&beta);
        let sql = format!(
            "SELECT __ember_logistic_newton({}, {columns}) FROM {working}",
            quote_literal(&beta_json)
        );
        let sums: NewtonSums = match engine.single_value(&sql).await? {
            ScalarValue::Utf8(Some(text)) => serde_json::from_str(&text)
                .map_err(|e| JobsError::Usage(format!("internal: {e}")))?,
            other => {
                return Err(JobsError::Usage(format!(
                    "internal: Newton sums returned {other:?}"
                )));
            }
        };
        let (next, step) = newton_step(FUNCTION, &beta, &sums, params.l2, features)?;
        beta = next;
        progress(TrainProgress::Step {
            done: iteration,
            total: params.max_iter,
        });
        if step <= params.tol {
            result = Some((iteration, sums.count));
            break;
        }
    }
    engine.drop_table(working).await?;
    let Some((iterations, rows)) = result else {
        return Err(not_converged(FUNCTION, params.max_iter).into());
    };
    let mut record = serde_json::Map::new();
    record.insert("l2".into(), params.l2.into());
    record.insert("tol".into(), params.tol.into());
    record.insert("max_iter".into(), params.max_iter.into());
    record.insert("iterations".into(), iterations.into());
    record.insert("rows".into(), rows.into());
    record.insert("label".into(), label.into());
    Ok(LinearModelFile {
        format: FORMAT.into(),
        version: VERSION,
        objective: "binary:logistic".into(),
        feature_names: features.to_vec(),
        coefficients: beta[1..].to_vec(),
        intercept: beta[0],
        params: record,
    })
}
