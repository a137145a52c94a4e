//! LightGBM tree ensembles, evaluated exactly as LightGBM's `Tree::Predict`.
//!
//! Semantics reproduced from LightGBM 4 (`include/LightGBM/tree.h`,
//! `c_api.cpp`): features are `f64`, and a value with `|x| ≤ kZeroThreshold`
//! (`1e-35f`) is read as exactly 0, as LightGBM's dense-row reader does; a
//! numeric split goes left when `value <= threshold`; a NaN becomes 0 unless the
//! node's missing type is NaN; a node whose missing type is Zero (NaN) sends
//! zeros (NaNs) to its default side; a categorical split truncates the value to
//! an integer and goes left when it is in the node's bitset, right for NaN and
//! negatives. Raw scores sum leaf values in `f64`, iteration by iteration, tree
//! `i` feeding class `i % num_tree_per_iteration`. (A random forest's raw score is this sum;
//! its prediction averages it over the iterations, see [`Model::transform`](crate::scoring::model::Model::transform).)

use arrow::array::Float64Array;

use crate::scoring::model::{block_rows, fill_row_block};

/// LightGBM's `kZeroThreshold`: the float literal `1e-35f`, widened to double.
pub(crate) const ZERO_THRESHOLD: f64 = 1e-35f32 as f64;

const BLOCK_ROWS: usize = 64;

/// Bit 0 of `decision_type`: categorical split.
pub(crate) const CATEGORICAL_MASK: u8 = 1;
/// Bit 1 of `decision_type`: missing values go left.
pub(crate) const DEFAULT_LEFT_MASK: u8 = 2;
/// Missing types in bits 2–3 of `decision_type` (0 is None: no missing values).
pub(crate) const MISSING_ZERO: u8 = 1;
pub(crate) const MISSING_NAN: u8 = 2;

/// Rows walking one tree in lock step (see the XGBoost evaluator).
const LANES: usize = 8;

/// One split node as parsed, with tree-local child indices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// Threshold of a numeric split; for a categorical split, unused.
    pub threshold: f64,
    pub feature: u32,
    pub decision_type: u8,
    /// For a categorical split, the index of its bitset in the tree.
    pub category_set: u32,
}

/// One tree as parsed from the text model, with tree-local indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedTree {
    pub nodes: Vec<Node>,
    /// Children as LightGBM writes them: `>= 0` a node, `< 0` the leaf `!child`.
    pub left: Vec<i64>,
    pub right: Vec<i64>,
    pub leaf_values: Vec<f64>,
    /// Bitsets of this tree's categorical splits (words), by `cat_idx`.
    pub category_sets: Vec<Vec<u32>>,
}

const FLAG_CATEGORICAL: u8 = 1;
const FLAG_DEFAULT_LEFT: u8 = 2;

/// A node of the flattened ensemble. Leaves are nodes too: `value` holds the
/// leaf value and both children point back to the leaf, so a walk is a fixed
/// number of steps with no leaf test.
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// Threshold of a split, value of a leaf.
    value: f64,
    left: u32,
    right: u32,
    feature: u32,
    /// [`FLAG_CATEGORICAL`], [`FLAG_DEFAULT_LEFT`].
    flags: u8,
    /// Missing type: [`MISSING_ZERO`], [`MISSING_NAN`], or 0 (none).
    missing: u8,
    /// For a categorical split, the index of its bitset in the ensemble.
    category_set: u32,
}

/// The trees of one LightGBM model, ready to evaluate.
#[derive(Debug)]
pub struct TreeEnsemble {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    depths: Vec<u32>,
    has_categorical: bool,
    category_sets: Vec<(u32, u32)>,
    category_bits: Vec<u32>,
    trees_per_iteration: usize,
    num_features: usize,
}

impl TreeEnsemble {
    /// Flattens parsed trees into one ensemble. Indices are validated by the parser.
    pub(crate) fn new(
        trees: Vec<ParsedTree>,
        trees_per_iteration: usize,
        num_features: usize,
    ) -> TreeEnsemble {
        let mut ensemble = TreeEnsemble {
            nodes: Vec::new(),
            roots: Vec::with_capacity(trees.len()),
            depths: Vec::with_capacity(trees.len()),
            has_categorical: false,
            category_sets: Vec::new(),
            category_bits: Vec::new(),
            trees_per_iteration,
            num_features,
        };
        for tree in trees {
            ensemble.add_tree(&tree);
        }
        ensemble
    }

    fn add_tree(&mut self, tree: &ParsedTree) {
        let node_base = self.nodes.len() as u32;
        let leaf_base = node_base + tree.nodes.len() as u32;
        let set_base = self.category_sets.len() as u32;
        for bits in &tree.category_sets {
            self.category_sets
                .push((self.category_bits.len() as u32, bits.len() as u32));
            self.category_bits.extend_from_slice(bits);
        }
        let pointer = |child: i64| -> u32 {
            if child < 0 {
                leaf_base + (!child) as u32
            } else {
                node_base + child as u32
            }
        };
        for (i, node) in tree.nodes.iter().enumerate() {
            let categorical = node.decision_type & CATEGORICAL_MASK != 0;
            self.has_categorical |= categorical;
            self.nodes.push(FlatNode {
                value: node.threshold,
                left: pointer(tree.left[i]),
                right: pointer(tree.right[i]),
                feature: node.feature,
                flags: node.decision_type & (CATEGORICAL_MASK | DEFAULT_LEFT_MASK),
                missing: (node.decision_type >> 2) & 3,
                category_set: if categorical {
                    set_base + node.category_set
                } else {
                    0
                },
            });
        }
        for (i, value) in tree.leaf_values.iter().enumerate() {
            let me = leaf_base + i as u32;
            self.nodes.push(FlatNode {
                value: *value,
                left: me,
                right: me,
                feature: 0,
                flags: 0,
                missing: 0,
                category_set: 0,
            });
        }
        let root = if tree.nodes.is_empty() {
            leaf_base
        } else {
            node_base
        };
        self.roots.push(root);
        self.depths.push(depth(tree));
    }

