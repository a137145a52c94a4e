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
//! Here each node keeps the list of its rows. For each feature, the node's
//! rows are summed by bin in one small buffer that stays in cache (or, for a
//! node with few rows, sorted by bin), and the non-empty bins go in ascending
//! order to the same [`SplitSearch`] histograms use. Gradients are
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
    by_bin: Vec<GradPair>,
    sorted: Vec<(u16, GradPair)>,
    merged: Vec<(usize, GradPair)>,
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
            by_bin: vec![GradPair::default(); widest + 1],
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
        for (feature, column) in self.bins.iter().enumerate() {
            let n_cuts = self.n_cuts[feature];
            let mut missing = GradPair::default();
            if rows.len().saturating_mul(SORT_BELOW) < n_cuts {
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
                        Some((last, sum)) if *last == usize::from(bin) => sum.add(grad),
                        _ => self.merged.push((usize::from(bin), grad)),
                    }
                }
                // A bin whose rows sum to zero is empty to a histogram.
                let present = self
                    .merged
                    .iter()
                    .copied()
                    .filter(|(_, sum)| *sum != GradPair::default());
                search.feature(feature, n_cuts, present, missing);
            } else {
                for &r in rows {
                    let (bin, grad) = (column[r as usize], grads[r as usize]);
                    if bin == MISSING_BIN {
                        missing.add(grad);
                    } else {
                        self.by_bin[usize::from(bin)].add(grad);
                    }
                }
                let present = self.by_bin[..n_cuts]
                    .iter()
                    .enumerate()
                    .filter(|(_, sum)| **sum != GradPair::default())
                    .map(|(bin, sum)| (bin, *sum));
                search.feature(feature, n_cuts, present, missing);
                self.by_bin[..=n_cuts].fill(GradPair::default());
            }
        }
        search.best()
    }
}
