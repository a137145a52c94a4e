//! A trained tree ensemble, written as an XGBoost JSON model.
//!
//! The file is what `Booster.save_model("m.json")` writes in XGBoost 3.1
//! (`gbtree`, one tree per round, vector `base_score`), so
//! `xgboost.Booster(model_file=...)` loads it and predicts the same numbers
//! Ember's `predict` does. Training parameters and Ember's version go in the
//! learner's `attributes` (string → string, which XGBoost keeps).

use serde_json::{Map, Value, json};

use crate::training::gbdt::tree::{NONE, Tree};
use crate::training::params::{GbdtParams, Objective};

/// XGBoost's "no parent" marker in `parents`.
const XGB_ROOT_PARENT: i64 = 2_147_483_647;

/// A trained gradient-boosted tree model.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtModel {
    /// The loss it was trained for.
    pub objective: Objective,
    /// The initial prediction, in output space (probability for logistic).
    pub base_score: f32,
    /// Feature names, in model order.
    pub feature_names: Vec<String>,
    /// Cut points per feature (kept for reporting; not part of the file).
    pub cuts: Vec<Vec<f32>>,
    /// One tree per round.
    pub trees: Vec<Tree>,
    /// The parameters used.
    pub params: GbdtParams,
    /// Rows trained on.
    pub rows: u64,
}

fn tree_json(tree: &Tree, id: usize, num_feature: usize) -> Value {
    let n = tree.nodes.len();
    let child = |c: u32| if c == NONE { -1_i64 } else { i64::from(c) };
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    let mut parents = Vec::with_capacity(n);
    let mut indices = Vec::with_capacity(n);
    let mut conditions = Vec::with_capacity(n);
    let mut default_left = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    let mut gains = Vec::with_capacity(n);
    let mut hessians = Vec::with_capacity(n);
    for node in &tree.nodes {
        left.push(child(node.left));
        right.push(child(node.right));
        parents.push(if node.parent == NONE {
            XGB_ROOT_PARENT
        } else {
            i64::from(node.parent)
        });
        let leaf = node.is_leaf();
        indices.push(if leaf { 0 } else { node.feature });
        conditions.push(if leaf {
            node.value as f32
        } else {
            node.split_value
        });
        default_left.push(u8::from(!leaf && node.default_left));
        weights.push(node.value as f32);
        // Informational fields: clamped so that a huge value stays a JSON number.
        gains.push((node.gain as f32).clamp(f32::MIN, f32::MAX));
        hessians.push((node.hess as f32).clamp(f32::MIN, f32::MAX));
    }
    json!({
        "base_weights": weights,
        "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
        "default_left": default_left,
        "id": id,
        "left_children": left,
        "loss_changes": gains,
        "parents": parents,
        "right_children": right,
        "split_conditions": conditions,
        "split_indices": indices,
        "split_type": vec![0; n],
        "sum_hessian": hessians,
        "tree_param": {
            "num_deleted": "0",
            "num_feature": num_feature.to_string(),
            "num_nodes": n.to_string(),
            "size_leaf_vector": "1"
        }
    })
}

impl GbdtModel {
    /// The model as an XGBoost JSON document.
    pub fn to_xgboost_json(&self) -> Value {
        let num_feature = self.feature_names.len();
        let trees: Vec<Value> = self
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| tree_json(t, i, num_feature))
            .collect();
        let count = self.trees.len();
        let mut attributes = Map::new();
        attributes.insert(
            "ember_params".into(),
            Value::String(Value::Object(self.params.to_record(self.objective)).to_string()),
        );
        attributes.insert("ember_rows".into(), Value::String(self.rows.to_string()));
        attributes.insert(
            "ember_version".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
        json!({
            "learner": {
                "attributes": attributes,
                "feature_names": self.feature_names,
                "feature_types": [],
                "gradient_booster": {
                    "model": {
                        "cats": {"enc": [], "feature_segments": [], "sorted_idx": []},
                        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": count.to_string()},
                        "iteration_indptr": (0..=count).collect::<Vec<usize>>(),
                        "tree_info": vec![0; count],
                        "trees": trees
                    },
                    "name": "gbtree"
                },
                "learner_model_param": {
                    "base_score": format!("[{:E}]", self.base_score),
                    "boost_from_average": "1",
                    "num_class": "0",
                    "num_feature": num_feature.to_string(),
                    "num_target": "1"
                },
                "objective": {
                    "name": self.objective.name(),
                    "reg_loss_param": {"scale_pos_weight": "1"}
                }
            },
            "version": [3, 1, 1]
        })
    }
}
