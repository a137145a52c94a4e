//! Gradient boosting in memory: a group's rows, trained by one thread.
//!
//! Used by the `train_gbdt` aggregate, where each group's rows fit in memory
//! and many groups train in parallel across partitions. The steps are the ones
//! the distributed trainer runs as queries (sketch → cuts → bins → per round:
//! gradients, levels of histograms, margin update), on the same types, so a
//! group trained here and the same rows trained by `ember train` give the same
//! trees.

use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::cuts::{MISSING_BIN, bin_of, cuts_from_sketch};
use crate::training::gbdt::grad::{
    GradPair, Quantiser, base_margin, base_score, check_label_range, gradient_bound,
};
#[cfg(test)]
use crate::training::gbdt::hist::{HistShape, NO_SLOT, SelectedRows, accumulate};
use crate::training::gbdt::model::GbdtModel;
use crate::training::gbdt::row_split::RowSplitter;
use crate::training::gbdt::sketch::{DEFAULT_CAPACITY, FeatureSketch};
use crate::training::gbdt::tree::{Grower, Tree, check_histogram_budget};
use crate::training::params::{GbdtParams, Objective};

/// Label statistics every trainer checks before it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LabelStats {
    /// Rows with a non-null label.
    pub count: u64,
    /// Σ label, in units of 2⁻³² (exact, so the mean is order-independent).
    /// `i128`: 2⁶³ units would be only 2³¹ labels of 1.
    pub sum: i128,
    /// Whether every label is 0 or 1.
    pub all_zero_or_one: bool,
    /// Smallest label.
    pub min: f64,
    /// Largest label.
    pub max: f64,
}

