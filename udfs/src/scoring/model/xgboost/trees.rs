//! XGBoost tree ensembles (`gbtree`, `dart`), evaluated exactly as XGBoost's
//! CPU predictor does.
//!
//! Semantics reproduced from XGBoost's predictor: features are `f32`; a missing
//! value (NaN, or an Arrow null) takes the node's default direction; a numeric
//! split goes left when `value < split_condition` (in `f32`); a categorical split
//! goes right when the category is in the node's set and left otherwise, with
//! negative or too-large (≥ 2^24) categories going left; margins start at the
//! base score (as a margin) and add leaf values in `f32`, in tree order.
//!
//! Layout: every tree's nodes are renumbered breadth-first (siblings adjacent)
//! into one vector of 16-byte nodes shared by all trees. A leaf points to itself
//! on both sides, so walking a tree is a fixed number of steps (its depth) with
//! no leaf test, and [`LANES`] rows walk the same tree together: their steps are
//! independent, so the CPU overlaps their memory loads. Rows are copied into a
//! row-major `f32` block, and each tree is evaluated over the whole block while
//! it is hot in cache. Categorical splits take a separate, branchier step that
//! models without them never pay for.

use arrow::array::Float64Array;
use serde_json::Value;

use super::fields::Doc;
use super::simd::{NodeView, PackedNodes, VECTOR_ROWS, VECTORS};
use super::simd_levels::LevelTrees;
use crate::scoring::model::{ModelResult, block_rows, fill_row_block};

/// Rows evaluated together, tree by tree.
const BLOCK_ROWS: usize = 64;
/// Rows walking one tree in lock step.
const LANES: usize = 8;
/// The most 32-bit words all category bitsets of a model may take (64 MiB):
/// a bound on memory a model file can demand, far above real models.
const MAX_CATEGORY_WORDS: usize = 1 << 24;
/// XGBoost's largest valid category (`kMaxCat`).
const MAX_CATEGORY: f32 = 16_777_216.0;

const LEAF: u32 = 1 << 31;
const DEFAULT_LEFT: u32 = 1 << 30;
const CATEGORICAL: u32 = 1 << 29;
const FEATURE_MASK: u32 = CATEGORICAL - 1;

/// One node. For a leaf, `value` is the leaf value and both children are the
/// leaf itself; for a split, `value` is the threshold.
#[derive(Debug, Clone, Copy)]
struct Node {
    value: f32,
    /// Feature index in the low bits, flags in the high bits.
    feature_flags: u32,
    left: u32,
    right: u32,
}

/// A category set as a bitset over `words` 32-bit words starting at `offset`.
#[derive(Debug, Clone, Copy)]
struct CategorySet {
    offset: u32,
    words: u32,
}

/// The trees of one XGBoost model, ready to evaluate.
#[derive(Debug)]
pub struct TreeEnsemble {
    nodes: Vec<Node>,
    /// For each node, the index of its category set (categorical splits only).
    node_category_set: Vec<u32>,
    has_categorical: bool,
    category_sets: Vec<CategorySet>,
    category_bits: Vec<u32>,
    /// Root node of each tree to evaluate, in evaluation order.
    roots: Vec<u32>,
    /// Depth of each tree (steps from the root to its deepest leaf).
    depths: Vec<u32>,
    /// Output group of each tree.
    groups: Vec<u32>,
    /// DART tree weights, one per tree; `None` for `gbtree`.
    weights: Option<Vec<f32>>,
    /// Base score as a margin, per output group.
    base_margin: Vec<f32>,
    num_features: usize,
    /// Trees of depth up to 8 laid out level by level for the AVX2 walk
    /// ([`super::simd_levels`]), when the model and the CPU allow it.
    levels: Option<LevelTrees>,
    /// The nodes packed for the AVX2 walk of the other trees
    /// ([`super::simd`]). Rows left over from whole vectors walk scalar.
    packed: Option<PackedNodes>,
    /// Each node's threshold, or its value for a leaf (for the AVX2 walk).
    thresholds: Vec<f32>,
}

