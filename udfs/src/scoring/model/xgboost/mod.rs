//! XGBoost models saved by `Booster.save_model` as JSON (`*.json`) or UBJSON
//! (`*.ubj`).
//!
//! Supported: boosters `gbtree`, `dart` (tree weights) and `gblinear`; the
//! regression, logistic, count and multiclass objectives listed in
//! [`objective_link`]; `base_score` as a scalar string (XGBoost ≤ 3.0) or a
//! vector string (≥ 3.1); missing values by `default_left`; categorical splits;
//! `num_parallel_tree > 1`; and early stopping's `best_iteration`, which limits
//! scoring to the trees up to the best iteration (as XGBoost's scikit-learn
//! interface does). Multi-target trees and survival/ranking-only objectives are
//! refused with an error naming them.

pub(crate) mod fields;
pub mod linear;
mod simd;
mod simd_levels;
pub mod trees;
pub mod ubjson;

use serde_json::Value;

pub use linear::LinearBooster;
pub use trees::TreeEnsemble;

use self::fields::{Doc, parse_base_score};
use crate::scoring::model::{Link, Model, ModelFormat, ModelResult, Precision, Predictor};

/// The output transform of an XGBoost objective, or `None` if Ember does not
/// score it.
pub fn objective_link(objective: &str) -> Option<Link> {
    Some(match objective {
        "reg:squarederror"
        | "reg:linear"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror"
        | "reg:quantileerror"
        | "binary:logitraw"
        | "rank:pairwise"
        | "rank:ndcg"
        | "rank:map" => Link::Identity,
        "reg:logistic" | "binary:logistic" => Link::Sigmoid { scale: 1.0 },
        "count:poisson" | "reg:gamma" | "reg:tweedie" => Link::Exp,
        "multi:softprob" | "multi:softmax" => Link::Softmax,
        _ => return None,
    })
}

/// Converts `base_score` (stored in prediction space) to a margin, the way each
/// objective's `ProbToMargin` does, in `f32`. `binary:logitraw` and the
/// multiclass objectives use it as a margin unchanged.
fn base_score_to_margin(objective: &str, base_score: f32) -> f32 {
    match objective {
        "reg:logistic" | "binary:logistic" => -(1.0f32 / base_score - 1.0f32).ln(),
        "count:poisson" | "reg:gamma" | "reg:tweedie" => base_score.ln(),
        _ => base_score,
    }
}

/// Builds a [`Model`] from a decoded XGBoost document.
pub fn from_json_value(source: &str, format: ModelFormat, root: &Value) -> ModelResult<Model> {
    let doc = Doc {
        file: source,
        format: match format {
            ModelFormat::XgboostUbjson => "XGBoost UBJSON",
            _ => "XGBoost JSON",
        },
    };
    let learner = doc.get(root, "", "learner")?;
    let params = doc.get(learner, "learner", "learner_model_param")?;
    let params_path = "learner.learner_model_param";
    let num_features = doc.usize_param(params, params_path, "num_feature")?;
    let num_class = doc.usize_param(params, params_path, "num_class")?;
    let num_target = match params.get("num_target") {
        Some(_) => doc.usize_param(params, params_path, "num_target")?,
        None => 1,
    };
    if num_target > 1 {
        return Err(doc.unsupported(format!("multi-target output (num_target = {num_target})")));
    }
    let objective = doc.string(
        doc.get(learner, "learner", "objective")?,
        "learner.objective",
        "name",
    )?;
    let link = objective_link(objective)
        .ok_or_else(|| doc.unsupported(format!("objective '{objective}'")))?;
    let groups = num_class.max(1);
    crate::scoring::model::check_shape(source, doc.format, num_features, groups)?;
    if link.is_multiclass() != (num_class > 1) {
        return Err(doc.malformed(format!(
            "objective '{objective}' with num_class = {num_class}"
        )));
    }
    let base_score = parse_base_score(&doc, doc.get(params, params_path, "base_score")?)?;
    let base_margin: Vec<f32> = match base_score.len() {
        1 => vec![base_score_to_margin(objective, base_score[0]); groups],
        n if n == groups => base_score
            .iter()
            .map(|b| base_score_to_margin(objective, *b))
            .collect(),
        n => {
            return Err(doc.malformed(format!(
                "base_score has {n} values for {groups} output groups"
            )));
        }
    };
    let feature_names = read_feature_names(&doc, learner, num_features)?;

    let booster = doc.get(learner, "learner", "gradient_booster")?;
    let booster_name = doc.string(booster, "learner.gradient_booster", "name")?;
    let predictor = match booster_name {
        "gbtree" => {
            let model = doc.get(booster, "learner.gradient_booster", "model")?;
            Predictor::XgboostTrees(Box::new(read_trees(
                &doc,
                learner,
                model,
                None,
                base_margin,
                num_features,
                groups,
            )?))
        }
        "dart" => {
            let gbtree = doc.get(booster, "learner.gradient_booster", "gbtree")?;
            let model = doc.get(gbtree, "learner.gradient_booster.gbtree", "model")?;
            let weights = doc.f32_array(booster, "learner.gradient_booster", "weight_drop")?;
            Predictor::XgboostTrees(Box::new(read_trees(
                &doc,
                learner,
                model,
                Some(weights),
                base_margin,
                num_features,
                groups,
            )?))
        }
        "gblinear" => {
            let model = doc.get(booster, "learner.gradient_booster", "model")?;
            let weights = doc.f32_array(model, "learner.gradient_booster.model", "weights")?;
            Predictor::XgboostLinear(LinearBooster::new(
                &doc,
                weights,
                base_margin,
                num_features,
            )?)
        }
        other => return Err(doc.unsupported(format!("booster '{other}'"))),
    };
    Ok(Model {
        source: source.to_string(),
        format,
        objective: objective.to_string(),
        feature_names,
        num_features,
        num_outputs: groups,
        link,
        precision: Precision::F32,
        average_over: None,
        predictor,
    })
}

