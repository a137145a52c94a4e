//! One batch of a distributed GBDT run's binned rows and its training
//! state, as kept between level queries by [`super::gbdt_resident`].
//!
//! The state moves forward only: finished trees are added to the margins in
//! order, gradients are recomputed once per round, and each row's node moves
//! down the tree as it grows. Bringing a batch to a plan's round and tree
//! therefore gives the same margins, gradients and nodes however many level
//! queries it skipped, as long as the plan carries the trees it missed.

use arrow::buffer::ScalarBuffer;

use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{NO_SLOT, SelectedRows};
use crate::training::gbdt::messages::ResidentLevelPlan;
use crate::training::gbdt::tree::Tree;
use crate::training::params::Objective;

/// Names a row of the binned table: the random id of the batch it was
/// written in, and its index there (see `gbdt_row_key`).
pub type RowKey = (i64, i64);

/// One batch of a run's binned rows and its training state.
#[derive(Debug)]
pub struct ResidentRows {
    bins: Vec<ScalarBuffer<u16>>,
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
        Self {
            bins,
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

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these are the `features`-feature rows of a batch of `len`
    /// rows ending with `last_key`.
    pub fn matches(&self, len: usize, last_key: RowKey, features: usize) -> bool {
        self.len() == len && self.last_key == last_key && self.bins.len() == features
    }

    /// Memory held once the batch has gradients and positions.
    pub fn bytes(&self) -> usize {
        let per_row = 2 * self.bins.len()
            + std::mem::size_of::<f64>() * 2
            + std::mem::size_of::<GradPair>()
            + std::mem::size_of::<u32>();
        self.len() * per_row + std::mem::size_of::<Self>()
    }

    /// The bin columns.
    pub fn bins(&self) -> Vec<&[u16]> {
        self.bins.iter().map(|b| b.as_ref()).collect()
    }

    /// Brings the batch to the plan's round and tree: adds the trees finished
    /// since its margins were last updated, computes the round's gradients
    /// once, and moves every row to its node in the tree so far. Returns
    /// false, changing nothing, when the plan lacks a tree the batch needs
    /// (or is for an earlier round than the batch).
    pub fn prepare(
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
        self.descend(&plan.level.tree);
        true
    }

    /// Adds a finished tree's output to every row's margin, as the driver's
    /// model adds it: in tree order, in `f64`. With `placed`, each row's
    /// position is a node of this tree on its path, and the walk starts there.
    fn add_tree(&mut self, tree: &Tree, placed: bool) {
        let bins: Vec<&[u16]> = self.bins.iter().map(|b| b.as_ref()).collect();
        let nodes = tree.nodes.len();
        for (r, margin) in self.margin.iter_mut().enumerate() {
            let from = match self.position.get(r) {
                Some(p) if placed && (*p as usize) < nodes => *p as usize,
                _ => 0,
            };
            *margin += tree.nodes[tree.leaf_from(from, |f| bins[f][r])].value;
        }
    }

    /// Moves every row from its node down to the leaf it reaches now.
    fn descend(&mut self, tree: &Tree) {
        let bins: Vec<&[u16]> = self.bins.iter().map(|b| b.as_ref()).collect();
        let nodes = tree.nodes.len();
        for (r, position) in self.position.iter_mut().enumerate() {
            // Positions always come from an earlier state of this tree; the
            // bound only keeps a wrong one from indexing out of range.
            let from = if (*position as usize) < nodes {
                *position as usize
            } else {
                0
            };
            *position = tree.leaf_from(from, |f| bins[f][r]) as u32;
        }
    }

    /// Selects the rows whose node has a slot, with their gradient pairs.
    pub fn select(&self, slot_of_node: &[u32], selected: &mut SelectedRows) {
        selected.clear();
        for (r, (node, pair)) in self.position.iter().zip(&self.gradient).enumerate() {
            let slot = slot_of_node.get(*node as usize).copied().unwrap_or(NO_SLOT);
            if slot != NO_SLOT {
                selected.push(r, slot, *pair);
            }
        }
    }
}
