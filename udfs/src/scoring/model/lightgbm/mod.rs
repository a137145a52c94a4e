//! LightGBM models saved by `Booster.save_model` (the text format).
//!
//! Supported: `gbdt`, `dart`, `goss` and random forests (`average_output`);
//! objectives binary, multiclass, multiclassova, the regressions (with
//! `reg_sqrt`), Poisson/gamma/Tweedie, cross-entropy and ranking; numeric
//! splits with missing types None/Zero/NaN and default directions; categorical
//! bitset splits; single-leaf trees. Linear trees are refused. LightGBM writes
//! a model trained without names with the names `Column_0, Column_1, ...`;
//! such a model takes its features by position.

pub mod trees;

/// The most nodes (splits and leaves) a model may have, so node indices fit in `u32`.
const MAX_NODES: usize = 1 << 30;

use std::collections::HashMap;

pub use trees::TreeEnsemble;
use trees::{CATEGORICAL_MASK, Node, ParsedTree};

use crate::scoring::model::{
    Link, Model, ModelError, ModelFormat, ModelResult, Precision, Predictor,
};

struct Reader<'a> {
    file: &'a str,
}

impl Reader<'_> {
    fn malformed(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Malformed {
            file: self.file.to_string(),
            format: "LightGBM text",
            reason: reason.into(),
        }
    }

    fn unsupported(&self, what: impl Into<String>) -> ModelError {
        ModelError::Unsupported {
            file: self.file.to_string(),
            what: what.into(),
        }
    }

    fn field<'m>(
        &self,
        map: &HashMap<&str, &'m str>,
        section: &str,
        key: &str,
    ) -> ModelResult<&'m str> {
        map.get(key)
            .copied()
            .ok_or_else(|| self.malformed(format!("{section} has no '{key}' line (truncated?)")))
    }

    fn number<T: std::str::FromStr>(
        &self,
        map: &HashMap<&str, &str>,
        section: &str,
        key: &str,
    ) -> ModelResult<T> {
        let raw = self.field(map, section, key)?;
        raw.trim()
            .parse()
            .map_err(|_| self.malformed(format!("{section}: '{key}={raw}' is not a number")))
    }

    fn list<T: std::str::FromStr>(
        &self,
        map: &HashMap<&str, &str>,
        section: &str,
        key: &str,
        expected: usize,
    ) -> ModelResult<Vec<T>> {
        let raw = if expected == 0 {
            map.get(key).copied().unwrap_or("")
        } else {
            self.field(map, section, key)?
        };
        let values = raw
            .split_whitespace()
            .map(|v| v.parse::<T>())
            .collect::<Result<Vec<T>, _>>()
            .map_err(|_| {
                self.malformed(format!(
                    "{section}: '{key}' holds a value that is not a number"
                ))
            })?;
        if values.len() != expected {
            return Err(self.malformed(format!(
                "{section}: '{key}' has {} values, expected {expected}",
                values.len()
            )));
        }
        Ok(values)
    }
}

/// Splits `key=value` lines into a map; a line without `=` maps to "".
fn key_values<'a>(lines: &[&'a str]) -> HashMap<&'a str, &'a str> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_once('=').unwrap_or((l.trim(), "")))
        .collect()
}

/// The output transform of a LightGBM objective line (`binary sigmoid:1`).
fn objective_link(reader: &Reader<'_>, objective: &str) -> ModelResult<Link> {
    let mut tokens = objective.split_whitespace();
    let name = tokens.next().unwrap_or("");
    let options: HashMap<&str, &str> = tokens.filter_map(|t| t.split_once(':')).collect();
    let sigmoid = || -> ModelResult<f64> {
        options.get("sigmoid").map_or(Ok(1.0), |s| {
            s.parse()
                .map_err(|_| reader.malformed(format!("objective '{objective}' has a bad sigmoid")))
        })
    };
    let sqrt = objective.split_whitespace().any(|t| t == "sqrt");
    Ok(match name {
        "binary" => Link::Sigmoid { scale: sigmoid()? },
        "multiclass" => Link::Softmax,
        "multiclassova" => Link::SigmoidPerClass { scale: sigmoid()? },
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" if sqrt => {
            Link::SignedSquare
        }
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" | "lambdarank"
        | "rank_xendcg" => Link::Identity,
        "poisson" | "gamma" | "tweedie" => Link::Exp,
        "cross_entropy" => Link::Sigmoid { scale: 1.0 },
        "cross_entropy_lambda" => Link::Log1pExp,
        _ => return Err(reader.unsupported(format!("objective '{objective}'"))),
    })
}

