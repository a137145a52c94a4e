//! Shallow XGBoost trees laid out level by level and walked eight rows at a
//! time with AVX2, mostly without gathering nodes.
//!
//! A tree of depth `d` ≤ [`MAX_DEPTH`] is padded to a complete binary tree: a
//! leaf above the last level becomes a chain of pass-through splits whose
//! children all hold the leaf's value, so every row takes exactly `d` steps
//! and the node a row reaches at level `l` is simply its position `p` in that
//! level (`0 ≤ p < 2^l`): the children of `p` are `2p` and `2p + 1`. The
//! nodes of a level sit side by side, so for the first four levels (at most
//! eight nodes each) a step reads the eight rows' nodes with a register
//! permute instead of a memory gather, and the fifth and sixth levels with two and four. Only the
//! rows' feature values are always gathered, plus the nodes of deeper levels
//! and, at the end, the leaf values. For XGBoost's default depth of 6 that is
//! 7 gathers per tree and 8 rows instead of 19 in [`super::simd`]'s walk.
//!
//! The comparisons are the scalar walk's: `value < threshold` in `f32`, NaN
//! to the default side. A pass-through node's threshold is NaN with the
//! default to the right, so it always sends a row right — into a subtree whose
//! leaves all equal the leaf it stands for.

use super::simd::{DEFAULT_LEFT, FEATURE_BITS, NodeView, VECTOR_ROWS, VECTORS};

/// The deepest tree padded to a complete one (511 nodes and 256 leaves).
pub(crate) const MAX_DEPTH: u32 = 8;

/// Entries past the last level, so that a level is always readable as eight
/// lanes from its start.
const PADDING: usize = 8;

/// Where one tree lives in the level layout.
#[derive(Debug, Clone, Copy)]
struct TreeLevels {
    /// Index of the root in `words` / `thresholds`; level `l` starts `2^l - 1` later.
    nodes: u32,
    /// Index of the first leaf in `leaves`.
    leaves: u32,
    depth: u32,
}

/// The trees of a model that fit the level layout; the others are `None`.
#[derive(Debug)]
pub(crate) struct LevelTrees {
    trees: Vec<Option<TreeLevels>>,
    words: Vec<i32>,
    thresholds: Vec<f32>,
    leaves: Vec<f32>,
    /// One more than the largest feature index read.
    features: usize,
}

impl LevelTrees {
    /// Lays out each tree of depth ≤ [`MAX_DEPTH`] whose features fit in 16
    /// bits. `node(i)` describes node `i` of the scalar layout and `value(i)`
    /// its threshold or leaf value; `roots` and `depths` are the trees'.
    /// `None` when AVX2 is missing or no tree fits.
    pub(crate) fn build(
        node: impl Fn(usize) -> NodeView,
        value: impl Fn(usize) -> f32,
        roots: &[u32],
        depths: &[u32],
    ) -> Option<LevelTrees> {
        if !crate::cpu::avx2_available() {
            return None;
        }
        let mut layout = LevelTrees {
            trees: Vec::with_capacity(roots.len()),
            words: Vec::new(),
            thresholds: Vec::new(),
            leaves: Vec::new(),
            features: 0,
        };
        for (&root, &depth) in roots.iter().zip(depths) {
            let tree = if depth <= MAX_DEPTH {
                layout.add_tree(&node, &value, root as usize, depth)
            } else {
                None
            };
            layout.trees.push(tree);
        }
        if layout.trees.iter().all(Option::is_none) || layout.words.len() > i32::MAX as usize / 2 {
            return None;
        }
        layout.words.extend([0; PADDING]);
        layout.thresholds.extend([f32::NAN; PADDING]);
        Some(layout)
    }

    fn add_tree(
        &mut self,
        node: &impl Fn(usize) -> NodeView,
        value: &impl Fn(usize) -> f32,
        root: usize,
        depth: u32,
    ) -> Option<TreeLevels> {
        let tree = TreeLevels {
            nodes: u32::try_from(self.words.len()).ok()?,
            leaves: u32::try_from(self.leaves.len()).ok()?,
            depth,
        };
        let splits = (1usize << depth) - 1;
        let (words_start, leaves_start) = (self.words.len(), self.leaves.len());
        self.words.resize(words_start + splits, 0);
        self.thresholds.resize(words_start + splits, f32::NAN);
        self.leaves.resize(leaves_start + (1 << depth), 0.0);
        // (scalar node, level, position in level)
        let mut stack = vec![(root, 0u32, 0usize)];
        while let Some((at, level, position)) = stack.pop() {
            let view = node(at);
            if level == depth {
                if !view.leaf {
                    self.truncate(words_start, leaves_start);
                    return None;
                }
                self.leaves[leaves_start + position] = value(at);
                continue;
            }
            let slot = words_start + (1 << level) - 1 + position;
            let (left, right) = if view.leaf {
                // Pass-through: NaN threshold, default right (the word's zero).
                (at, at)
            } else {
                if view.feature >= 1 << FEATURE_BITS {
                    self.truncate(words_start, leaves_start);
                    return None;
                }
                self.features = self.features.max(view.feature + 1);
                self.words[slot] =
                    view.feature as i32 | if view.default_left { DEFAULT_LEFT } else { 0 };
                self.thresholds[slot] = value(at);
                (view.left, view.left + 1)
            };
            stack.push((left, level + 1, 2 * position));
            stack.push((right, level + 1, 2 * position + 1));
        }
        Some(tree)
    }

