//! One batch of a distributed GBDT run's binned rows and its training
//! state, as kept between level queries by [`super::gbdt_resident`].
//!
//! The state moves forward only: finished trees are added to the margins in
//! order, gradients are recomputed once per round, and each row's node moves
//! down the tree as it grows. Bringing a batch to a plan's round and tree
//! therefore gives the same margins, gradients and nodes however many level
//! queries it skipped, as long as the plan carries the trees it missed.

use arrow::buffer::ScalarBuffer;

use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{HistShape, NO_SLOT, accumulate_row_major};
use crate::training::gbdt::messages::ResidentLevelPlan;
use crate::training::gbdt::tree::{NONE, Tree};
use crate::training::params::Objective;

/// Names a row of the binned table: the random id of the batch it was
/// written in, and its index there (see `gbdt_row_key`).
pub type RowKey = (i64, i64);

/// One batch of a run's binned rows and its training state.
#[derive(Debug)]
pub struct ResidentRows {
    /// Bins row by row (`features` per row): a row's walk down a tree and
    /// its histogram updates read one or two cache lines, not one per feature.
    bins: Vec<u16>,
    features: usize,
    label: ScalarBuffer<f64>,
    last_key: RowKey,
    margin: Vec<f64>,
    trees_applied: u32,
    gradient: Vec<GradPair>,
    gradient_round: Option<u32>,
    position: Vec<u32>,
    position_round: Option<u32>,
}

