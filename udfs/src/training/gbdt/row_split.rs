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
//! cut of the scan, the hot loop of per-group training.

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
    /// The round's gradients as floats, when every sum of them is exact in
    /// `f64` ([`Self::set_gradients`]); empty otherwise.
    float_grads: Vec<[f64; 2]>,
    /// `by_bin` in floats, for rounds with `float_grads`.
    float_by_bin: Vec<[f64; 2]>,
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
            float_by_bin: vec![[0.0; 2]; (widest + 2) * bins.len()],
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
        if g < EXACT && h < EXACT {
            self.float_grads
                .extend(grads.iter().map(|p| [p.g as f64, p.h as f64]));
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
        let floats = !self.float_grads.is_empty();
        if floats {
            self.sum_by_bin_in_floats(rows);
        } else {
            self.sum_by_bin(rows, grads);
        }
        let mut next_summed = 0;
        for (feature, column) in bins.iter().enumerate() {
            let n_cuts = self.n_cuts[feature];
            if self
                .summed
                .get(next_summed)
                .is_some_and(|(f, _)| *f == feature)
            {
                next_summed += 1;
                self.scan_summed(&mut search, feature, n_cuts, floats);
                continue;
            }
            let missing = self.sum_by_sorting(column, n_cuts, rows, grads);
            search.feature_sparse(feature, n_cuts, &self.merged, missing);
        }
        for &(feature, _) in &self.summed {
            let range = feature * self.stride..(feature + 1) * self.stride;
            if floats {
                self.float_by_bin[range].fill([0.0; 2]);
            } else {
                self.by_bin[range].fill(GradPair::default());
            }
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

    /// Scans a feature summed in `by_bin` (or `float_by_bin`, with `floats`).
    fn scan_summed(
        &mut self,
        search: &mut SplitSearch<'_>,
        feature: usize,
        n_cuts: usize,
        floats: bool,
    ) {
        let range = feature * self.stride..(feature + 1) * self.stride;
        if !floats {
            let slots = &self.by_bin[range];
            search.feature_dense(feature, &slots[..n_cuts], slots[self.stride - 1]);
            return;
        }
        let slots = &self.float_by_bin[range];
        let [missing_g, missing_h] = slots[self.stride - 1];
        if missing_g == 0.0 && missing_h == 0.0 {
            search.feature_dense_exact(feature, &slots[..n_cuts]);
            return;
        }
        // Some rows miss the feature: the integer scan tries them on both sides.
        let exact = |[g, h]: [f64; 2]| GradPair {
            g: g as i64,
            h: h as i64,
        };
        self.exact_bins.clear();
        self.exact_bins
            .extend(slots[..n_cuts].iter().map(|pair| exact(*pair)));
        search.feature_dense(feature, &self.exact_bins, exact(slots[self.stride - 1]));
    }

    /// [`Self::sum_by_bin`] in floats, from `float_grads` into
    /// `float_by_bin` (exact: see [`Self::set_gradients`]).
    fn sum_by_bin_in_floats(&mut self, rows: &[u32]) {
        let (stride, last) = (self.stride, (self.stride - 1) as u16);
        for &r in rows {
            let [g, h] = self.float_grads[r as usize];
            for &(feature, column) in &self.summed {
                let slot = usize::from(column[r as usize].min(last));
                let sum = &mut self.float_by_bin[feature * stride + slot];
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
                    .best_split(Q, &[0, 1, 2, 3], &grads, total, &params)
                    .expect("a split");
                assert_eq!(split.bin, 1, "{column:?} floats {floats}");
            }
        }
    }
}
