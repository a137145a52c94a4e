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
//! sorted by bin instead), and the non-empty bins go in ascending order to
//! the same [`SplitSearch`] histograms use. Gradients are
//! fixed-point integers ([`super::grad`]), so every sum is exact in any
//! order: the splits, and so the trees, are identical to histogram
//! training's (`rows_and_histograms_grow_identical_trees` checks it).

use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::grad::{GradPair, Quantiser};
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
        }
    }

    /// The best split of the node holding `rows` (indices into `grads` and
    /// the columns), whose gradients sum to `total`.
    pub fn best_split(
        &mut self,
        q: Quantiser,
        rows: &[u32],
        grads: &[GradPair],
        total: GradPair,
        params: &GbdtParams,
    ) -> Option<Split> {
        let mut search = SplitSearch::new(q, total, params);
        self.summed.clear();
        let bins = self.bins;
        self.summed.extend(
            (0..bins.len())
                .filter(|f| rows.len().saturating_mul(SORT_BELOW) >= self.n_cuts[*f])
                .map(|f| (f, bins[f])),
        );
        self.sum_by_bin(rows, grads);
        let mut next_summed = 0;
        for (feature, column) in bins.iter().enumerate() {
            let n_cuts = self.n_cuts[feature];
            if self
                .summed
                .get(next_summed)
                .is_some_and(|(f, _)| *f == feature)
            {
                next_summed += 1;
                let slots = &self.by_bin[feature * self.stride..(feature + 1) * self.stride];
                search.feature_dense(feature, &slots[..n_cuts], slots[self.stride - 1]);
                continue;
            }
            let missing = self.sum_by_sorting(column, n_cuts, rows, grads);
            search.feature_sparse(feature, n_cuts, &self.merged, missing);
        }
        for &(feature, _) in &self.summed {
            self.by_bin[feature * self.stride..(feature + 1) * self.stride]
                .fill(GradPair::default());
        }
        search.best()
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
