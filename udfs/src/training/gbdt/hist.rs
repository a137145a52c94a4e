//! Gradient histograms: per node, per feature, per bin sums of gradient pairs.
//!
//! Layout: one flat vector per set of nodes, `[(slot · features + f) · stride +
//! bin]`, with the last bin of each feature (`stride − 1`) holding missing
//! values. [`accumulate_row_major`] adds one row of bins kept row by row (the
//! distributed trainer's kept rows); the tests' reference, `accumulate`,
//! visits selected rows feature by feature over bin columns. Sums are exact ([`super::grad`]), so histograms built on different
//! partitions merge by addition in any order.

use crate::training::error::{TrainError, TrainResult};
#[cfg(test)]
use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::grad::GradPair;

/// The slot of a row that belongs to no node being built.
pub const NO_SLOT: u32 = u32::MAX;

/// Shape of a histogram set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistShape {
    /// Nodes (slots) in the set.
    pub slots: usize,
    /// Features per node.
    pub features: usize,
    /// Bins per feature, missing included.
    pub stride: usize,
}

impl HistShape {
    /// Entries in the set.
    pub fn len(&self) -> usize {
        self.slots * self.features * self.stride
    }

    /// Entries per node.
    pub fn node_len(&self) -> usize {
        self.features * self.stride
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
/// Rows of a batch that belong to a node being built: their index in the
/// batch, their slot and their gradient, in row order.
#[derive(Debug, Default, Clone)]
pub struct SelectedRows {
    /// Row index in the batch.
    pub rows: Vec<u32>,
    /// Slot (node) of each selected row.
    pub slots: Vec<u32>,
    /// Gradient pair of each selected row.
    pub grads: Vec<GradPair>,
}

#[cfg(test)]
impl SelectedRows {
    /// Empties the selection, keeping its memory.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.slots.clear();
        self.grads.clear();
    }

    /// Selects row `row` into `slot` with gradient `grad`.
    #[inline]
    pub fn push(&mut self, row: usize, slot: u32, grad: GradPair) {
        self.rows.push(row as u32);
        self.slots.push(slot);
        self.grads.push(grad);
    }
}

#[cfg(test)]
/// Adds the selected rows into `hist`: row `rows[i]` goes to slot
/// `slots[i]` with bins `bins[f][rows[i]]` and gradient `grads[i]`.
/// Only rows of nodes being built are visited (no per-row branch on the
/// node), feature by feature, so each pass reads one bin column.
pub fn accumulate(
    hist: &mut [GradPair],
    shape: HistShape,
    selected: &SelectedRows,
    bins: &[&[u16]],
) {
    let missing = shape.stride - 1;
    for (f, column) in bins.iter().enumerate() {
        for ((row, slot), grad) in selected
            .rows
            .iter()
            .zip(&selected.slots)
            .zip(&selected.grads)
        {
            let bin = column[*row as usize];
            let b = if bin == MISSING_BIN {
                missing
            } else {
                usize::from(bin).min(missing - 1)
            };
            hist[(*slot as usize * shape.features + f) * shape.stride + b].add(*grad);
        }
    }
}

/// Adds one row's gradient pair to `hist` in slot `slot`, one bin per
/// feature (`bins[f]`, the row's bins feature by feature). A bin past the
/// last real one can only be [`MISSING_BIN`] (bins come from the run's cuts,
/// and rebuilt rows are checked), so clamping it into the last slot files
/// missing values there.
///
/// [`MISSING_BIN`]: crate::training::gbdt::cuts::MISSING_BIN
#[inline]
pub fn accumulate_row_major(
    hist: &mut [GradPair],
    shape: HistShape,
    slot: usize,
    bins: &[u16],
    grad: GradPair,
) {
    let missing = shape.stride - 1;
    let node = &mut hist[slot * shape.node_len()..(slot + 1) * shape.node_len()];
    for (stretch, bin) in node.chunks_exact_mut(shape.stride).zip(bins) {
        stretch[usize::from(*bin).min(missing)].add(grad);
    }
}

/// Adds `other` into `hist` entry by entry.
pub fn merge(hist: &mut [GradPair], other: &[GradPair]) {
    for (a, b) in hist.iter_mut().zip(other) {
        a.add(*b);
    }
}

/// Serialises a histogram set (little-endian `i64` pairs).
pub fn to_bytes(hist: &[GradPair]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hist.len() * 16);
    for p in hist {
        out.extend_from_slice(&p.g.to_le_bytes());
        out.extend_from_slice(&p.h.to_le_bytes());
    }
    out
}

/// Reads a histogram set of `len` entries written by [`to_bytes`].
pub fn from_bytes(function: &'static str, bytes: &[u8], len: usize) -> TrainResult<Vec<GradPair>> {
    if bytes.len() != len * 16 {
        return Err(TrainError::Message {
            function,
            reason: format!("histogram of {} bytes, expected {}", bytes.len(), len * 16),
        });
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|c| {
            let mut g = [0u8; 8];
            let mut h = [0u8; 8];
            g.copy_from_slice(&c[..8]);
            h.copy_from_slice(&c[8..]);
            GradPair {
                g: i64::from_le_bytes(g),
                h: i64::from_le_bytes(h),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_in_their_slot_feature_and_bin() {
        let shape = HistShape {
            slots: 2,
            features: 2,
            stride: 3,
        };
        let mut hist = vec![GradPair::default(); shape.len()];
        let g = |x: i64| GradPair { g: x, h: 1 };
        let mut selected = SelectedRows::default();
        selected.push(0, 0, g(5));
        selected.push(1, 1, g(7));
        accumulate(
            &mut hist,
            shape,
            &selected,
            &[&[0, 1, 1], &[MISSING_BIN, 0, 0]],
        );
        assert_eq!(hist[0], g(5)); // slot 0, f0, bin 0
        assert_eq!(hist[7], g(7)); // (slot 1 · 2 features + f0) · stride 3 + bin 1
        assert_eq!(hist[3 + 2], g(5)); // slot 0, f1, missing
        let back = from_bytes("t", &to_bytes(&hist), shape.len()).unwrap();
        assert_eq!(back, hist);
        assert!(from_bytes("t", &[0u8; 15], 1).is_err());
    }
}