    #[inline]
    fn in_bitset(&self, set: u32, category: i32) -> bool {
        let (offset, words) = self.category_sets[set as usize];
        let word = (category / 32) as u32;
        word < words && (self.category_bits[(offset + word) as usize] >> (category % 32)) & 1 == 1
    }

    /// One step down from node `at` (LightGBM's `NumericalDecision`). A leaf
    /// steps to itself.
    #[inline(always)]
    fn step(&self, at: u32, block: &[f64], row: usize) -> u32 {
        let node = &self.nodes[at as usize];
        let raw = block[row + node.feature as usize];
        let nan = raw.is_nan();
        let value = if nan && node.missing != MISSING_NAN {
            0.0
        } else {
            raw
        };
        let is_missing = (node.missing == MISSING_ZERO
            && (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&value))
            | (node.missing == MISSING_NAN && nan);
        let go_left = if is_missing {
            node.flags & FLAG_DEFAULT_LEFT != 0
        } else {
            value <= node.value
        };
        if go_left { node.left } else { node.right }
    }

    /// [`Self::step`] for trees with categorical splits (`CategoricalDecision`):
    /// the value truncated to an integer goes left when in the bitset; NaN and
    /// negatives go right.
    #[inline(always)]
    fn step_categorical(&self, at: u32, block: &[f64], row: usize) -> u32 {
        let node = &self.nodes[at as usize];
        if node.flags & FLAG_CATEGORICAL == 0 {
            return self.step(at, block, row);
        }
        let value = block[row + node.feature as usize];
        if value.is_nan() {
            return node.right;
        }
        let category = value as i32;
        if category >= 0 && self.in_bitset(node.category_set, category) {
            node.left
        } else {
            node.right
        }
    }

    #[inline(always)]
    fn add_tree_scores<const L: usize, const CATEGORICAL_STEPS: bool>(
        &self,
        t: usize,
        block: &[f64],
        width: usize,
        first: usize,
        scores: &mut [f64],
        k: usize,
    ) {
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
        let class = t % k;
        for (j, a) in at.iter().enumerate() {
            scores[(first + j) * k + class] += self.nodes[*a as usize].value;
        }
    }

    fn score_block<const CATEGORICAL_STEPS: bool>(
        &self,
        block: &[f64],
        width: usize,
        rows: usize,
        scores: &mut [f64],
        k: usize,
    ) {
        for t in 0..self.roots.len() {
            let mut first = 0;
            while first + LANES <= rows {
                self.add_tree_scores::<LANES, CATEGORICAL_STEPS>(t, block, width, first, scores, k);
                first += LANES;
            }
            while first < rows {
                self.add_tree_scores::<1, CATEGORICAL_STEPS>(t, block, width, first, scores, k);
                first += 1;
            }
        }
    }

    /// Raw scores for rows `start..`, written to `out` (`rows × classes`, row-major).
    pub fn score(&self, columns: &[&Float64Array], start: usize, out: &mut [f64]) {
        let k = self.trees_per_iteration;
        let rows = out.len() / k;
        let width = self.num_features;
        let block_size = block_rows(width, BLOCK_ROWS);
        let mut block = Vec::with_capacity(block_size * width);
        let mut first = 0;
        while first < rows {
            let n = block_size.min(rows - first);
            fill_row_block(
                columns,
                start + first,
                n,
                f64::NAN,
                |v| if v.abs() <= ZERO_THRESHOLD { 0.0 } else { v },
                &mut block,
            );
            let scores = &mut out[first * k..(first + n) * k];
            scores.fill(0.0);
            if self.has_categorical {
                self.score_block::<true>(&block, width, n, scores, k);
            } else {
                self.score_block::<false>(&block, width, n, scores, k);
            }
            first += n;
        }
    }
}

/// Steps from the root to the deepest leaf.
fn depth(tree: &ParsedTree) -> u32 {
    if tree.nodes.is_empty() {
        return 0;
    }
    let mut deepest = 0;
    let mut stack = vec![(0i64, 0u32)];
    while let Some((node, level)) = stack.pop() {
        if node < 0 {
            deepest = deepest.max(level);
            continue;
        }
        let i = node as usize;
        stack.push((tree.left[i], level + 1));
        stack.push((tree.right[i], level + 1));
    }
    deepest
}

impl TreeEnsemble {
    /// Number of boosting iterations (trees per output).
    pub fn iterations(&self) -> usize {
        self.roots.len() / self.trees_per_iteration.max(1)
    }
}
