//! XGBoost trees walked eight rows at a time with AVX2 gathers.
//!
//! The scalar walk ([`super::trees`]) spends most of its time waiting on
//! loads: each step reads a node, then the row's value of the node's feature,
//! then picks a child. With AVX2, one instruction gathers the eight rows'
//! nodes, one their feature values, and the comparison and the choice of
//! child are a handful of vector operations, so a step costs about as much
//! for eight rows as the scalar step did for two or three.
//!
//! The walk is exactly XGBoost's (and the scalar walk's): features and
//! thresholds are `f32`, a row goes left when `value < threshold` (an ordered
//! comparison, false for NaN), and a NaN value follows the node's default
//! direction. Leaf values are gathered and returned in row order; the caller
//! adds them to the margins in tree order, as before.
//!
//! Each node is packed into one 32-bit word next to its threshold:
//! the feature in the low 16 bits, then the default-left and leaf flags, then
//! the offset from the node to its left child (the right child follows it).
//! A leaf has offset 0 and its flag keeps the row there, so every tree is
//! walked a fixed number of steps (its depth). Models with categorical splits,
//! more than 2^16 features, or any tree whose child offsets do not fit (over
//! 16,383 nodes) leave this walk out for the whole model: their trees that the
//! level layout does not take walk scalar.

use crate::cpu::avx2_available;

/// Bits of a node word (both walks): the feature index, then the default-left flag.
pub(crate) const FEATURE_BITS: u32 = 16;
pub(crate) const DEFAULT_LEFT: i32 = 1 << FEATURE_BITS;
const LEAF: i32 = 1 << (FEATURE_BITS + 1);
/// The left child's offset from its parent starts at this bit.
const OFFSET_SHIFT: i32 = FEATURE_BITS as i32 + 2;
/// The largest child offset a packed node holds.
const MAX_OFFSET: usize = (1 << (32 - OFFSET_SHIFT)) - 1;

/// Rows in one vector.
pub(crate) const VECTOR_ROWS: usize = 8;
/// Vectors walked together (their gathers overlap).
pub(crate) const VECTORS: usize = 4;

/// One node as the scalar layout describes it.
pub(crate) struct NodeView {
    pub feature: usize,
    pub default_left: bool,
    pub leaf: bool,
    /// Index of the left child (the right child is the next node); unused for a leaf.
    pub left: usize,
}

/// The packed nodes of a model, in the scalar layout's node order.
#[derive(Debug)]
pub(crate) struct PackedNodes {
    words: Vec<i32>,
    /// The number of features the nodes read (one more than the largest index).
    features: usize,
}

impl PackedNodes {
    /// Packs `nodes` (each node's index is its position), or `None` when the
    /// model cannot use the vector walk: AVX2 is missing, or a feature index
    /// or child offset does not fit.
    pub(crate) fn build(nodes: impl ExactSizeIterator<Item = NodeView>) -> Option<PackedNodes> {
        if !avx2_available() || nodes.len() > i32::MAX as usize {
            return None;
        }
        let count = nodes.len();
        let mut words = Vec::with_capacity(count);
        let mut features = 0;
        for (index, node) in nodes.enumerate() {
            if node.leaf {
                words.push(LEAF);
                continue;
            }
            if node.feature >= 1 << FEATURE_BITS {
                return None;
            }
            let offset = node.left.checked_sub(index).filter(|o| *o <= MAX_OFFSET)?;
            if node.left + 1 >= count {
                return None;
            }
            features = features.max(node.feature + 1);
            let mut word = node.feature as i32 | ((offset as i32) << OFFSET_SHIFT);
            if node.default_left {
                word |= DEFAULT_LEFT;
            }
            words.push(word);
        }
        Some(PackedNodes { words, features })
    }