impl TreeEnsemble {
    /// Builds the ensemble from the JSON trees selected for prediction.
    pub(crate) fn from_json(
        doc: &Doc<'_>,
        trees: &[&Value],
        groups: Vec<u32>,
        weights: Option<Vec<f32>>,
        base_margin: Vec<f32>,
        num_features: usize,
    ) -> ModelResult<TreeEnsemble> {
        let mut ensemble = TreeEnsemble {
            nodes: Vec::new(),
            node_category_set: Vec::new(),
            has_categorical: false,
            category_sets: Vec::new(),
            category_bits: Vec::new(),
            roots: Vec::with_capacity(trees.len()),
            depths: Vec::with_capacity(trees.len()),
            groups,
            weights,
            base_margin,
            num_features,
            levels: None,
            packed: None,
            thresholds: Vec::new(),
        };
        for (i, tree) in trees.iter().enumerate() {
            ensemble.add_tree(doc, i, tree)?;
        }
        ensemble.pack_for_vectors();
        Ok(ensemble)
    }

    /// Builds the AVX2 layout, for models without categorical splits.
    fn pack_for_vectors(&mut self) {
        if self.has_categorical {
            return;
        }
        let view = |node: &Node| NodeView {
            feature: (node.feature_flags & FEATURE_MASK) as usize,
            default_left: node.feature_flags & DEFAULT_LEFT != 0,
            leaf: node.feature_flags & LEAF != 0,
            left: node.left as usize,
        };
        let nodes = &self.nodes;
        self.levels = LevelTrees::build(
            |i| view(&nodes[i]),
            |i| nodes[i].value,
            &self.roots,
            &self.depths,
        );
        // The packed walk is only for trees the level layout leaves out.
        let all_in_levels =
            (0..self.roots.len()).all(|t| self.levels.as_ref().is_some_and(|levels| levels.has(t)));
        if all_in_levels {
            return;
        }
        self.packed = PackedNodes::build(self.nodes.iter().map(view));
        if self.packed.is_some() {
            self.thresholds = self.nodes.iter().map(|node| node.value).collect();
        }
    }

    /// The same ensemble evaluated by the scalar walk only.
    #[cfg(test)]
    pub(crate) fn without_vectors(mut self) -> TreeEnsemble {
        self.levels = None;
        self.packed = None;
        self
    }

    /// How many trees each AVX2 walk takes: (level layout, packed nodes).
    #[cfg(test)]
    pub(crate) fn vector_trees(&self) -> (usize, usize) {
        let levels = (0..self.roots.len())
            .filter(|t| self.levels.as_ref().is_some_and(|l| l.has(*t)))
            .count();
        let packed = if self.packed.is_some() {
            self.roots.len() - levels
        } else {
            0
        };
        (levels, packed)
    }

