//! Split search from a node's rows, for training in memory (`train_gbdt` per
//! group, and any model trained in one process).
//!
//! Histogram training ([`super::hist`], [`super::tree::Grower::apply`]) gives
//! every node a `features × bins` table of gradient sums: the form partitions
//! merge on a cluster. In one process, on a group of 1,000 rows with 10
//! features and 256 bins, most of a deep node's table is empty, yet it was
//! allocated, zeroed, copied for sibling subtraction and scanned: memory
//! traffic, not arithmetic, dominated per-group training.
//!
//! Here each node keeps the list of its rows. The node's rows are summed by
//! bin in one buffer of `features × bins` slots that stays in cache, in one
//! pass over the rows that reads each row's gradient once for all features
//! (or, for a feature with far more bins than the node has rows, the rows are
//! sorted by bin instead), and the bins go in ascending order to the same
//! [`SplitSearch`] histograms use. Gradients are fixed-point integers
//! ([`super::grad`]), so every sum is exact in any order: the splits, and so
//! the trees, are identical to histogram training's
//! (`rows_and_histograms_grow_identical_trees` checks it).
//!
//! When a round's gradients are small enough that every sum of them is an
//! integer below 2⁵³ (a group of up to several thousand rows), dense nodes
//! are summed and scanned in `f64` instead: the same exact values, and the
//! same comparisons, without converting four integers to floats at every
//! cut of the scan, the hot loop of per-group training. Those `f64` tables
//! hold each feature's running sums over its bins, which is what the scan
//! reads, and are kept per node ([`super::node_sums`]) so that of two
//! siblings only the one with fewer rows is summed from its rows (and
//! accumulated) and the other is its parent's table minus it, exact for the
//! same reason; the scan itself runs eight cuts at a time where the CPU has
//! AVX-512, four with AVX2 ([`super::exact_scan`]).

use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::exact_scan::accumulate;
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::node_sums::{NodeSums, Sums};
use crate::training::gbdt::split::{Split, SplitSearch};
use crate::training::params::GbdtParams;

/// A node with fewer rows than `cuts / SORT_BELOW` sorts its rows by bin
/// instead of summing them in the per-feature buffer, whose scan would visit
/// mostly empty bins.
const SORT_BELOW: usize = 8;