/// Parses a LightGBM text model.
pub fn parse_text(source: &str, bytes: &[u8]) -> ModelResult<Model> {
    let reader = Reader { file: source };
    let text =
        std::str::from_utf8(bytes).map_err(|_| reader.malformed("the file is not UTF-8 text"))?;
    let lines: Vec<&str> = text.lines().collect();
    let first_tree = lines
        .iter()
        .position(|l| l.starts_with("Tree="))
        .ok_or_else(|| reader.malformed("no 'Tree=' section (truncated?)"))?;
    let header = key_values(&lines[..first_tree]);
    let num_class: usize = reader.number(&header, "header", "num_class")?;
    let per_iteration: usize = reader.number(&header, "header", "num_tree_per_iteration")?;
    let max_feature: usize = reader.number(&header, "header", "max_feature_idx")?;
    let num_features = max_feature.saturating_add(1);
    crate::scoring::model::check_shape(
        source,
        "LightGBM text",
        num_features,
        per_iteration.max(num_class),
    )?;
    let objective = reader
        .field(&header, "header", "objective")?
        .trim()
        .to_string();
    let link = objective_link(&reader, &objective)?;
    if per_iteration == 0 || (link.is_multiclass() && per_iteration != num_class) {
        return Err(reader.malformed(format!(
            "num_tree_per_iteration={per_iteration} with num_class={num_class}"
        )));
    }
    let average_output = header.contains_key("average_output");
    let names: Vec<String> = reader
        .field(&header, "header", "feature_names")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if names.len() != num_features {
        return Err(reader.malformed(format!(
            "{} feature names for max_feature_idx={max_feature}",
            names.len()
        )));
    }
    let positional = names
        .iter()
        .enumerate()
        .all(|(i, n)| *n == format!("Column_{i}"));

    let end = lines
        .iter()
        .position(|l| l.starts_with("end of trees"))
        .ok_or_else(|| reader.malformed("no 'end of trees' line (truncated?)"))?;
    let mut trees = Vec::new();
    let mut at = first_tree;
    while at < end {
        let next = lines[at + 1..end]
            .iter()
            .position(|l| l.starts_with("Tree="))
            .map_or(end, |p| at + 1 + p);
        let section = lines[at].trim().to_string();
        trees.push(parse_tree(
            &reader,
            &section,
            &lines[at + 1..next],
            num_features,
        )?);
        at = next;
    }
    let total_nodes: usize = trees
        .iter()
        .map(|t| t.nodes.len() + t.leaf_values.len())
        .sum();
    if total_nodes > MAX_NODES {
        return Err(reader.unsupported(format!("{total_nodes} tree nodes (at most {MAX_NODES})")));
    }
    if trees.is_empty() || trees.len() % per_iteration != 0 {
        return Err(reader.malformed(format!(
            "{} trees is not a whole number of iterations of {per_iteration}",
            trees.len()
        )));
    }
    Ok(Model {
        source: source.to_string(),
        format: ModelFormat::LightgbmText,
        objective,
        feature_names: (!positional).then_some(names),
        num_features,
        num_outputs: per_iteration,
        link,
        precision: Precision::F64,
        average_over: average_output.then_some(trees.len() / per_iteration),
        predictor: Predictor::LightgbmTrees(TreeEnsemble::new(trees, per_iteration, num_features)),
    })
}