    fn add_tree(&mut self, doc: &Doc<'_>, index: usize, tree: &Value) -> ModelResult<()> {
        let path = format!("trees[{index}]");
        let params = doc.get(tree, &path, "tree_param")?;
        let leaf_width = params
            .get("size_leaf_vector")
            .map(|_| doc.usize_param(params, &format!("{path}.tree_param"), "size_leaf_vector"))
            .transpose()?
            .unwrap_or(1);
        if leaf_width > 1 {
            return Err(doc.unsupported(format!(
                "multi-target trees (tree {index} has leaf vectors of size {leaf_width})"
            )));
        }
        let left = doc.i64_array(tree, &path, "left_children")?;
        let right = doc.i64_array(tree, &path, "right_children")?;
        let features = doc.i64_array(tree, &path, "split_indices")?;
        let conditions = doc.f32_array(tree, &path, "split_conditions")?;
        let default_left = doc.i64_array(tree, &path, "default_left")?;
        let n = left.len();
        if n == 0 {
            return Err(doc.malformed(format!("{path} has no nodes")));
        }
        for (name, len) in [
            ("right_children", right.len()),
            ("split_indices", features.len()),
            ("split_conditions", conditions.len()),
            ("default_left", default_left.len()),
        ] {
            if len != n {
                return Err(doc.malformed(format!(
                    "{path}.{name} has {len} entries but left_children has {n}"
                )));
            }
        }
        let split_type = match tree.get("split_type") {
            Some(_) => doc.i64_array(tree, &path, "split_type")?,
            None => vec![0; n],
        };
        if split_type.len() != n {
            return Err(doc.malformed(format!(
                "{path}.split_type has {} entries, expected {n}",
                split_type.len()
            )));
        }
        let categories = CategoryTable::read(doc, tree, &path, n)?;

        // Breadth-first renumbering: old node id -> new slot, children adjacent.
        let base = self.nodes.len();
        let node_limit = u32::MAX as usize / 2;
        if base + n > node_limit {
            return Err(doc.unsupported("more than 2^30 tree nodes"));
        }
        self.roots.push(base as u32);
        let placeholder = Node {
            value: 0.0,
            feature_flags: LEAF,
            left: 0,
            right: 0,
        };
        self.nodes.push(placeholder);
        self.node_category_set.push(0);
        let mut depth = 0u32;
        let mut queue = std::collections::VecDeque::from([(0usize, base, 0u32)]);
        let mut visited = vec![false; n];
        while let Some((old, slot, level)) = queue.pop_front() {
            if std::mem::replace(&mut visited[old], true) {
                return Err(
                    doc.malformed(format!("{path} is not a tree: node {old} is reached twice"))
                );
            }
            let (l, r) = (left[old], right[old]);
            if l == -1 {
                depth = depth.max(level);
                let me = slot as u32;
                self.nodes[slot] = Node {
                    value: conditions[old],
                    feature_flags: LEAF,
                    left: me,
                    right: me,
                };
                continue;
            }
            let child = |c: i64| -> ModelResult<usize> {
                usize::try_from(c)
                    .ok()
                    .filter(|c| *c < n && *c != 0)
                    .ok_or_else(|| {
                        doc.malformed(format!("{path}: node {old} has child {c}, outside 1..{n}"))
                    })
            };
            let (l, r) = (child(l)?, child(r)?);
            let feature = usize::try_from(features[old])
                .ok()
                .filter(|f| *f < self.num_features)
                .ok_or_else(|| {
                    doc.malformed(format!(
                        "{path}: node {old} splits on feature {}, but the model has {} features",
                        features[old], self.num_features
                    ))
                })?;
            let mut flags = feature as u32;
            if default_left[old] != 0 {
                flags |= DEFAULT_LEFT;
            }
            if split_type[old] == 1 {
                flags |= CATEGORICAL;
                self.has_categorical = true;
                self.node_category_set[slot] =
                    self.add_category_set(doc, &path, &categories, old)?;
            }
            let left_slot = self.nodes.len();
            self.nodes.extend([placeholder, placeholder]);
            self.node_category_set.extend([0, 0]);
            self.nodes[slot] = Node {
                value: conditions[old],
                feature_flags: flags,
                left: left_slot as u32,
                right: left_slot as u32 + 1,
            };
            queue.push_back((l, left_slot, level + 1));
            queue.push_back((r, left_slot + 1, level + 1));
        }
        self.depths.push(depth);
        Ok(())
    }

    fn add_category_set(
        &mut self,
        doc: &Doc<'_>,
        path: &str,
        table: &CategoryTable,
        node: usize,
    ) -> ModelResult<u32> {
        let members = table.members(node).ok_or_else(|| {
            doc.malformed(format!(
                "{path}: node {node} is a categorical split without a category set"
            ))
        })?;
        let max = members.iter().copied().max().unwrap_or(0);
        if max < 0 || max as f32 >= MAX_CATEGORY || members.iter().any(|c| *c < 0) {
            return Err(doc.malformed(format!(
                "{path}: node {node} has a category outside 0..2^24"
            )));
        }
        let words = (max as usize) / 32 + 1;
        let offset = self.category_bits.len();
        if offset + words > MAX_CATEGORY_WORDS {
            return Err(doc.unsupported(format!(
                "category sets larger than {} MiB in total",
                (MAX_CATEGORY_WORDS * 4) >> 20
            )));
        }
        self.category_bits.resize(offset + words, 0);
        for c in members {
            let c = *c as usize;
            self.category_bits[offset + c / 32] |= 1 << (c % 32);
        }
        self.category_sets.push(CategorySet {
            offset: offset as u32,
            words: words as u32,
        });
        Ok((self.category_sets.len() - 1) as u32)
    }

    /// Number of features the trees read.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    #[inline]
    fn in_category_set(&self, set: u32, value: f32) -> bool {
        let set = self.category_sets[set as usize];
        let category = value as u32;
        let word = category / 32;
        word < set.words
            && (self.category_bits[(set.offset + word) as usize] >> (category % 32)) & 1 == 1
    }

    /// One step down from node `at` for the row starting at `row` in `block`:
    /// left when `value < threshold`, or when the value is missing and the
    /// default is left. A leaf steps to itself.
    #[inline(always)]
    fn step(&self, at: u32, block: &[f32], row: usize) -> u32 {
        let node = &self.nodes[at as usize];
        let value = block[row + (node.feature_flags & FEATURE_MASK) as usize];
        let go_left =
            (value < node.value) | (value.is_nan() & (node.feature_flags & DEFAULT_LEFT != 0));
        if go_left { node.left } else { node.right }
    }