impl LabelStats {
    /// Stats of no rows.
    pub fn empty() -> Self {
        Self {
            count: 0,
            sum: 0,
            all_zero_or_one: true,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds a label (finite, checked by the caller).
    pub fn add(&mut self, y: f64) {
        self.count += 1;
        self.sum += (y * 4_294_967_296.0).round() as i128;
        self.all_zero_or_one &= y == 0.0 || y == 1.0;
        self.min = self.min.min(y);
        self.max = self.max.max(y);
    }

    /// Merges another partial.
    pub fn merge(&mut self, other: &LabelStats) {
        self.count += other.count;
        self.sum += other.sum;
        self.all_zero_or_one &= other.all_zero_or_one;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The mean label.
    pub fn mean(&self) -> f64 {
        self.sum as f64 / 4_294_967_296.0 / self.count.max(1) as f64
    }

    /// The objective to train: the one asked for, checked against the labels,
    /// or the default for them.
    pub fn objective(
        &self,
        function: &'static str,
        label: &str,
        asked: Option<Objective>,
    ) -> TrainResult<Objective> {
        if self.count == 0 {
            return Err(TrainError::NoRows {
                function,
                reason: format!("label '{label}' is null in every row"),
            });
        }
        let objective = asked.unwrap_or_else(|| Objective::for_label(self.all_zero_or_one));
        if objective == Objective::BinaryLogistic && !self.all_zero_or_one {
            return Err(TrainError::Label {
                function,
                label: label.to_string(),
                reason: "holds values other than 0 and 1; binary:logistic needs 0/1 labels".into(),
            });
        }
        Ok(objective)
    }
}

/// Checks one label value: finite and in range.
pub fn check_label(function: &'static str, label: &str, y: f64) -> TrainResult<()> {
    if y.is_nan() || y.is_infinite() {
        return Err(TrainError::Label {
            function,
            label: label.to_string(),
            reason: format!("holds {y}; labels must be finite numbers"),
        });
    }
    check_label_range(function, label, y)
}

/// Trains a model on rows in memory. `columns[f][r]` is feature `f` of row `r`
/// (NaN = missing); `labels` are finite and were checked with [`check_label`].
pub fn train_in_memory(
    function: &'static str,
    label_name: &str,
    params: &GbdtParams,
    columns: &[Vec<f64>],
    labels: &[f64],
    feature_names: &[String],
) -> TrainResult<GbdtModel> {
    let mut stats = LabelStats::empty();
    labels.iter().for_each(|y| stats.add(*y));
    let objective = stats.objective(function, label_name, params.objective)?;

    let cuts = cuts_of(columns, params.max_bins);
    check_histogram_budget(function, params, &cuts)?;
    let bins = binned(columns, &cuts);
    let bin_views: Vec<&[u16]> = bins.iter().map(Vec::as_slice).collect();

    let base = base_score(objective, stats.mean());
    let start = base_margin(objective, base);
    let mut margins = vec![start; labels.len()];
    let mut grads = vec![GradPair::default(); labels.len()];
    let mut drift = 0.0;
    let mut splitter = RowSplitter::new(&bin_views, &cuts);
    let mut node_rows = NodeRows::default();
    let mut trees = Vec::with_capacity(params.rounds);
    for _ in 0..params.rounds {
        let bound = gradient_bound(objective, stats.min, stats.max, start, drift);
        let quantiser = Quantiser::for_rows(function, stats.count, bound)?;
        for ((g, m), y) in grads.iter_mut().zip(&margins).zip(labels) {
            *g = quantiser.row_gradient(objective, *m, *y);
        }
        let tree = grow_tree_by_rows(
            &mut splitter,
            &mut node_rows,
            params,
            &cuts,
            quantiser,
            &grads,
            &bin_views,
        );
        drift += tree.max_abs_leaf();
        for (id, node) in tree.nodes.iter().enumerate() {
            if node.is_leaf() {
                for r in node_rows.of(id as u32) {
                    margins[*r as usize] += node.value;
                }
            }
        }
        trees.push(tree);
    }
    Ok(GbdtModel {
        objective,
        base_score: base,
        feature_names: feature_names.to_vec(),
        cuts,
        trees,
        params: params.clone(),
        rows: stats.count,
    })
}

/// Each column's cuts, from a sketch of all its values.
fn cuts_of(columns: &[Vec<f64>], max_bins: usize) -> Vec<Vec<f32>> {
    columns
        .iter()
        .map(|column| {
            let mut sketch = FeatureSketch::new(DEFAULT_CAPACITY);
            column.iter().for_each(|x| sketch.add(Some(*x)));
            cuts_from_sketch(&sketch, max_bins)
        })
        .collect()
}

/// Each column's values as bins of its cuts.
fn binned(columns: &[Vec<f64>], cuts: &[Vec<f32>]) -> Vec<Vec<u16>> {
    columns
        .iter()
        .zip(cuts)
        .map(|(column, c)| column.iter().map(|x| bin_of(c, *x)).collect())
        .collect()
}

/// The rows of each node of a tree being grown: one permutation of the rows,
/// each node owning a range of it, split in place when the node splits.
#[derive(Debug, Default)]
struct NodeRows {
    order: Vec<u32>,
    range: Vec<(usize, usize)>,
    /// The rows going right while a node is split.
    right: Vec<u32>,
}

impl NodeRows {
    /// Every row in the root.
    fn reset(&mut self, rows: usize) {
        self.order.clear();
        self.order.extend(0..rows as u32);
        self.range.clear();
        self.range.push((0, rows));
        self.right.resize(rows, 0);
    }

    fn of(&self, node: u32) -> &[u32] {
        let (start, end) = self.range[node as usize];
        &self.order[start..end]
    }

    /// Moves `node`'s rows going left (per `go_left`) before the others and
    /// gives the two parts to `left` and `right`.
    ///
    /// Each row is written to both sides and only the side it belongs to
    /// advances: a row's side is data the branch predictor cannot guess.
    /// Sums are exact in any order, so the order within a side is free.
    fn split(&mut self, node: u32, left: u32, right: u32, go_left: impl Fn(u32) -> bool) {
        let (start, end) = self.range[node as usize];
        let rows = &mut self.order[start..end];
        let (mut mid, mut n_right) = (0, 0);
        for i in 0..rows.len() {
            // `mid <= i`: the slot written was already read.
            let row = rows[i];
            let goes_left = go_left(row);
            rows[mid] = row;
            self.right[n_right] = row;
            mid += usize::from(goes_left);
            n_right += usize::from(!goes_left);
        }
        rows[mid..].copy_from_slice(&self.right[..n_right]);
        let needed = (left.max(right) as usize) + 1;
        if self.range.len() < needed {
            self.range.resize(needed, (0, 0));
        }
        self.range[left as usize] = (start, start + mid);
        self.range[right as usize] = (start + mid, end);
    }
}

/// One tree grown level by level from its nodes' rows ([`RowSplitter`]);
/// `rows` ends with each leaf's rows.
fn grow_tree_by_rows(
    splitter: &mut RowSplitter<'_>,
    rows: &mut NodeRows,
    params: &GbdtParams,
    cuts: &[Vec<f32>],
    quantiser: Quantiser,
    grads: &[GradPair],
    bins: &[&[u16]],
) -> Tree {
    let mut grower = Grower::new(params, cuts, quantiser);
    let mut total = GradPair::default();
    grads.iter().for_each(|g| total.add(*g));
    grower.set_root_sum(total);
    splitter.set_gradients(grads);
    rows.reset(grads.len());
    while grower.pending().is_some() {
        splitter.set_searched(grower.level(), grower.children_can_split());
        let grown = grower.grow_level(|node, sum| {
            splitter.best_split(quantiser, node, |n| rows.of(n), grads, sum, params)
        });
        let tree = grower.tree();
        for g in grown {
            let node = &tree.nodes[g.node as usize];
            let column = bins[node.feature as usize];
            // No branch on the row's side: it is data, not predictable.
            // A missing value's bin (`MISSING_BIN`, the largest) is never
            // below `node.bin`.
            rows.split(g.node, node.left, node.right, |r| {
                let bin = column[r as usize];
                (bin < node.bin) | ((bin == MISSING_BIN) & node.default_left)
            });
            splitter.children(g.node, node.left, node.right);
        }
    }
    grower.finish()
}

/// One tree grown from histograms of every row ([`Grower::apply`]), as the
/// distributed trainer grows it: the reference row-based growth must match.
#[cfg(test)]
fn grow_tree_by_histograms(
    params: &GbdtParams,
    cuts: &[Vec<f32>],
    quantiser: Quantiser,
    grads: &[GradPair],
    bins: &[&[u16]],
) -> TrainResult<Tree> {
    let mut selected = SelectedRows::default();
    let mut grower = Grower::new(params, cuts, quantiser);
    while let Some(build) = grower.pending() {
        let build = build.to_vec();
        let shape = HistShape {
            slots: build.len(),
            features: cuts.len(),
            stride: grower.stride(),
        };
        let tree = grower.tree();
        let mut slot_of_node = vec![NO_SLOT; tree.nodes.len()];
        for (slot, node) in build.iter().enumerate() {
            slot_of_node[*node as usize] = slot as u32;
        }
        selected.clear();
        for (r, grad) in grads.iter().enumerate() {
            let slot = slot_of_node[tree.leaf_of(|f| bins[f][r])];
            if slot != NO_SLOT {
                selected.push(r, slot, *grad);
            }
        }
        let mut hist = vec![GradPair::default(); shape.len()];
        accumulate(&mut hist, shape, &selected, bins);
        grower.apply(&hist)?;
    }
    Ok(grower.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows and histograms must grow the same trees: random data with
    /// missing values, duplicates and few distinct values, random gradients,
    /// and parameters that make children unsplittable or splits rare.
    #[test]
    fn rows_and_histograms_grow_identical_trees() {
        let mut seed = 29u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..24 {
            let rows = [1, 7, 60, 400, 1500][case % 5];
            let features = 1 + case % 4;
            let columns: Vec<Vec<f64>> = (0..features)
                .map(|f| {
                    (0..rows)
                        .map(|_| match f {
                            0 => (next() * 5.0).floor(),
                            _ if next() < 0.1 => f64::NAN,
                            _ => next() * 10.0 - 5.0,
                        })
                        .collect()
                })
                .collect();
            let params = GbdtParams {
                max_depth: [3, 6, 8][case % 3],
                max_bins: [256, 16, 64][case % 3],
                min_child_weight: [1.0, 0.0, 5.0, 0.5][case % 4],
                lambda: [1.0, 0.0][case % 2],
                ..GbdtParams::default()
            };
            let cuts = cuts_of(&columns, params.max_bins);
            let bins = binned(&columns, &cuts);
            let views: Vec<&[u16]> = bins.iter().map(Vec::as_slice).collect();
            let quantiser = Quantiser::for_rows("test", rows as u64, 1.0).unwrap();
            let grads: Vec<GradPair> = (0..rows)
                .map(|_| {
                    let margin = next() * 4.0 - 2.0;
                    let label = if next() < 0.5 { 0.0 } else { 1.0 };
                    quantiser.row_gradient(Objective::BinaryLogistic, margin, label)
                })
                .collect();
            let mut splitter = RowSplitter::new(&views, &cuts);
            let mut node_rows = NodeRows::default();
            let mut grow = |node_rows: &mut NodeRows, grads: &[GradPair]| {
                grow_tree_by_rows(
                    &mut splitter,
                    node_rows,
                    &params,
                    &cuts,
                    quantiser,
                    grads,
                    &views,
                )
            };
            let by_rows = grow(&mut node_rows, &grads);
            // Every row ends in the leaf the tree sends it to (`r` indexes
            // every feature's column).
            #[allow(clippy::needless_range_loop)]
            for r in 0..grads.len() {
                let leaf = by_rows.leaf_of(|f| views[f][r]);
                assert!(
                    node_rows.of(leaf as u32).contains(&(r as u32)),
                    "case {case} row {r}"
                );
            }
            let by_histograms =
                grow_tree_by_histograms(&params, &cuts, quantiser, &grads, &views).unwrap();
            assert_eq!(by_rows, by_histograms, "case {case}");
            if rows >= 400 {
                assert!(by_rows.nodes.len() > 7, "case {case}: a real tree");
            }
            // A second tree from the same splitter, whose tables come back
            // from the first tree zeroed, with other gradients.
            // (Not from `next`, which would change the later cases' data.)
            let grads: Vec<GradPair> = (0..rows)
                .map(|r| {
                    let margin = ((r * 7919 + case) % 101) as f64 / 25.0 - 2.0;
                    let label = if (r * 31 + case) % 3 == 0 { 0.0 } else { 1.0 };
                    quantiser.row_gradient(Objective::BinaryLogistic, margin, label)
                })
                .collect();
            let second = grow(&mut node_rows, &grads);
            let by_histograms =
                grow_tree_by_histograms(&params, &cuts, quantiser, &grads, &views).unwrap();
            assert_eq!(second, by_histograms, "case {case}, second tree");
        }
    }
}