    fn truncate(&mut self, words: usize, leaves: usize) {
        self.words.truncate(words);
        self.thresholds.truncate(words);
        self.leaves.truncate(leaves);
    }

    /// Whether tree `t` is in the layout.
    #[inline]
    pub(crate) fn has(&self, t: usize) -> bool {
        matches!(self.trees.get(t), Some(Some(_)))
    }

    /// Leaf values of tree `t` (which [`Self::has`]) for `VECTORS * VECTOR_ROWS`
    /// consecutive rows of a row-major `block` (`width` values per row)
    /// starting at `first`; NaN for a tree not in the layout or rows not in
    /// the block (the ensemble never asks for those).
    #[inline]
    pub(crate) fn leaves(
        &self,
        t: usize,
        block: &[f32],
        width: usize,
        first: usize,
    ) -> [f32; VECTORS * VECTOR_ROWS] {
        let rows = VECTORS * VECTOR_ROWS;
        let tree = match self.trees.get(t) {
            Some(Some(tree)) => *tree,
            _ => return [f32::NAN; VECTORS * VECTOR_ROWS],
        };
        if self.features > width
            || (first + rows) * width > block.len()
            || block.len() > i32::MAX as usize
        {
            return [f32::NAN; VECTORS * VECTOR_ROWS];
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `build` returned a layout only after detecting AVX2.
            // Every read stays in bounds: tree `t` holds `2^depth - 1` split
            // slots followed (for the last tree) by `PADDING` more, so eight
            // lanes read from a level's start are inside `words` and
            // `thresholds`; gathered node positions are below `2^level` and
            // leaf positions below `2^depth`, the sizes `add_tree` allocated;
            // feature indices are below `width`, and the rows
            // `first..first + rows` lie in `block` (checked above).
            unsafe {
                avx2::leaves(
                    &self.words[tree.nodes as usize..],
                    &self.thresholds[tree.nodes as usize..],
                    &self.leaves[tree.leaves as usize..],
                    tree.depth,
                    block,
                    width,
                    first,
                )
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = tree;
            [f32::NAN; VECTORS * VECTOR_ROWS]
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::simd::avx2::{features, gather_rows, right_steps, row_starts};
    use super::{VECTOR_ROWS, VECTORS};

    /// The nodes of one level for the lanes at `position`: from registers for
    /// levels of up to 32 nodes (levels 0 to 5), gathered below that.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn level_nodes(
        words: *const i32,
        thresholds: *const f32,
        level: u32,
        position: __m256i,
    ) -> (__m256i, __m256) {
        unsafe {
            let start = (1usize << level) - 1;
            match level {
                0 => (_mm256_set1_epi32(*words), _mm256_set1_ps(*thresholds)),
                1..=3 => {
                    let w = _mm256_loadu_si256(words.add(start).cast());
                    let t = _mm256_loadu_ps(thresholds.add(start));
                    (
                        _mm256_permutevar8x32_epi32(w, position),
                        _mm256_permutevar8x32_ps(t, position),
                    )
                }
                4 | 5 => {
                    // Two or four registers of eight: the permute uses the low
                    // three bits of the position, bits 3 and 4 pick the register.
                    let pick = |offset: usize| {
                        let w = _mm256_loadu_si256(words.add(start + offset).cast());
                        let t = _mm256_loadu_ps(thresholds.add(start + offset));
                        (
                            _mm256_permutevar8x32_epi32(w, position),
                            _mm256_permutevar8x32_ps(t, position),
                        )
                    };
                    let bit = |b: i32| {
                        let b = _mm256_set1_epi32(b);
                        _mm256_cmpeq_epi32(_mm256_and_si256(position, b), b)
                    };
                    let blend = |(w0, t0): (__m256i, __m256), (w1, t1), mask: __m256i| {
                        (
                            _mm256_blendv_epi8(w0, w1, mask),
                            _mm256_blendv_ps(t0, t1, _mm256_castsi256_ps(mask)),
                        )
                    };
                    let bit3 = bit(8);
                    let low = blend(pick(0), pick(8), bit3);
                    if level == 4 {
                        low
                    } else {
                        let high = blend(pick(16), pick(24), bit3);
                        blend(low, high, bit(16))
                    }
                }
                _ => (
                    _mm256_i32gather_epi32::<4>(words.add(start), position),
                    _mm256_i32gather_ps::<4>(thresholds.add(start), position),
                ),
            }
        }
    }

    /// See [`super::LevelTrees::leaves`]; the slices start at the tree.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn leaves(
        words: &[i32],
        thresholds: &[f32],
        leaves: &[f32],
        depth: u32,
        block: &[f32],
        width: usize,
        first: usize,
    ) -> [f32; VECTORS * VECTOR_ROWS] {
        // SAFETY: see the caller.
        unsafe {
            let row_start = row_starts(first, width);
            let mut position = [_mm256_setzero_si256(); VECTORS];
            let (words, thresholds, block) = (words.as_ptr(), thresholds.as_ptr(), block.as_ptr());
            for level in 0..depth {
                for (position, row_start) in position.iter_mut().zip(&row_start) {
                    let (word, threshold) = level_nodes(words, thresholds, level, *position);
                    let feature = _mm256_add_epi32(*row_start, features(word));
                    let value = _mm256_i32gather_ps::<4>(block, feature);
                    let right = right_steps(value, threshold, word);
                    *position = _mm256_add_epi32(_mm256_add_epi32(*position, *position), right);
                }
            }
            gather_rows(leaves.as_ptr(), &position)
        }
    }
}