fn parse_tree(
    reader: &Reader<'_>,
    section: &str,
    lines: &[&str],
    num_features: usize,
) -> ModelResult<ParsedTree> {
    let map = key_values(lines);
    if map.get("is_linear").is_some_and(|v| v.trim() == "1") {
        return Err(reader.unsupported(format!("linear trees ({section})")));
    }
    let leaves: usize = reader.number(&map, section, "num_leaves")?;
    if leaves == 0 {
        return Err(reader.malformed(format!("{section} has no leaves")));
    }
    let leaf_values: Vec<f64> = reader.list(&map, section, "leaf_value", leaves)?;
    if leaves == 1 {
        return Ok(ParsedTree {
            leaf_values,
            ..ParsedTree::default()
        });
    }
    let splits = leaves - 1;
    let features: Vec<usize> = reader.list(&map, section, "split_feature", splits)?;
    let thresholds: Vec<f64> = reader.list(&map, section, "threshold", splits)?;
    let decision_types: Vec<u8> = reader.list(&map, section, "decision_type", splits)?;
    let left: Vec<i64> = reader.list(&map, section, "left_child", splits)?;
    let right: Vec<i64> = reader.list(&map, section, "right_child", splits)?;
    let num_cat: usize = map
        .get("num_cat")
        .map_or(Ok(0), |_| reader.number(&map, section, "num_cat"))?;
    if num_cat > splits {
        return Err(reader.malformed(format!(
            "{section}: num_cat={num_cat} but the tree has {splits} splits"
        )));
    }
    for (side, children) in [("left_child", &left), ("right_child", &right)] {
        if let Some(bad) = children.iter().find(|c| {
            !((**c >= 0 && (**c as usize) < splits) || (**c < 0 && ((!**c) as usize) < leaves))
        }) {
            return Err(reader.malformed(format!("{section}: {side} {bad} is outside the tree")));
        }
    }
    let mut category_sets = Vec::with_capacity(num_cat);
    if num_cat > 0 {
        let boundaries: Vec<usize> = reader.list(&map, section, "cat_boundaries", num_cat + 1)?;
        let raw = reader.field(&map, section, "cat_threshold")?;
        let bits = raw
            .split_whitespace()
            .map(|v| v.parse::<u32>())
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| {
                reader.malformed(format!("{section}: 'cat_threshold' holds a non-integer"))
            })?;
        for pair in boundaries.windows(2) {
            let set = bits.get(pair[0]..pair[1]).ok_or_else(|| {
                reader.malformed(format!(
                    "{section}: cat_boundaries point outside cat_threshold"
                ))
            })?;
            category_sets.push(set.to_vec());
        }
    }
    // Every child must be a valid node or leaf, and every node reachable once
    // from the root, so evaluation cannot index out of bounds or loop.
    let mut seen_nodes = vec![false; splits];
    let mut seen_leaves = vec![false; leaves];
    let mut stack = vec![0i64];
    while let Some(child) = stack.pop() {
        let (seen, index) = if child < 0 {
            (
                &mut seen_leaves,
                usize::try_from(!child).ok().filter(|i| *i < leaves),
            )
        } else {
            (
                &mut seen_nodes,
                usize::try_from(child).ok().filter(|i| *i < splits),
            )
        };
        let index = index.ok_or_else(|| {
            reader.malformed(format!("{section}: child {child} is outside the tree"))
        })?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(reader.malformed(format!("{section}: node {child} is reached twice")));
        }
        if child >= 0 {
            stack.push(left[index]);
            stack.push(right[index]);
        }
    }
    let mut nodes = Vec::with_capacity(splits);
    for i in 0..splits {
        if features[i] >= num_features {
            return Err(reader.malformed(format!(
                "{section}: split {i} uses feature {}, but the model has {num_features}",
                features[i]
            )));
        }
        let mut category_set = 0;
        if decision_types[i] & CATEGORICAL_MASK != 0 {
            let index = thresholds[i];
            if !(index >= 0.0 && (index as usize) < category_sets.len()) {
                return Err(reader.malformed(format!(
                    "{section}: split {i} names category set {index}, but the tree has {num_cat}"
                )));
            }
            category_set = index as u32;
        }
        nodes.push(Node {
            threshold: thresholds[i],
            feature: features[i] as u32,
            decision_type: decision_types[i],
            category_set,
        });
    }
    Ok(ParsedTree {
        nodes,
        left,
        right,
        leaf_values,
        category_sets,
    })
}
