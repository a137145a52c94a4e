//! A trained tree ensemble, written as an XGBoost JSON model.
//!
//! The file is what `Booster.save_model("m.json")` writes in XGBoost 3.1
//! (`gbtree`, one tree per round, vector `base_score`), so
//! `xgboost.Booster(model_file=...)` loads it and predicts the same numbers
//! Ember's `predict` does. Training parameters and Ember's version go in the
//! learner's `attributes` (string → string, which XGBoost keeps).
//!
//! The document is serialized straight from typed structs rather than built
//! as a `serde_json::Value`: a `Value` holds numbers as `f64`, so every `f32`
//! weight and threshold came out with 17 digits (`0.16690413653850555`).
//! Written as `f32`, each number is the shortest decimal that parses back to
//! the same `f32` (`0.16690414`), as XGBoost writes its own models. A
//! per-group training job writes one model per group, so this halves what it
//! formats, compresses and writes.
//!
//! Readers differ: XGBoost parses an `f32`; Ember's `predict` (serde_json) and
//! Python's `json` parse an `f64` and round it to `f32`. Rounding twice can
//! land on a neighbour, and checking all 2³² bit patterns found exactly one
//! magnitude where it does (see [`Float`]), which is written with `f64`
//! digits. `shortest_f32_text_reads_back_exactly` checks all three readers.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::tree::{NONE, Tree};
use crate::training::params::{GbdtParams, Objective};

/// XGBoost's "no parent" marker in `parents`.
const XGB_ROOT_PARENT: i64 = 2_147_483_647;

/// An empty JSON array.
const EMPTY: [u32; 0] = [];

/// The bits of the one positive `f32`, 7.038531e-26, whose shortest decimal
/// read as the nearest `f64` and then rounded to `f32` gives its neighbour:
/// `7.038531e-26` lies just off the midpoint between two `f32`s, and the
/// nearest `f64` is that midpoint, which ties to the even neighbour. Found
/// by reading back every `f32` (`EMBER_F32_STRIDE` in the tests).
const DOUBLE_ROUNDING_TRAP: u32 = 0x15ae_43fd;

/// An `f32` in a model document: the shortest decimal that reads back as
/// itself, by every reader.
#[derive(Debug, Clone, Copy)]
struct Float(f32);

impl Serialize for Float {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.abs().to_bits() == DOUBLE_ROUNDING_TRAP {
            // The exact value in `f64` digits: nearest to it in both parsers.
            serializer.serialize_f64(f64::from(self.0))
        } else {
            serializer.serialize_f32(self.0)
        }
    }
}

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

/// One tree in XGBoost's layout; fields in the order XGBoost writes them.
#[derive(Serialize)]
struct TreeDoc {
    base_weights: Vec<Float>,
    categories: [u32; 0],
    categories_nodes: [u32; 0],
    categories_segments: [u32; 0],
    categories_sizes: [u32; 0],
    default_left: Vec<u8>,
    id: usize,
    left_children: Vec<i64>,
    loss_changes: Vec<Float>,
    parents: Vec<i64>,
    right_children: Vec<i64>,
    split_conditions: Vec<Float>,
    split_indices: Vec<u32>,
    split_type: Vec<u8>,
    sum_hessian: Vec<Float>,
    tree_param: TreeParam,
}

#[derive(Serialize)]
struct TreeParam {
    num_deleted: &'static str,
    num_feature: String,
    num_nodes: String,
    size_leaf_vector: &'static str,
}

#[derive(Serialize)]
struct ModelDoc {
    learner: LearnerDoc,
    version: [u32; 3],
}

#[derive(Serialize)]
struct LearnerDoc {
    attributes: Map<String, Value>,
    feature_names: Vec<String>,
    feature_types: [u32; 0],
    gradient_booster: BoosterDoc,
    learner_model_param: LearnerModelParam,
    objective: ObjectiveDoc,
}

#[derive(Serialize)]
struct BoosterDoc {
    model: GbtreeDoc,
    name: &'static str,
}

#[derive(Serialize)]
struct GbtreeDoc {
    cats: CatsDoc,
    gbtree_model_param: GbtreeModelParam,
    iteration_indptr: Vec<usize>,
    tree_info: Vec<u8>,
    trees: Vec<TreeDoc>,
}

#[derive(Serialize)]
struct CatsDoc {
    enc: [u32; 0],
    feature_segments: [u32; 0],
    sorted_idx: [u32; 0],
}

#[derive(Serialize)]
struct GbtreeModelParam {
    num_parallel_tree: &'static str,
    num_trees: String,
}

#[derive(Serialize)]
struct LearnerModelParam {
    base_score: String,
    boost_from_average: &'static str,
    num_class: &'static str,
    num_feature: String,
    num_target: &'static str,
}

#[derive(Serialize)]
struct ObjectiveDoc {
    name: &'static str,
    reg_loss_param: RegLossParam,
}

#[derive(Serialize)]
struct RegLossParam {
    scale_pos_weight: &'static str,
}