    /// Leaf values of one tree for `VECTORS * VECTOR_ROWS` consecutive rows of
    /// a row-major `block` (`width` values per row) starting at `first`.
    ///
    /// `thresholds` holds each node's threshold, or its value for a leaf, in
    /// the same order as the packed nodes; `root` and `depth` are the tree's.
    /// The caller guarantees what the scalar walk relies on: `root` is a node
    /// of a tree whose splits point at children inside the same vectors and
    /// whose features are below `width`, `depth` steps from the root reach
    /// its leaves, and the block holds the rows.
    #[inline]
    pub(crate) fn leaves(
        &self,
        thresholds: &[f32],
        root: u32,
        depth: u32,
        block: &[f32],
        width: usize,
        first: usize,
    ) -> [f32; VECTORS * VECTOR_ROWS] {
        let rows = VECTORS * VECTOR_ROWS;
        let fits = thresholds.len() == self.words.len()
            && (root as usize) < self.words.len()
            && self.features <= width
            && (first + rows) * width <= block.len()
            && block.len() <= i32::MAX as usize;
        if !fits {
            // Unreachable through the ensemble, which builds both layouts
            // from the same nodes; a wrong call must not read out of bounds.
            return [f32::NAN; VECTORS * VECTOR_ROWS];
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `build` returned `Some` only after detecting AVX2, and
            // every gather index stays in bounds: from a node, a step moves
            // to the node itself (a leaf) or to one of two children that
            // `build` checked are inside the nodes, feature indices are below
            // `width`, and the rows `first..first + rows` lie in `block`
            // (both checked above).
            unsafe { avx2::leaves(&self.words, thresholds, root, depth, block, width, first) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (depth, root);
            [f32::NAN; VECTORS * VECTOR_ROWS]
        }
    }
}

/// The AVX2 pieces both walks share, and the packed walk itself.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{DEFAULT_LEFT, FEATURE_BITS, LEAF, OFFSET_SHIFT, VECTOR_ROWS, VECTORS};

    /// For each vector, the block offsets of its eight rows' first values
    /// (rows `first..first + VECTORS * VECTOR_ROWS`, `width` values a row).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn row_starts(first: usize, width: usize) -> [__m256i; VECTORS] {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let width = _mm256_set1_epi32(width as i32);
        std::array::from_fn(|v| {
            let base = _mm256_set1_epi32((first + v * VECTOR_ROWS) as i32);
            _mm256_mullo_epi32(_mm256_add_epi32(base, lane), width)
        })
    }

    /// The feature index in the low bits of each lane's node word.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn features(word: __m256i) -> __m256i {
        _mm256_and_si256(word, _mm256_set1_epi32((1 << FEATURE_BITS) - 1))
    }

    /// 1 in each lane whose row goes right, 0 where it goes left: left when
    /// `value < threshold` (false for NaN), or when the value is NaN and the
    /// node's word has the default-left bit.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn right_steps(value: __m256, threshold: __m256, word: __m256i) -> __m256i {
        let default_left = _mm256_set1_epi32(DEFAULT_LEFT);
        let less = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(value, threshold));
        let missing = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(value, value));
        let default_is_left =
            _mm256_cmpeq_epi32(_mm256_and_si256(word, default_left), default_left);
        let left = _mm256_or_si256(less, _mm256_and_si256(missing, default_is_left));
        _mm256_andnot_si256(left, _mm256_set1_epi32(1))
    }

    /// `values[at]` for every lane of every vector, in row order.
    ///
    /// # Safety
    /// Every lane's index must be in bounds of `values`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn gather_rows(
        values: *const f32,
        at: &[__m256i; VECTORS],
    ) -> [f32; VECTORS * VECTOR_ROWS] {
        let mut out = [0f32; VECTORS * VECTOR_ROWS];
        for (lanes, at) in out.chunks_exact_mut(VECTOR_ROWS).zip(at) {
            // SAFETY: the caller's.
            unsafe {
                let gathered = _mm256_i32gather_ps::<4>(values, *at);
                _mm256_storeu_ps(lanes.as_mut_ptr(), gathered);
            }
        }
        out
    }

    /// See [`super::PackedNodes::leaves`].
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn leaves(
        words: &[i32],
        thresholds: &[f32],
        root: u32,
        depth: u32,
        block: &[f32],
        width: usize,
        first: usize,
    ) -> [f32; VECTORS * VECTOR_ROWS] {
        // SAFETY: see the caller; the gathers read only checked indices.
        unsafe {
            let leaf = _mm256_set1_epi32(LEAF);
            let row_start = row_starts(first, width);
            let mut at = [_mm256_set1_epi32(root as i32); VECTORS];
            let (words, thresholds, block) = (words.as_ptr(), thresholds.as_ptr(), block.as_ptr());
            for _ in 0..depth {
                for (at, row_start) in at.iter_mut().zip(&row_start) {
                    let word = _mm256_i32gather_epi32::<4>(words, *at);
                    let threshold = _mm256_i32gather_ps::<4>(thresholds, *at);
                    let feature = _mm256_add_epi32(*row_start, features(word));
                    let value = _mm256_i32gather_ps::<4>(block, feature);
                    // A leaf stays: offset 0 and no step right.
                    let is_leaf = _mm256_cmpeq_epi32(_mm256_and_si256(word, leaf), leaf);
                    let right = _mm256_andnot_si256(is_leaf, right_steps(value, threshold, word));
                    let offset = _mm256_srli_epi32::<OFFSET_SHIFT>(word);
                    *at = _mm256_add_epi32(*at, _mm256_add_epi32(offset, right));
                }
            }
            gather_rows(thresholds, &at)
        }
    }
}