fn read_feature_names(
    doc: &Doc<'_>,
    learner: &Value,
    num_features: usize,
) -> ModelResult<Option<Vec<String>>> {
    let Some(names) = learner.get("feature_names") else {
        return Ok(None);
    };
    let names = names
        .as_array()
        .ok_or_else(|| doc.malformed("'learner.feature_names' is not an array"))?;
    if names.is_empty() {
        return Ok(None);
    }
    let names = names
        .iter()
        .map(|n| n.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| doc.malformed("'learner.feature_names' holds a non-string"))?;
    if names.len() != num_features {
        return Err(doc.malformed(format!(
            "{} feature names for {num_features} features",
            names.len()
        )));
    }
    Ok(Some(names))
}

/// Reads the trees to score: all of them, or those up to `best_iteration`.
fn read_trees(
    doc: &Doc<'_>,
    learner: &Value,
    model: &Value,
    weights: Option<Vec<f32>>,
    base_margin: Vec<f32>,
    num_features: usize,
    groups: usize,
) -> ModelResult<TreeEnsemble> {
    let path = "learner.gradient_booster.model";
    let trees = doc.array(model, path, "trees")?;
    let tree_info = doc.i64_array(model, path, "tree_info")?;
    if tree_info.len() != trees.len() {
        return Err(doc.malformed(format!(
            "{} trees but {} tree_info entries",
            trees.len(),
            tree_info.len()
        )));
    }
    if let Some(w) = &weights
        && w.len() != trees.len()
    {
        return Err(doc.malformed(format!(
            "{} trees but {} DART weights",
            trees.len(),
            w.len()
        )));
    }
    let end = match best_iteration(doc, learner)? {
        None => trees.len(),
        Some(best) => {
            let per_iteration = match model.get("iteration_indptr") {
                Some(_) => {
                    let indptr = doc.i64_array(model, path, "iteration_indptr")?;
                    best.checked_add(1)
                        .and_then(|i| indptr.get(i))
                        .and_then(|e| usize::try_from(*e).ok())
                }
                None => {
                    let params = doc.get(model, path, "gbtree_model_param")?;
                    let parallel =
                        doc.usize_param(params, "gbtree_model_param", "num_parallel_tree")?;
                    best.checked_add(1)
                        .and_then(|i| i.checked_mul(parallel.max(1)))
                        .and_then(|i| i.checked_mul(groups))
                }
            };
            per_iteration.filter(|e| *e <= trees.len()).ok_or_else(|| {
                doc.malformed(format!(
                    "best_iteration {best} is beyond the model's {} trees",
                    trees.len()
                ))
            })?
        }
    };
    let mut tree_groups = Vec::with_capacity(end);
    for (i, g) in tree_info[..end].iter().enumerate() {
        let g = usize::try_from(*g)
            .ok()
            .filter(|g| *g < groups)
            .ok_or_else(|| {
                doc.malformed(format!(
                    "tree {i} belongs to output group {g}, not in 0..{groups}"
                ))
            })?;
        tree_groups.push(g as u32);
    }
    let selected: Vec<&Value> = trees[..end].iter().collect();
    let weights = weights.map(|mut w| {
        w.truncate(end);
        w
    });
    TreeEnsemble::from_json(
        doc,
        &selected,
        tree_groups,
        weights,
        base_margin,
        num_features,
    )
}

/// `learner.attributes.best_iteration`, set by early stopping.
fn best_iteration(doc: &Doc<'_>, learner: &Value) -> ModelResult<Option<usize>> {
    let Some(value) = learner
        .get("attributes")
        .and_then(|a| a.get("best_iteration"))
    else {
        return Ok(None);
    };
    let parsed = match value {
        Value::String(s) => s.trim().parse::<usize>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        doc.malformed(format!(
            "'learner.attributes.best_iteration' is not an iteration number: {value}"
        ))
    })
}