    /// [`Self::step`] for trees with categorical splits: a category in the
    /// node's set goes right; anything else (unseen, negative, ≥ 2^24) left.
    #[inline(always)]
    fn step_categorical(&self, at: u32, block: &[f32], row: usize) -> u32 {
        let node = &self.nodes[at as usize];
        if node.feature_flags & CATEGORICAL == 0 {
            return self.step(at, block, row);
        }
        let value = block[row + (node.feature_flags & FEATURE_MASK) as usize];
        let go_right = if value.is_nan() {
            node.feature_flags & DEFAULT_LEFT == 0
        } else {
            (0.0..MAX_CATEGORY).contains(&value)
                && self.in_category_set(self.node_category_set[at as usize], value)
        };
        if go_right { node.right } else { node.left }
    }

    /// Leaf values of tree `t` for `L` consecutive rows starting at block row `first`.
    #[inline(always)]
    fn leaves<const L: usize, const CATEGORICAL_STEPS: bool>(
        &self,
        t: usize,
        block: &[f32],
        width: usize,
        first: usize,
    ) -> [f32; L] {
        let mut at = [self.roots[t]; L];
        for _ in 0..self.depths[t] {
            for (j, a) in at.iter_mut().enumerate() {
                let row = (first + j) * width;
                *a = if CATEGORICAL_STEPS {
                    self.step_categorical(*a, block, row)
                } else {
                    self.step(*a, block, row)
                };
            }
        }
        at.map(|a| self.nodes[a as usize].value)
    }

    /// Adds tree `t`'s contribution to the margins of block rows `first..first + L`.
    #[inline(always)]
    fn add_tree_margins<const L: usize, const CATEGORICAL_STEPS: bool>(
        &self,
        t: usize,
        block: &[f32],
        width: usize,
        first: usize,
        margins: &mut [f32],
        k: usize,
    ) {
        let leaves = self.leaves::<L, CATEGORICAL_STEPS>(t, block, width, first);
        self.add_leaves(t, &leaves, first, margins, k);
    }

    /// Adds tree `t`'s leaf values for block rows `first..` to their margins.
    #[inline(always)]
    fn add_leaves(&self, t: usize, leaves: &[f32], first: usize, margins: &mut [f32], k: usize) {
        let group = self.groups[t] as usize;
        match &self.weights {
            None if k == 1 => {
                // One output: the rows' margins are contiguous (and vectorise).
                let rows = &mut margins[first..first + leaves.len()];
                for (margin, leaf) in rows.iter_mut().zip(leaves) {
                    *margin += leaf;
                }
            }
            None => {
                for (j, leaf) in leaves.iter().enumerate() {
                    margins[(first + j) * k + group] += leaf;
                }
            }
            Some(weights) => {
                // DART, as XGBoost's `inplace_predict`: each tree is predicted on its
                // own from the base margin, then (prediction - base) * weight is added.
                let (w, base) = (weights[t], self.base_margin[group]);
                for (j, leaf) in leaves.iter().enumerate() {
                    let alone = base + leaf;
                    margins[(first + j) * k + group] += (alone - base) * w;
                }
            }
        }
    }

    fn score_block<const CATEGORICAL_STEPS: bool>(
        &self,
        block: &[f32],
        width: usize,
        rows: usize,
        margins: &mut [f32],
        k: usize,
    ) {
        for t in 0..self.roots.len() {
            let mut first = 0;
            let vector_rows = VECTORS * VECTOR_ROWS;
            match (&self.levels, &self.packed) {
                _ if CATEGORICAL_STEPS => {}
                (Some(levels), _) if levels.has(t) => {
                    while first + vector_rows <= rows {
                        let leaves = levels.leaves(t, block, width, first);
                        self.add_leaves(t, &leaves, first, margins, k);
                        first += vector_rows;
                    }
                }
                (_, Some(packed)) => {
                    let (root, depth) = (self.roots[t], self.depths[t]);
                    while first + vector_rows <= rows {
                        let leaves =
                            packed.leaves(&self.thresholds, root, depth, block, width, first);
                        self.add_leaves(t, &leaves, first, margins, k);
                        first += vector_rows;
                    }
                }
                _ => {}
            }
            while first + LANES <= rows {
                self.add_tree_margins::<LANES, CATEGORICAL_STEPS>(
                    t, block, width, first, margins, k,
                );
                first += LANES;
            }
            while first < rows {
                self.add_tree_margins::<1, CATEGORICAL_STEPS>(t, block, width, first, margins, k);
                first += 1;
            }
        }
    }

