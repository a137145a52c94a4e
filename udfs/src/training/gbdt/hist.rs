//! Gradient histograms: per node, per feature, per bin sums of gradient pairs.
//!
//! Layout: one flat vector per set of nodes, `[(slot · features + f) · stride +
//! bin]`, with the last bin of each feature (`stride − 1`) holding missing
//! values. Rows are visited feature by feature so each pass streams one bin
//! column. Sums are exact ([`super::grad`]), so histograms built on different
//! partitions merge by addition in any order.

use crate::training::error::{TrainError, TrainResult};
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

/// Adds rows into `hist`: row `r` goes to slot `slots[r]` (or nowhere if
/// [`NO_SLOT`]), with bins `bins[f][r]` and gradient `grads[r]`.
pub fn accumulate(hist: &mut [GradPair], shape: HistShape, slots: &[u32], bins: &[&[u16]], grads: &[GradPair]) {
    let missing = shape.stride - 1;
    for (f, column) in bins.iter().enumerate() {
        for ((slot, bin), grad) in slots.iter().zip(column.iter()).zip(grads) {
            if *slot == NO_SLOT {
                continue;
            }
            let b = if *bin == MISSING_BIN { missing } else { usize::from(*bin).min(missing - 1) };
            hist[(*slot as usize * shape.features + f) * shape.stride + b].add(*grad);
        }
    }
}

/// Adds `other` into `hist` entry by entry.
pub fn merge(hist: &mut [GradPair], other: &[GradPair]) {
    for (a, b) in hist.iter_mut().zip(other) {
        a.add(*b);
    }
}

/// Serialises a histogram set (little-endian `i128` pairs).
pub fn to_bytes(hist: &[GradPair]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hist.len() * 32);
    for p in hist {
        out.extend_from_slice(&p.g.to_le_bytes());
        out.extend_from_slice(&p.h.to_le_bytes());
    }
    out
}

/// Reads a histogram set of `len` entries written by [`to_bytes`].
pub fn from_bytes(function: &'static str, bytes: &[u8], len: usize) -> TrainResult<Vec<GradPair>> {
    if bytes.len() != len * 32 {
        return Err(TrainError::Message {
            function,
            reason: format!("histogram of {} bytes, expected {}", bytes.len(), len * 32),
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut g = [0u8; 16];
            let mut h = [0u8; 16];
            g.copy_from_slice(&c[..16]);
            h.copy_from_slice(&c[16..]);
            GradPair { g: i128::from_le_bytes(g), h: i128::from_le_bytes(h) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_in_their_slot_feature_and_bin() {
        let shape = HistShape { slots: 2, features: 2, stride: 3 };
        let mut hist = vec![GradPair::default(); shape.len()];
        let g = |x: i128| GradPair { g: x, h: 1 };
        accumulate(&mut hist, shape, &[0, 1, NO_SLOT], &[&[0, 1, 1], &[MISSING_BIN, 0, 0]], &[g(5), g(7), g(100)]);
        assert_eq!(hist[0], g(5)); // slot 0, f0, bin 0
        assert_eq!(hist[7], g(7)); // (slot 1 · 2 features + f0) · stride 3 + bin 1
        assert_eq!(hist[3 + 2], g(5)); // slot 0, f1, missing
        let back = from_bytes("t", &to_bytes(&hist), shape.len()).unwrap();
        assert_eq!(back, hist);
        assert!(from_bytes("t", &[0u8; 31], 1).is_err());
    }
}