/// Finds nodes' best splits from their rows; holds reusable buffers.
#[derive(Debug)]
pub struct RowSplitter<'a> {
    bins: &'a [&'a [u16]],
    n_cuts: Vec<usize>,
    /// Per feature, `stride` slots: the sums of bins `0..=n_cuts`, and in
    /// the last slot the sum of rows missing the feature.
    by_bin: Vec<GradPair>,
    stride: usize,
    /// The features the current node sums in `by_bin` (the others it
    /// sorts), with their columns.
    summed: Vec<(usize, &'a [u16])>,
    sorted: Vec<(u16, GradPair)>,
    merged: Vec<(u16, GradPair)>,
    /// The round's gradients as floats, when every sum of them is exact in
    /// `f64` ([`Self::set_gradients`]); empty otherwise.
    float_grads: Vec<[f64; 2]>,
    /// Per-node tables like `by_bin` in floats, but of running sums over
    /// each feature's bins (the missing values' slot stays a plain sum), for
    /// rounds with `float_grads`, kept for sibling subtraction ([`NodeSums`]).
    node_sums: NodeSums,
    /// Whether the children of the nodes searched now can split.
    children_can_split: bool,
    /// The features (with their columns) a table is summed for.
    sum_features: Vec<(usize, &'a [u16])>,
    /// One feature's float sums back as integers, for the scan with missing values.
    exact_bins: Vec<GradPair>,
}

impl<'a> RowSplitter<'a> {
    /// A splitter over binned columns (`bins[feature][row]`, [`MISSING_BIN`]
    /// for a missing value) whose features have the given cuts.
    pub fn new(bins: &'a [&'a [u16]], cuts: &[Vec<f32>]) -> Self {
        let n_cuts: Vec<usize> = cuts.iter().map(Vec::len).collect();
        let widest = n_cuts.iter().copied().max().unwrap_or(0);
        Self {
            bins,
            n_cuts,
            // One slot per bin `0..=widest` and one for missing values.
            stride: widest + 2,
            by_bin: vec![GradPair::default(); (widest + 2) * bins.len()],
            summed: Vec::new(),
            sorted: Vec::new(),
            merged: Vec::new(),
            float_grads: Vec::new(),
            node_sums: NodeSums::new(bins.len(), widest + 2),
            children_can_split: true,
            sum_features: Vec::new(),
            exact_bins: Vec::new(),
        }
    }

    /// Takes a round's row gradients. When the absolute gradients and the
    /// Hessians each sum below 2⁵³ — a group of up to a few thousand rows
    /// at the finest scale — every sum of any of them is an integer an `f64`
    /// holds exactly, so dense nodes are summed and scanned in floats: the
    /// scan then converts nothing and compares exactly what the integer scan
    /// compares (`SplitSearch::feature_dense_exact`).
    pub fn set_gradients(&mut self, grads: &[GradPair]) {
        const EXACT: u64 = 1 << 53;
        let (mut g, mut h) = (0u64, 0u64);
        for pair in grads {
            g = g.saturating_add(pair.g.unsigned_abs());
            h = h.saturating_add(pair.h.unsigned_abs());
        }
        self.float_grads.clear();
        self.node_sums.reset();
        if g < EXACT && h < EXACT {
            self.float_grads
                .extend(grads.iter().map(|p| [p.g as f64, p.h as f64]));
        }
    }

    /// Names the nodes whose splits the next level searches (the grower's
    /// level), so that a node's sibling's sums are derived only if needed,
    /// and whether their children can split (if not, no table is kept for
    /// them).
    pub fn set_searched(&mut self, level: &[u32], children_can_split: bool) {
        self.node_sums.set_searched(level);
        self.children_can_split = children_can_split;
    }

    /// Records that `parent` split into `left` and `right`.
    pub fn children(&mut self, parent: u32, left: u32, right: u32) {
        self.node_sums.children(parent, left, right);
    }

    /// The best split of `node`, whose rows are `rows_of(node)` (indices
    /// into `grads` and the columns) and whose gradients sum to `total`.
    /// `rows_of` also gives the rows of the node's sibling, whose sums may be
    /// derived alongside (see [`NodeSums`]).
    pub fn best_split<'r>(
        &mut self,
        q: Quantiser,
        node: u32,
        rows_of: impl Fn(u32) -> &'r [u32],
        grads: &[GradPair],
        total: GradPair,
        params: &GbdtParams,
    ) -> Option<Split> {
        let rows = rows_of(node);
        let mut search = SplitSearch::new(q, total, params);
        self.summed.clear();
        let bins = self.bins;
        self.summed.extend(
            (0..bins.len())
                .filter(|f| rows.len().saturating_mul(SORT_BELOW) >= self.n_cuts[*f])
                .map(|f| (f, bins[f])),
        );
        let floats = !self.float_grads.is_empty();
        let sums = if floats {
            self.float_sums(node, rows, &rows_of)
        } else {
            self.sum_by_bin(rows, grads);
            None
        };
        let mut next_summed = 0;
        for (feature, column) in bins.iter().enumerate() {
            let n_cuts = self.n_cuts[feature];
            if self
                .summed
                .get(next_summed)
                .is_some_and(|(f, _)| *f == feature)
            {
                next_summed += 1;
                match &sums {
                    Some(sums) => self.scan_float_sums(&mut search, feature, n_cuts, sums),
                    None => {
                        let range = feature * self.stride..(feature + 1) * self.stride;
                        let slots = &self.by_bin[range];
                        search.feature_dense(feature, &slots[..n_cuts], slots[self.stride - 1]);
                    }
                }
                continue;
            }
            let missing = self.sum_by_sorting(column, n_cuts, rows, grads);
            search.feature_sparse(feature, n_cuts, &self.merged, missing);
        }
        if !floats {
            for &(feature, _) in &self.summed {
                let range = feature * self.stride..(feature + 1) * self.stride;
                self.by_bin[range].fill(GradPair::default());
            }
        }
        let split = search.best();
        if let Some(sums) = sums {
            // A node that splits passes its sums on to its children, if
            // they are searched in turn.
            if split.is_some() && self.children_can_split {
                self.node_sums.keep(node, sums);
            } else {
                self.node_sums.recycle(sums);
            }
        }
        split
    }

    /// `node`'s float sums for (at least) its dense features, or `None` when
    /// it has none: kept from when its sibling was searched, or its parent's
    /// minus its sibling's when the sibling has fewer rows, or summed from its
    /// rows. When the node has fewer rows and its sibling is searched at this
    /// level too, the sibling's sums are derived now and kept.
    fn float_sums<'r>(
        &mut self,
        node: u32,
        rows: &[u32],
        rows_of: &impl Fn(u32) -> &'r [u32],
    ) -> Option<Sums> {
        if let Some(sums) = self.node_sums.take(node) {
            return Some(sums);
        }
        let from_parent = self
            .node_sums
            .family(node)
            .and_then(|(parent, sibling)| Some((self.node_sums.take(parent)?, sibling)));
        let Some((mut parent_sums, sibling)) = from_parent else {
            return self.sums_of_rows(rows, rows.len());
        };
        let sibling_rows = rows_of(sibling);
        let sibling_searched = self.node_sums.is_searched(sibling);
        if sibling_rows.len() < rows.len() {
            // This node is the larger: parent − sibling.
            let Some(sibling_sums) = self.sums_of_rows(sibling_rows, rows.len()) else {
                self.node_sums.recycle(parent_sums);
                return None;
            };
            self.node_sums.subtract(&mut parent_sums, &sibling_sums);
            if sibling_searched {
                self.node_sums.keep(sibling, sibling_sums);
            } else {
                self.node_sums.recycle(sibling_sums);
            }
            return Some(parent_sums);
        }
        // This node is the smaller (or as large): summed from its rows, and
        // the sibling, if it is searched, gets parent − this node.
        let dense_for = if sibling_searched {
            sibling_rows.len()
        } else {
            rows.len()
        };
        let Some(sums) = self.sums_of_rows(rows, dense_for) else {
            self.node_sums.recycle(parent_sums);
            return None;
        };
        if sibling_searched {
            self.node_sums.subtract(&mut parent_sums, &sums);
            self.node_sums.keep(sibling, parent_sums);
        } else {
            self.node_sums.recycle(parent_sums);
        }
        Some(sums)
    }

    /// A table holding the sums of `rows` for every feature a node of
    /// `dense_rows` rows sums densely, or `None` if there are none.
    fn sums_of_rows(&mut self, rows: &[u32], dense_rows: usize) -> Option<Sums> {
        let bins = self.bins;
        self.sum_features.clear();
        self.sum_features.extend(
            (0..bins.len())
                .filter(|f| dense_rows.saturating_mul(SORT_BELOW) >= self.n_cuts[*f])
                .map(|f| (f, bins[f])),
        );
        if self.sum_features.is_empty() {
            return None;
        }
        let mut sums = self.node_sums.zeroed();
        sums.fill(self.sum_features.iter().map(|(f, _)| *f));
        self.sum_by_bin_in_floats(rows, &mut sums);
        // The scan reads running sums (every slot but the missing values').
        for &(feature, _) in &self.sum_features {
            let start = feature * self.stride;
            accumulate(&mut sums.slots[start..start + self.stride - 1]);
        }
        Some(sums)
    }

    /// Adds each row's gradient to its bin's slot of every summed feature,
    /// reading the gradient once per row. A missing value's bin,
    /// [`MISSING_BIN`], clamps to the feature's last slot (bins never exceed
    /// `stride - 2`).
    fn sum_by_bin(&mut self, rows: &[u32], grads: &[GradPair]) {
        let (stride, last) = (self.stride, (self.stride - 1) as u16);
        for &r in rows {
            let grad = grads[r as usize];
            for &(feature, column) in &self.summed {
                let slot = usize::from(column[r as usize].min(last));
                self.by_bin[feature * stride + slot].add(grad);
            }
        }
    }

    /// Scans a dense feature from a node's float sums.
    fn scan_float_sums(
        &mut self,
        search: &mut SplitSearch<'_>,
        feature: usize,
        n_cuts: usize,
        sums: &Sums,
    ) {
        let slots = &sums.slots[feature * self.stride..(feature + 1) * self.stride];
        let [missing_g, missing_h] = slots[self.stride - 1];
        if missing_g == 0.0 && missing_h == 0.0 {
            search.feature_dense_exact(feature, &slots[..n_cuts]);
            return;
        }
        // Some rows miss the feature: the integer scan tries them on both
        // sides, over the bins (differences of running sums, exact).
        let exact = |[g, h]: [f64; 2]| GradPair {
            g: g as i64,
            h: h as i64,
        };
        self.exact_bins.clear();
        let mut before = [0.0, 0.0];
        for &[g, h] in &slots[..n_cuts] {
            self.exact_bins.push(exact([g - before[0], h - before[1]]));
            before = [g, h];
        }
        search.feature_dense(feature, &self.exact_bins, exact(slots[self.stride - 1]));
    }

    /// [`Self::sum_by_bin`] in floats, from `float_grads` into `sums` for the
    /// features of `sum_features` (exact: see [`Self::set_gradients`]).
    fn sum_by_bin_in_floats(&self, rows: &[u32], sums: &mut Sums) {
        let (stride, last) = (self.stride, (self.stride - 1) as u16);
        let slots = &mut sums.slots;
        for &r in rows {
            let [g, h] = self.float_grads[r as usize];
            for &(feature, column) in &self.sum_features {
                let slot = usize::from(column[r as usize].min(last));
                let sum = &mut slots[feature * stride + slot];
                sum[0] += g;
                sum[1] += h;
            }
        }
    }

    /// Sums `rows` of one feature by sorting them by bin, for a feature with
    /// far more bins than the node has rows: leaves the non-empty bins below
    /// `n_cuts` in `merged`, ascending, and returns the sum of rows missing
    /// the feature.
    fn sum_by_sorting(
        &mut self,
        column: &[u16],
        n_cuts: usize,
        rows: &[u32],
        grads: &[GradPair],
    ) -> GradPair {
        let mut missing = GradPair::default();
        self.sorted.clear();
        for &r in rows {
            let (bin, grad) = (column[r as usize], grads[r as usize]);
            if bin == MISSING_BIN {
                missing.add(grad);
            } else {
                self.sorted.push((bin, grad));
            }
        }
        self.sorted.sort_unstable_by_key(|(bin, _)| *bin);
        self.merged.clear();
        for &(bin, grad) in &self.sorted {
            match self.merged.last_mut() {
                Some((last, sum)) if *last == bin => sum.add(grad),
                _ => self.merged.push((bin, grad)),
            }
        }
        // A bin whose rows sum to zero is empty to a histogram.
        self.merged
            .retain(|(bin, sum)| usize::from(*bin) < n_cuts && *sum != GradPair::default());
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quantiser = Quantiser { scale_log2: 40 };

    #[test]
    fn a_child_exactly_at_min_child_weight_is_allowed_in_floats_and_integers() {
        let params = GbdtParams {
            min_child_weight: 1.0,
            ..GbdtParams::default()
        };
        let cuts = vec![vec![1.0f32]];
        let pair = |g: f64| GradPair {
            g: Q.quantise(g),
            h: Q.quantise(1.0),
        };
        // The light child (Hessian exactly 1) on the left, then on the right.
        for column in [vec![0u16, 1, 1, 1], vec![0, 0, 0, 1]] {
            let grads: Vec<GradPair> = column
                .iter()
                .map(|b| pair(if *b == 0 { -1.0 } else { 1.0 }))
                .collect();
            let mut total = GradPair::default();
            grads.iter().for_each(|g| total.add(*g));
            let views = [column.as_slice()];
            let mut splitter = RowSplitter::new(&views, &cuts);
            for floats in [true, false] {
                splitter.set_gradients(&grads);
                if !floats {
                    splitter.float_grads.clear();
                }
                assert_eq!(splitter.float_grads.is_empty(), !floats);
                let split = splitter
                    .best_split(Q, 0, |_| &[0, 1, 2, 3][..], &grads, total, &params)
                    .expect("a split");
                assert_eq!(split.bin, 1, "{column:?} floats {floats}");
            }
        }
    }
}