    /// Margins for rows `start..`, written to `out` (`rows × groups`, row-major).
    pub fn score(&self, columns: &[&Float64Array], start: usize, out: &mut [f64]) {
        let k = self.base_margin.len();
        let rows = out.len() / k;
        let width = self.num_features;
        let block_size = block_rows(width, BLOCK_ROWS);
        let mut block: Vec<f32> = Vec::with_capacity(block_size * width);
        let mut margins = vec![0f32; block_size * k];
        let mut first = 0;
        while first < rows {
            let n = block_size.min(rows - first);
            fill_row_block(
                columns,
                start + first,
                n,
                f32::NAN,
                |v| v as f32,
                &mut block,
            );
            let margins = &mut margins[..n * k];
            for row in margins.chunks_mut(k) {
                row.copy_from_slice(&self.base_margin);
            }
            if self.has_categorical {
                self.score_block::<true>(&block, width, n, margins, k);
            } else {
                self.score_block::<false>(&block, width, n, margins, k);
            }
            for (o, m) in out[first * k..(first + n) * k]
                .iter_mut()
                .zip(margins.iter())
            {
                *o = f64::from(*m);
            }
            first += n;
        }
    }
}

/// The `categories*` arrays of a tree: for each categorical node, the list of
/// categories that go right.
struct CategoryTable {
    /// Node id to its entry in `segments` / `sizes`.
    entry_of_node: std::collections::HashMap<i64, usize>,
    segments: Vec<i64>,
    sizes: Vec<i64>,
    categories: Vec<i64>,
}

impl CategoryTable {
    fn read(doc: &Doc<'_>, tree: &Value, path: &str, _n: usize) -> ModelResult<CategoryTable> {
        let read = |key: &str| -> ModelResult<Vec<i64>> {
            match tree.get(key) {
                Some(_) => doc.i64_array(tree, path, key),
                None => Ok(Vec::new()),
            }
        };
        let nodes = read("categories_nodes")?;
        let table = CategoryTable {
            entry_of_node: nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect(),
            segments: read("categories_segments")?,
            sizes: read("categories_sizes")?,
            categories: read("categories")?,
        };
        if nodes.len() != table.segments.len() || nodes.len() != table.sizes.len() {
            return Err(doc.malformed(format!(
                "{path}: categories_nodes, categories_segments and categories_sizes differ in length"
            )));
        }
        Ok(table)
    }

    fn members(&self, node: usize) -> Option<&[i64]> {
        let i = *self.entry_of_node.get(&(node as i64))?;
        let start = usize::try_from(self.segments[i]).ok()?;
        let len = usize::try_from(self.sizes[i]).ok()?;
        self.categories.get(start..start.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Float64Array;
    use serde_json::json;

    use super::*;

    /// A small deterministic generator (no dependency needed for a test).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() * n as f64) as usize % n
        }
    }

    const FEATURES: usize = 7;
    /// Thresholds the rows also take, exactly and one ulp either side.
    const CUTS: [f32; 5] = [-1.5, -0.25, 0.0, 0.75, 2.0];

    /// A tree of random shape (leaves at any depth up to `max_depth`), in
    /// XGBoost's JSON: node ids in depth-first order, as XGBoost numbers them
    /// differently from Ember's breadth-first layout.
    /// Node arrays as XGBoost's JSON holds them: left and right children,
    /// split feature, condition (or leaf value), default left.
    type Nodes = (Vec<i64>, Vec<i64>, Vec<usize>, Vec<f32>, Vec<u8>);