fn tree_doc(tree: &Tree, id: usize, num_feature: usize) -> TreeDoc {
    let n = tree.nodes.len();
    let child = |c: u32| if c == NONE { -1_i64 } else { i64::from(c) };
    let mut doc = TreeDoc {
        base_weights: Vec::with_capacity(n),
        categories: EMPTY,
        categories_nodes: EMPTY,
        categories_segments: EMPTY,
        categories_sizes: EMPTY,
        default_left: Vec::with_capacity(n),
        id,
        left_children: Vec::with_capacity(n),
        loss_changes: Vec::with_capacity(n),
        parents: Vec::with_capacity(n),
        right_children: Vec::with_capacity(n),
        split_conditions: Vec::with_capacity(n),
        split_indices: Vec::with_capacity(n),
        split_type: vec![0; n],
        sum_hessian: Vec::with_capacity(n),
        tree_param: TreeParam {
            num_deleted: "0",
            num_feature: num_feature.to_string(),
            num_nodes: n.to_string(),
            size_leaf_vector: "1",
        },
    };
    for node in &tree.nodes {
        doc.left_children.push(child(node.left));
        doc.right_children.push(child(node.right));
        doc.parents.push(if node.parent == NONE {
            XGB_ROOT_PARENT
        } else {
            i64::from(node.parent)
        });
        let leaf = node.is_leaf();
        doc.split_indices.push(if leaf { 0 } else { node.feature });
        doc.split_conditions.push(Float(if leaf {
            node.value as f32
        } else {
            node.split_value
        }));
        doc.default_left.push(u8::from(!leaf && node.default_left));
        doc.base_weights.push(Float(node.value as f32));
        // Informational fields: clamped so that a huge value stays a JSON number.
        doc.loss_changes
            .push(Float((node.gain as f32).clamp(f32::MIN, f32::MAX)));
        doc.sum_hessian
            .push(Float((node.hess as f32).clamp(f32::MIN, f32::MAX)));
    }
    doc
}

impl GbdtModel {
    /// The model as the text of an XGBoost JSON document.
    pub fn to_xgboost_json(&self) -> TrainResult<String> {
        let num_feature = self.feature_names.len();
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
        let doc = ModelDoc {
            learner: LearnerDoc {
                attributes,
                feature_names: self.feature_names.clone(),
                feature_types: EMPTY,
                gradient_booster: BoosterDoc {
                    model: GbtreeDoc {
                        cats: CatsDoc {
                            enc: EMPTY,
                            feature_segments: EMPTY,
                            sorted_idx: EMPTY,
                        },
                        gbtree_model_param: GbtreeModelParam {
                            num_parallel_tree: "1",
                            num_trees: count.to_string(),
                        },
                        iteration_indptr: (0..=count).collect(),
                        tree_info: vec![0; count],
                        trees: self
                            .trees
                            .iter()
                            .enumerate()
                            .map(|(i, t)| tree_doc(t, i, num_feature))
                            .collect(),
                    },
                    name: "gbtree",
                },
                learner_model_param: LearnerModelParam {
                    base_score: format!("[{:E}]", self.base_score),
                    boost_from_average: "1",
                    num_class: "0",
                    num_feature: num_feature.to_string(),
                    num_target: "1",
                },
                objective: ObjectiveDoc {
                    name: self.objective.name(),
                    reg_loss_param: RegLossParam {
                        scale_pos_weight: "1",
                    },
                },
            },
            version: [3, 1, 1],
        };
        serde_json::to_string(&doc).map_err(|error| TrainError::ModelText {
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{DOUBLE_ROUNDING_TRAP, Float};

    /// Every `stride`-th `f32` bit pattern (`EMBER_F32_STRIDE=1` checks all
    /// 2³² of them: minutes in a release build, hours in a debug one).
    fn stride() -> u64 {
        std::env::var("EMBER_F32_STRIDE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4_099)
    }

    /// What the model writer does with an `f32`, read back the three ways a
    /// model is read: XGBoost parses an `f32`; Ember's `predict` and Python's
    /// `json` parse an `f64` (serde_json's parser, the standard library's)
    /// and round it to `f32`.
    fn reads_back(x: f32) -> Result<(), String> {
        let text = serde_json::to_string(&Float(x)).map_err(|e| e.to_string())?;
        let as_f32: f32 = text.parse().map_err(|_| format!("{text} is not a float"))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let via_serde = value.as_f64().ok_or(format!("{text} is not a number"))? as f32;
        let via_f64 = text.parse::<f64>().map_err(|e| e.to_string())? as f32;
        if as_f32.to_bits() == x.to_bits()
            && via_serde.to_bits() == x.to_bits()
            && via_f64.to_bits() == x.to_bits()
        {
            Ok(())
        } else {
            Err(format!(
                "{x:e} (bits {:#x}) written as {text} reads back as {as_f32:e} / {via_serde:e} / {via_f64:e}",
                x.to_bits()
            ))
        }
    }

    #[test]
    fn shortest_f32_text_reads_back_exactly() {
        let edges = [
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            0.1,
            -0.3,
            1.0e-8,
            0.0,
            -0.0,
            f32::from_bits(DOUBLE_ROUNDING_TRAP),
            -f32::from_bits(DOUBLE_ROUNDING_TRAP),
        ];
        let stride = stride().max(1);
        let sampled = (0..=u64::from(u32::MAX))
            .step_by(stride as usize)
            .map(|bits| f32::from_bits(bits as u32))
            .filter(|x| x.is_finite());
        let failures: Vec<String> = edges
            .into_iter()
            .chain(sampled)
            .filter_map(|x| reads_back(x).err())
            .take(5)
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
