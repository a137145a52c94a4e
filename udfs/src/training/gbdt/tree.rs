//! A regression tree over binned features, and the level-by-level grower
//! shared by in-memory and distributed training.
//!
//! The grower never sees rows. It asks for the histograms of some nodes of
//! the current level ([`Grower::pending`]), receives them ([`Grower::apply`]),
//! chooses splits and moves to the next level. Whoever answers — a loop over
//! a group's rows, or an aggregate query over a table on a cluster — only has
//! to place each row in its node with [`Tree::leaf_of`]. Of two sibling nodes
//! only the one with the smaller Hessian is built; the other is its parent's
//! histogram minus it (exact, since sums are integers).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::HistShape;
use crate::training::gbdt::messages::MAX_HISTOGRAM_ENTRIES;
use crate::training::gbdt::split::{Split, best_split, leaf_weight};
use crate::training::params::GbdtParams;

/// Marks "no child" / "no parent".
pub const NONE: u32 = u32::MAX;

/// One node. A leaf has `left == NONE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Left child, or [`NONE`] for a leaf.
    pub left: u32,
    /// Right child.
    pub right: u32,
    /// Split feature.
    pub feature: u32,
    /// Bins `< bin` go left.
    pub bin: u16,
    /// Where missing values go.
    pub default_left: bool,
    /// `x < split_value` goes left (`cuts[feature][bin − 1]`); not part of
    /// driver messages (rows are walked by bin).
    #[serde(skip)]
    pub split_value: f32,
    /// The node's output: `eta · −G/(H+λ)`; added to the margin at a leaf.
    /// Sent as its bit pattern, so a driver message reproduces it exactly.
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub value: f64,
    /// Parent, or [`NONE`] for the root.
    pub parent: u32,
    /// Gain of the split (0 for a leaf); not part of driver messages.
    #[serde(skip)]
    pub gain: f64,
    /// Hessian sum of the node's rows; not part of driver messages.
    #[serde(skip)]
    pub hess: f64,
}

impl Node {
    /// A leaf under `parent`, with no output yet.
    pub(crate) fn leaf(parent: u32) -> Self {
        Self {
            left: NONE,
            right: NONE,
            feature: 0,
            bin: 0,
            default_left: false,
            split_value: 0.0,
            value: 0.0,
            parent,
            gain: 0.0,
            hess: 0.0,
        }
    }

    /// Whether the node is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.left == NONE
    }
}