impl ResidentRows {
    /// A batch read from the binned table, before any tree: every margin is
    /// `start`. `bins` has one column per feature, each as long as `label`.
    pub fn new(
        start: f64,
        label: ScalarBuffer<f64>,
        bins: Vec<ScalarBuffer<u16>>,
        last_key: RowKey,
    ) -> Self {
        let len = label.len();
        let features = bins.len();
        debug_assert!(
            bins.iter().all(|column| column.len() == len),
            "every bin column has a bin per label"
        );
        let mut rows = vec![0u16; len * features];
        for (f, column) in bins.iter().enumerate() {
            for (r, bin) in column.iter().take(len).enumerate() {
                rows[r * features + f] = *bin;
            }
        }
        Self {
            bins: rows,
            features,
            label,
            last_key,
            margin: vec![start; len],
            trees_applied: 0,
            gradient: Vec::new(),
            gradient_round: None,
            position: Vec::new(),
            position_round: None,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.label.len()
    }

    /// Features per row.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The key of the batch's last row.
    pub fn last_key(&self) -> RowKey {
        self.last_key
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these are the `features`-feature rows of a batch of `len`
    /// rows ending with `last_key`.
    pub fn matches(&self, len: usize, last_key: RowKey, features: usize) -> bool {
        self.len() == len && self.last_key == last_key && self.features == features
    }

    /// Memory held once the batch has gradients and positions.
    pub fn bytes(&self) -> usize {
        let per_row = 2 * self.features
            + std::mem::size_of::<f64>() * 2
            + std::mem::size_of::<GradPair>()
            + std::mem::size_of::<u32>();
        self.len() * per_row + std::mem::size_of::<Self>()
    }

    /// Brings the batch to the plan's round and tree and sums its rows of
    /// the nodes being built (`slot_of_node`) into `hist`: adds the trees
    /// finished since its margins were last updated, computes the round's
    /// gradients once, moves every row to its node in the tree so far and
    /// adds the gradient pairs. Returns false, changing nothing, when the
    /// plan lacks a tree the batch needs (or is for an earlier round than the
    /// batch).
    pub fn add_level(
        &mut self,
        plan: &ResidentLevelPlan,
        objective: Objective,
        quantiser: Quantiser,
        slot_of_node: &[u32],
        hist: &mut [GradPair],
        shape: HistShape,
    ) -> bool {
        if !self.prepare(plan, objective, quantiser) {
            return false;
        }
        self.descend_and_accumulate(&plan.level.tree, slot_of_node, hist, shape);
        true
    }

    /// [`Self::add_level`]'s first half: margins, gradients and positions
    /// at the plan's round.
    fn prepare(
        &mut self,
        plan: &ResidentLevelPlan,
        objective: Objective,
        quantiser: Quantiser,
    ) -> bool {
        if self.trees_applied > plan.round || self.trees_applied < plan.trees_from {
            return false;
        }
        let first_missing = (self.trees_applied - plan.trees_from) as usize;
        for tree in plan.trees.iter().skip(first_missing) {
            // Rows placed in this very tree by its last level query are
            // one step from their leaf.
            let placed = self.position_round == Some(self.trees_applied);
            self.add_tree(tree, placed);
            self.trees_applied += 1;
        }
        if self.gradient_round != Some(plan.round) {
            self.gradient.clear();
            self.gradient.extend(
                self.label
                    .iter()
                    .zip(&self.margin)
                    .map(|(y, m)| quantiser.row_gradient(objective, *m, *y)),
            );
            self.gradient_round = Some(plan.round);
        }
        if self.position_round != Some(plan.round) {
            self.position.clear();
            self.position.resize(self.len(), 0);
            self.position_round = Some(plan.round);
        }
        true
    }

    /// Adds a finished tree's output to every row's margin, as the driver's
    /// model adds it: in tree order, in `f64`. With `placed`, each row's
    /// position is a node of this tree on its path, and the walk starts there.
    fn add_tree(&mut self, tree: &Tree, placed: bool) {
        let (bins, features) = (&self.bins, self.features);
        let nodes = tree.nodes.len();
        for (r, margin) in self.margin.iter_mut().enumerate() {
            let row = &bins[r * features..(r + 1) * features];
            let from = match self.position.get(r) {
                Some(p) if placed && (*p as usize) < nodes => *p as usize,
                _ => 0,
            };
            *margin += tree.nodes[walk(tree, from, row)].value;
        }
    }

    /// Moves every row from its node down to the leaf it reaches in `tree`
    /// and adds the gradient pair of every row whose node then has a slot to
    /// `hist` (whose shape must have this batch's features). One pass: a
    /// row's bins are read from memory once per level, for both.
    fn descend_and_accumulate(
        &mut self,
        tree: &Tree,
        slot_of_node: &[u32],
        hist: &mut [GradPair],
        shape: HistShape,
    ) {
        // About half the rows are selected below the root, in no order a
        // branch predictor learns: a chunk of rows is walked and its
        // selected rows gathered without a branch, then summed.
        const CHUNK: usize = 256;
        let (bins, features) = (&self.bins, self.features);
        let nodes = tree.nodes.len();
        let rows = self.position.len().min(self.gradient.len());
        let mut chosen = [(0u32, 0u32); CHUNK];
        for first in (0..rows).step_by(CHUNK) {
            let end = rows.min(first + CHUNK);
            let mut count = 0;
            for (r, position) in (first..end).zip(&mut self.position[first..end]) {
                let row = &bins[r * features..(r + 1) * features];
                // Positions always come from an earlier state of this tree;
                // the bound only keeps a wrong one from indexing out of range.
                let from = if (*position as usize) < nodes {
                    *position as usize
                } else {
                    0
                };
                let at = walk(tree, from, row);
                *position = at as u32;
                let slot = slot_of_node.get(at).copied().unwrap_or(NO_SLOT);
                chosen[count] = (r as u32, slot);
                count += usize::from(slot != NO_SLOT);
            }
            for (r, slot) in &chosen[..count] {
                let r = *r as usize;
                let row = &bins[r * features..(r + 1) * features];
                accumulate_row_major(hist, shape, *slot as usize, row, self.gradient[r]);
            }
        }
    }
}

/// The leaf a row (`row[f]`: its bin of feature `f`) reaches from node
/// `from`. Rows are kept one level above the tree's newest leaves, so the
/// first step is taken without a branch on the side the row goes (which
/// no predictor learns); a row further up walks on.
#[inline]
fn walk(tree: &Tree, from: usize, row: &[u16]) -> usize {
    let node = &tree.nodes[from];
    let bin = row
        .get(node.feature as usize)
        .copied()
        .unwrap_or(MISSING_BIN);
    let left = (bin < node.bin) | ((bin == MISSING_BIN) & node.default_left);
    let child = node.right ^ ((node.left ^ node.right) & u32::from(left).wrapping_neg());
    let split = u32::from(node.left != NONE).wrapping_neg();
    let at = ((child & split) | (from as u32 & !split)) as usize;
    match tree.nodes.get(at) {
        Some(next) if next.left != NONE => tree.leaf_from(at, |f| row[f]),
        _ => at,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::training::gbdt::tree::Node;

    /// A deterministic stream of 31-bit random numbers (also for other
    /// modules' tests of kept rows).
    pub(crate) fn random_numbers(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        }
    }

    /// A full tree of the given depth with random splits (missing values
    /// sent either way), nodes in level order.
    fn random_tree(depth: u32, features: u32, next: &mut impl FnMut() -> u64) -> Tree {
        // A leaf's feature means nothing; out of range here, so that a walk
        // that read it would be caught.
        let leaf = |parent: u32, value: f64| Node {
            value,
            feature: features + 5,
            ..Node::leaf(parent)
        };
        let mut nodes = vec![leaf(NONE, 0.0)];
        let mut level = vec![0usize];
        for _ in 0..depth {
            let mut below = Vec::new();
            for at in level {
                let (left, right) = (nodes.len(), nodes.len() + 1);
                for _ in 0..2 {
                    nodes.push(leaf(at as u32, (next() % 1000) as f64));
                }
                let node = &mut nodes[at];
                node.left = left as u32;
                node.right = right as u32;
                node.feature = (next() % u64::from(features)) as u32;
                node.bin = (next() % 8) as u16;
                node.default_left = next().is_multiple_of(2);
                below.extend([left, right]);
            }
            level = below;
        }
        Tree { nodes }
    }

    #[test]
    fn the_branch_free_walk_reaches_the_leaf_the_tree_walk_reaches_from_any_node() {
        let mut next = random_numbers(7u64);
        let features = 3;
        for depth in 0..5 {
            let tree = random_tree(depth, features, &mut next);
            for _ in 0..2000 {
                let row: Vec<u16> = (0..features)
                    .map(|_| match next() % 9 {
                        8 => MISSING_BIN,
                        b => b as u16,
                    })
                    .collect();
                // Every node on the row's path, the root included: a row can
                // stand any number of levels above its leaf.
                let mut at = 0;
                loop {
                    assert_eq!(
                        walk(&tree, at, &row),
                        tree.leaf_from(at, |f| row[f]),
                        "depth {depth}, from node {at}, row {row:?}"
                    );
                    if tree.nodes[at].left == NONE {
                        break;
                    }
                    // One step down the row's path.
                    let node = &tree.nodes[at];
                    let bin = row[node.feature as usize];
                    let left = if bin == MISSING_BIN {
                        node.default_left
                    } else {
                        bin < node.bin
                    };
                    at = if left { node.left } else { node.right } as usize;
                }
            }
        }
    }

    /// `tree` cut at `depth`: nodes below it dropped, nodes at it made leaves.
    /// Nodes are in level order, so the ids of the nodes kept do not change.
    fn cut_at(tree: &Tree, depth: u32) -> Tree {
        let kept = (1usize << (depth + 1)) - 1;
        let mut nodes = tree.nodes[..kept.min(tree.nodes.len())].to_vec();
        for node in &mut nodes[(1usize << depth) - 1..] {
            node.left = NONE;
            node.right = NONE;
        }
        Tree { nodes }
    }

    #[test]
    fn a_level_sums_what_column_wise_sums_of_rows_walked_from_the_root_give() {
        use crate::training::gbdt::hist::{SelectedRows, accumulate};
        use crate::training::gbdt::messages::{GradientPlan, LevelPlan};
        let mut next = random_numbers(11u64);
        // More rows than one chunk, with a partial last chunk; every
        // feature with missing values.
        let (len, features, stride) = (700, 3u32, 7);
        let columns: Vec<Vec<u16>> = (0..features)
            .map(|_| {
                (0..len)
                    .map(|_| match next() % 10 {
                        9 => MISSING_BIN,
                        b => (b % 6) as u16,
                    })
                    .collect()
            })
            .collect();
        let labels: Vec<f64> = (0..len).map(|_| (next() % 2) as f64).collect();
        let finished = random_tree(2, features, &mut next);
        let growing = random_tree(3, features, &mut next);
        let quantiser = Quantiser { scale_log2: 30 };
        let objective = Objective::BinaryLogistic;
        let start = 0.25;
        let mut rows = ResidentRows::new(
            start,
            ScalarBuffer::from(labels.clone()),
            columns
                .iter()
                .map(|c| ScalarBuffer::from(c.clone()))
                .collect(),
            (1, len as i64 - 1),
        );
        let views: Vec<&[u16]> = columns.iter().map(Vec::as_slice).collect();
        let views = &views;
        let row = |r: usize| move |f: usize| views[f][r];
        let gradients: Vec<GradPair> = (0..len)
            .map(|r| {
                let margin = start + finished.nodes[finished.leaf_of(row(r))].value;
                quantiser.row_gradient(objective, margin, labels[r])
            })
            .collect();
        // Two levels of the round after `finished`: rows start at the root
        // (several steps each), then take one step.
        for depth in [2, 3] {
            let tree = cut_at(&growing, depth);
            // Every other node of the newest level is built.
            let build: Vec<u32> = ((1u32 << depth) - 1..(1u32 << (depth + 1)) - 1)
                .step_by(2)
                .collect();
            let mut slot_of_node = vec![NO_SLOT; tree.nodes.len()];
            for (slot, node) in build.iter().enumerate() {
                slot_of_node[*node as usize] = slot as u32;
            }
            let shape = HistShape {
                slots: build.len(),
                features: features as usize,
                stride,
            };
            let plan = ResidentLevelPlan {
                run: "test".into(),
                round: 1,
                start,
                gradient: GradientPlan {
                    objective: "binary:logistic".into(),
                    quantiser,
                },
                level: LevelPlan {
                    features: features as usize,
                    stride,
                    build: build.clone(),
                    tree: tree.clone(),
                },
                trees_from: 0,
                trees: vec![finished.clone()],
            };
            let mut hist = vec![GradPair::default(); shape.len()];
            assert!(rows.add_level(&plan, objective, quantiser, &slot_of_node, &mut hist, shape));

            let mut selected = SelectedRows::default();
            for (r, grad) in gradients.iter().enumerate() {
                let slot = slot_of_node[tree.leaf_of(row(r))];
                if slot != NO_SLOT {
                    selected.push(r, slot, *grad);
                }
            }
            let mut expected = vec![GradPair::default(); shape.len()];
            accumulate(&mut expected, shape, &selected, views);
            assert_eq!(hist, expected, "depth {depth}");
            assert!(
                selected.rows.len() > 100,
                "depth {depth}: too few rows built"
            );
            let positions: Vec<u32> = (0..len).map(|r| tree.leaf_of(row(r)) as u32).collect();
            assert_eq!(rows.position, positions, "depth {depth}");
        }
    }

    #[test]
    fn rows_are_kept_row_by_row_with_every_feature() {
        let rows = ResidentRows::new(
            0.0,
            ScalarBuffer::from(vec![0.0, 1.0, 0.0]),
            vec![
                ScalarBuffer::from(vec![1u16, 2, 3]),
                ScalarBuffer::from(vec![4u16, MISSING_BIN, 6]),
            ],
            (1, 2),
        );
        assert_eq!(rows.bins, vec![1, 4, 2, MISSING_BIN, 3, 6]);
        assert!(rows.matches(3, (1, 2), 2));
        assert!(!rows.matches(3, (1, 2), 1));
    }
}