    fn tree(rng: &mut Lcg, max_depth: u32) -> Value {
        fn grow(rng: &mut Lcg, depth: u32, max_depth: u32, nodes: &mut Nodes) -> i64 {
            let id = nodes.0.len();
            nodes.0.push(-1);
            nodes.1.push(-1);
            nodes.2.push(0);
            nodes.3.push(0.0);
            nodes.4.push(0);
            // Leaves anywhere, the root included (a single-leaf tree).
            if depth == max_depth || rng.next() < if depth == 0 { 0.05 } else { 0.25 } {
                nodes.3[id] = (rng.next() - 0.5) as f32;
                return id as i64;
            }
            nodes.2[id] = rng.below(FEATURES);
            nodes.3[id] = CUTS[rng.below(CUTS.len())];
            nodes.4[id] = u8::from(rng.next() < 0.5);
            let l = grow(rng, depth + 1, max_depth, nodes);
            let r = grow(rng, depth + 1, max_depth, nodes);
            nodes.0[id] = l;
            nodes.1[id] = r;
            id as i64
        }
        let mut nodes: Nodes = Default::default();
        grow(rng, 0, max_depth, &mut nodes);
        let (left, right, features, conditions, default_left) = nodes;
        json!({
            "left_children": left, "right_children": right, "split_indices": features,
            "split_conditions": conditions, "default_left": default_left,
            "tree_param": {"num_nodes": left.len().to_string(), "size_leaf_vector": "1"}
        })
    }

    /// Feature columns of `rows` rows: the cuts, one ulp either side,
    /// NaN, nulls, infinities and ordinary values.
    fn columns(rng: &mut Lcg, rows: usize) -> Vec<Float64Array> {
        (0..FEATURES)
            .map(|_| {
                Float64Array::from_iter((0..rows).map(|_| {
                    let cut = CUTS[rng.below(CUTS.len())];
                    match rng.below(8) {
                        0 => None,
                        1 => Some(f64::NAN),
                        2 => Some(if rng.next() < 0.5 {
                            f64::INFINITY
                        } else {
                            f64::NEG_INFINITY
                        }),
                        3 => Some(f64::from(cut)),
                        4 => Some(f64::from(cut.next_up())),
                        5 => Some(f64::from(cut.next_down())),
                        _ => Some((rng.next() - 0.5) * 5.0),
                    }
                }))
            })
            .collect()
    }

    fn ensemble(rng: &mut Lcg, trees: usize, groups: usize, dart: bool) -> TreeEnsemble {
        let doc = Doc {
            file: "random.json",
            format: "XGBoost JSON",
        };
        // The last tree is shallow: its level layout's eight-lane reads run
        // furthest past its end, into the padding.
        let values: Vec<Value> = (0..trees)
            .map(|t| {
                if t + 1 == trees {
                    return tree(rng, 2);
                }
                // Up to depth 8 the level layout walks a tree, deeper ones the packed nodes.
                let depth = 1 + rng.below(11) as u32;
                tree(rng, depth)
            })
            .collect();
        let refs: Vec<&Value> = values.iter().collect();
        let tree_groups = (0..trees).map(|t| (t % groups) as u32).collect();
        let weights = dart.then(|| (0..trees).map(|_| rng.next() as f32).collect());
        let base = (0..groups).map(|g| g as f32 * 0.1 - 0.05).collect();
        match TreeEnsemble::from_json(&doc, &refs, tree_groups, weights, base, FEATURES) {
            Ok(ensemble) => ensemble,
            Err(e) => panic!("random model: {e}"),
        }
    }

    fn margins(
        ensemble: &TreeEnsemble,
        columns: &[Float64Array],
        start: usize,
        rows: usize,
    ) -> Vec<u32> {
        let refs: Vec<&Float64Array> = columns.iter().collect();
        let mut out = vec![0.0; rows * ensemble.base_margin.len()];
        ensemble.score(&refs, start, &mut out);
        out.iter().map(|m| (*m as f32).to_bits()).collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_walk_scores_exactly_as_the_scalar_walk() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            panic!("this test checks the AVX2 walk and needs an x86-64 CPU with AVX2");
        }
        let mut rng = Lcg(7);
        for (trees, groups, dart) in [(40, 1, false), (30, 3, false), (25, 1, true), (24, 3, true)]
        {
            let columns = columns(&mut rng, 1000);
            let vector = ensemble(&mut Lcg(trees as u64), trees, groups, dart);
            let (levels, packed) = vector.vector_trees();
            assert!(
                levels > 0 && packed > 0 && levels + packed == trees,
                "{levels} + {packed}"
            );
            let scalar = ensemble(&mut Lcg(trees as u64), trees, groups, dart).without_vectors();
            // Whole blocks, a ragged tail, and a start inside the arrays.
            for (start, rows) in [(0, 1000), (3, 997), (17, 40), (0, 15)] {
                assert_eq!(
                    margins(&vector, &columns, start, rows),
                    margins(&scalar, &columns, start, rows),
                    "{trees} trees, {groups} groups, dart {dart}, rows {start}..{}",
                    start + rows
                );
            }
        }
    }
}