/// A tree: node 0 is the root; children come after their parent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf (or unsplit node) a row reaches; `bin(f)` gives its bin of feature `f`.
    #[inline]
    pub fn leaf_of(&self, bin: impl Fn(usize) -> u16) -> usize {
        self.leaf_from(0, bin)
    }

    /// The leaf (or unsplit node) a row reaches from node `start`, which must
    /// be on its path: a row placed in a tree keeps its place as the tree
    /// grows, so the next level only walks the last step.
    #[inline]
    pub fn leaf_from(&self, start: usize, bin: impl Fn(usize) -> u16) -> usize {
        let mut id = start;
        loop {
            let node = &self.nodes[id];
            if node.left == NONE {
                return id;
            }
            let b = bin(node.feature as usize);
            let go_left = if b == MISSING_BIN {
                node.default_left
            } else {
                b < node.bin
            };
            id = if go_left { node.left } else { node.right } as usize;
        }
    }

    /// Checks that child links point forward and features are in range
    /// (a tree from a message must not send a walk out of bounds or in a loop).
    pub fn validate(&self, function: &'static str, features: usize) -> TrainResult<()> {
        let bad = |reason: String| TrainError::Message { function, reason };
        if self.nodes.is_empty() {
            return Err(bad("empty tree".into()));
        }
        for (id, node) in self.nodes.iter().enumerate() {
            if node.left != NONE {
                let (l, r) = (node.left as usize, node.right as usize);
                if l <= id || r <= id || l >= self.nodes.len() || r >= self.nodes.len() {
                    return Err(bad(format!("node {id} has children {l}, {r}")));
                }
                if node.feature as usize >= features {
                    return Err(bad(format!(
                        "node {id} splits feature {} of {features}",
                        node.feature
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Checks that the widest level's histograms (2^(max_depth−2) nodes built,
/// thanks to sibling subtraction) fit [`MAX_HISTOGRAM_ENTRIES`], before any
/// work starts.
pub fn check_histogram_budget(
    function: &'static str,
    params: &GbdtParams,
    cuts: &[Vec<f32>],
) -> TrainResult<()> {
    let stride = cuts.iter().map(|c| c.len() + 1).max().unwrap_or(1) + 1;
    let nodes = if params.max_depth >= 2 {
        1usize << (params.max_depth - 2)
    } else {
        1
    };
    let entries = nodes.saturating_mul(cuts.len()).saturating_mul(stride);
    if entries > MAX_HISTOGRAM_ENTRIES {
        return Err(TrainError::Param {
            function,
            param: "max_depth".into(),
            reason: format!(
                "is {}: with {} features × {stride} bins its deepest level needs {entries} histogram entries, over the limit of {MAX_HISTOGRAM_ENTRIES}; lower max_depth or max_bin",
                params.max_depth,
                cuts.len()
            ),
        });
    }
    Ok(())
}

/// A node [`Grower::grow_level`] split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrownNode {
    /// The node.
    pub node: u32,
    /// Whether both of its children are in the next level.
    pub both_children_grow: bool,
}

/// Grows one tree level by level from histograms it is given.
#[derive(Debug)]
pub struct Grower<'a> {
    params: &'a GbdtParams,
    quantiser: Quantiser,
    cuts: &'a [Vec<f32>],
    shape: HistShape,
    tree: Tree,
    sums: Vec<GradPair>,
    level: Vec<u32>,
    depth: usize,
    build: Vec<u32>,
    parents: HashMap<u32, Vec<GradPair>>,
}

/// A [`Grower`] between calls, without the parameters and cuts it borrows:
/// what a process keeps of a tree being grown from one task to the next.
#[derive(Debug)]
pub struct GrowerState {
    quantiser: Quantiser,
    shape: HistShape,
    tree: Tree,
    sums: Vec<GradPair>,
    level: Vec<u32>,
    depth: usize,
    build: Vec<u32>,
    parents: HashMap<u32, Vec<GradPair>>,
}

impl<'a> Grower<'a> {
    /// Resumes a grower from [`Self::into_state`] with the same parameters
    /// and cuts.
    pub fn from_state(params: &'a GbdtParams, cuts: &'a [Vec<f32>], state: GrowerState) -> Self {
        Self {
            params,
            quantiser: state.quantiser,
            cuts,
            shape: state.shape,
            tree: state.tree,
            sums: state.sums,
            level: state.level,
            depth: state.depth,
            build: state.build,
            parents: state.parents,
        }
    }

    /// The grower's state, to resume it later with [`Self::from_state`].
    pub fn into_state(self) -> GrowerState {
        GrowerState {
            quantiser: self.quantiser,
            shape: self.shape,
            tree: self.tree,
            sums: self.sums,
            level: self.level,
            depth: self.depth,
            build: self.build,
            parents: self.parents,
        }
    }

    /// The quantiser of the round the tree is grown in.
    pub fn quantiser(&self) -> Quantiser {
        self.quantiser
    }

    /// A grower for a tree over features with the given cuts, from
    /// histograms at the round's fixed-point scale.
    pub fn new(params: &'a GbdtParams, cuts: &'a [Vec<f32>], quantiser: Quantiser) -> Self {
        let stride = cuts.iter().map(|c| c.len() + 1).max().unwrap_or(1) + 1;
        Self {
            params,
            quantiser,
            cuts,
            shape: HistShape {
                slots: 1,
                features: cuts.len(),
                stride,
            },
            tree: Tree {
                nodes: vec![Node::leaf(NONE)],
            },
            sums: vec![GradPair::default()],
            level: vec![0],
            depth: 0,
            build: vec![0],
            parents: HashMap::new(),
        }
    }

    /// Bins per feature (missing included) in every histogram.
    pub fn stride(&self) -> usize {
        self.shape.stride
    }

    /// The tree so far (its unsplit nodes are where rows are counted).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The nodes whose histograms are needed next, or `None` when the tree is done.
    pub fn pending(&self) -> Option<&[u32]> {
        if self.level.is_empty() || self.depth >= self.params.max_depth {
            None
        } else {
            Some(&self.build)
        }
    }

    /// Consumes the histograms of [`Self::pending`]'s nodes (`pending.len() ×
    /// features × stride` entries, in that order) and grows the next level.
    pub fn apply(&mut self, built: &[GradPair]) -> TrainResult<()> {
        let node_len = self.shape.node_len();
        if built.len() != self.build.len() * node_len {
            return Err(TrainError::Message {
                function: "train_gbdt",
                reason: format!(
                    "{} histogram entries for {} nodes",
                    built.len(),
                    self.build.len()
                ),
            });
        }
        let mut hists: HashMap<u32, Vec<GradPair>> = HashMap::new();
        for (i, node) in self.build.iter().enumerate() {
            hists.insert(*node, built[i * node_len..(i + 1) * node_len].to_vec());
        }
        // Siblings not built: parent − built sibling.
        for node in &self.level {
            if hists.contains_key(node) {
                continue;
            }
            let parent = self.tree.nodes[*node as usize].parent;
            let p = &self.tree.nodes[parent as usize];
            let sibling = if p.left == *node { p.right } else { p.left };
            let (Some(parent_hist), Some(sibling_hist)) =
                (self.parents.get(&parent), hists.get(&sibling))
            else {
                return Err(TrainError::Message {
                    function: "train_gbdt",
                    reason: format!("no histogram for node {node}"),
                });
            };
            let derived: Vec<GradPair> = parent_hist
                .iter()
                .zip(sibling_hist)
                .map(|(a, b)| a.minus(*b))
                .collect();
            hists.insert(*node, derived);
        }
        if self.depth == 0 {
            // The root's total: every row is in some bin of feature 0.
            let mut total = GradPair::default();
            if let Some(h) = hists.get(&0) {
                h[..self.shape.stride].iter().for_each(|p| total.add(*p));
            }
            self.sums[0] = total;
        }
        let (quantiser, stride, cuts, params) =
            (self.quantiser, self.shape.stride, self.cuts, self.params);
        let mut kept = HashMap::new();
        let grown = self.grow_level(|node, sum| {
            let hist = hists.remove(&node)?;
            let split = best_split(quantiser, &hist, stride, sum, cuts, params);
            kept.insert(node, hist);
            split
        });
        // A parent's histogram is kept while both its children grow: the
        // lighter is built, the other derived from it.
        self.parents = grown
            .into_iter()
            .filter(|g| g.both_children_grow)
            .filter_map(|g| kept.remove(&g.node).map(|h| (g.node, h)))
            .collect();
        Ok(())
    }

    /// Sets the root's gradient total, for growers fed by
    /// [`Self::grow_level`] rather than histograms.
    pub fn set_root_sum(&mut self, total: GradPair) {
        self.sums[0] = total;
    }

    /// The nodes of the level being grown.
    pub fn level(&self) -> &[u32] {
        &self.level
    }

    /// Whether the children of the level being grown can split in turn (they
    /// are above `max_depth`).
    pub fn children_can_split(&self) -> bool {
        self.depth + 1 < self.params.max_depth
    }

    /// Grows the next level, with `split_of(node, sum)` choosing each node's
    /// split (`None`: the node stays a leaf). Returns the nodes that split.
    pub fn grow_level(
        &mut self,
        mut split_of: impl FnMut(u32, GradPair) -> Option<Split>,
    ) -> Vec<GrownNode> {
        let mut grown = Vec::new();
        let mut next_level = Vec::new();
        let mut next_build = Vec::new();
        for node in std::mem::take(&mut self.level) {
            let sum = self.sums[node as usize];
            self.set_value(node, sum);
            let Some(split) = split_of(node, sum) else {
                continue;
            };
            let left = self.tree.nodes.len() as u32;
            let right = left + 1;
            for child_sum in [split.left, split.right] {
                self.tree.nodes.push(Node::leaf(node));
                self.sums.push(child_sum);
                let id = self.tree.nodes.len() - 1;
                let value =
                    self.params.eta * leaf_weight(self.quantiser, child_sum, self.params.lambda);
                self.tree.nodes[id].value = value;
                self.tree.nodes[id].hess = self.quantiser.hess(child_sum);
            }
            let n = &mut self.tree.nodes[node as usize];
            n.left = left;
            n.right = right;
            n.feature = split.feature as u32;
            n.bin = split.bin;
            n.default_left = split.default_left;
            n.split_value = self.cuts[split.feature][usize::from(split.bin) - 1];
            n.gain = split.gain;
            // A child lighter than 2 × min_child_weight cannot be split (both
            // of its children would need min_child_weight): it stays a leaf
            // and needs no histogram. Of two splittable siblings only the
            // lighter is built; the other is derived from the parent.
            let quantiser = self.quantiser;
            let min_weight = 2.0 * self.params.min_child_weight;
            let splittable = |s: GradPair| s.h >= 2 && quantiser.hess(s) >= min_weight;
            let (grow_left, grow_right) = (splittable(split.left), splittable(split.right));
            match (grow_left, grow_right) {
                (true, true) => {
                    next_level.extend([left, right]);
                    next_build.push(if split.right.h < split.left.h {
                        right
                    } else {
                        left
                    });
                }
                (true, false) => {
                    next_level.push(left);
                    next_build.push(left);
                }
                (false, true) => {
                    next_level.push(right);
                    next_build.push(right);
                }
                (false, false) => {}
            }
            grown.push(GrownNode {
                node,
                both_children_grow: grow_left && grow_right,
            });
        }
        self.level = next_level;
        self.build = next_build;
        self.depth += 1;
        self.shape.slots = self.build.len();
        grown
    }

    fn set_value(&mut self, node: u32, sum: GradPair) {
        let n = &mut self.tree.nodes[node as usize];
        n.value = self.params.eta * leaf_weight(self.quantiser, sum, self.params.lambda);
        n.hess = self.quantiser.hess(sum);
    }

    /// The finished tree.
    pub fn finish(self) -> Tree {
        self.tree
    }
}

impl Tree {
    /// The largest |output| of any leaf: how far this tree can move a margin.
    pub fn max_abs_leaf(&self) -> f64 {
        self.nodes
            .iter()
            .filter(|n| n.is_leaf())
            .map(|n| n.value.abs())
            .fold(0.0, f64::max)
    }
}
