//! The split scan of one feature over dense bin sums held exactly in `f64`,
//! eight cuts at a time with AVX-512, or four with AVX2.
//!
//! Training one model per group spends about a third of its time here:
//! every cut of every feature at every node with 32 rows or more is scored.
//! The scalar scan is a chain of dependent additions (the left side's running
//! sums) feeding a dozen multiplications and comparisons per cut. The vector
//! scans compute a block of cuts' running sums with an in-register prefix sum
//! (four cuts with AVX2; eight with AVX-512, which roughly halves the
//! instructions per cut again), and their scores with the same operations in
//! the same order as the scalar scan, so every score is bit for bit the scalar
//! one.
//!
//! Choosing the split stays exactly the scalar scan's: a block of cuts is
//! compared, all at once, against the best score from before the block. When
//! no cut of the block beats it (the common case once a feature's best cut
//! has been seen) and none makes the right side too light, the scalar scan
//! would have changed nothing either. Otherwise the block is rescanned by the
//! scalar code, in order, with its strict "better than the best so far" and
//! its stop at the first too-light right side.
//!
//! Sums are exact: every bin and every sum of bins is an integer below 2⁵³ in
//! magnitude (the caller checks the node's absolute totals), so the prefix sum
//! gives the scalar running sums whatever the order of its additions.

use crate::cpu::{avx2_available, avx512_available};

/// Which implementation of the scan runs. Every kind chooses the same cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanKind {
    /// One cut at a time.
    Scalar,
    /// Four cuts at a time (x86-64 with AVX2).
    Avx2,
    /// Eight cuts at a time (x86-64 with AVX-512F).
    Avx512,
}

impl ScanKind {
    /// The widest scan this CPU runs.
    pub fn fastest() -> Self {
        if avx512_available() {
            Self::Avx512
        } else if avx2_available() {
            Self::Avx2
        } else {
            Self::Scalar
        }
    }

    /// Whether this CPU can run this kind.
    #[cfg(test)]
    pub fn runs_here(self) -> bool {
        match self {
            Self::Scalar => true,
            Self::Avx2 => avx2_available(),
            Self::Avx512 => avx512_available(),
        }
    }
}

/// What a scan compares against: the node's totals and the limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanLimits {
    /// The node's gradient sum.
    pub total_g: f64,
    /// The node's Hessian sum.
    pub total_h: f64,
    /// The least Hessian sum a child may have.
    pub lightest: f64,
    /// `λ` in the units of the sums.
    pub lambda: f64,
}

/// The best score so far, as the fraction `numerator / denominator`, and the
/// cut that gave it in this scan (`(index of the bin, left g, left h)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScanBest {
    pub numerator: f64,
    pub denominator: f64,
    pub chosen: Option<(usize, f64, f64)>,
}

/// Scans `bins` (`[g, h]` sums, bin `i` is the cut after it) and returns the
/// best score, starting from `best`. `kind` selects the implementation; a
/// vector kind the CPU lacks falls back to the scalar scan. The result is the
/// same whichever runs.
pub(crate) fn scan_exact(
    bins: &[[f64; 2]],
    limits: &ScanLimits,
    best: ScanBest,
    kind: ScanKind,
) -> ScanBest {
    let mut best = best;
    #[cfg(target_arch = "x86_64")]
    match kind {
        ScanKind::Avx512 if avx512_available() => {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { scan_avx512(bins, limits, &mut best) };
            return best;
        }
        ScanKind::Avx2 if avx2_available() => {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { scan_avx2(bins, limits, &mut best) };
            return best;
        }
        _ => {}
    }
    let _ = kind;
    scan_from(bins, 0, [0.0, 0.0], limits, &mut best);
    best
}

/// The scalar scan of `bins`, the first of which is bin `first`, with the
/// left side summing to `left` before it. Returns the left sums after the last
/// bin, or `None` where the right side became too light (the scan is over).
#[inline]
fn scan_from(
    bins: &[[f64; 2]],
    first: usize,
    left: [f64; 2],
    limits: &ScanLimits,
    best: &mut ScanBest,
) -> Option<[f64; 2]> {
    let &ScanLimits {
        total_g,
        total_h,
        lightest,
        lambda,
    } = limits;
    let (mut best_numerator, mut best_denominator) = (best.numerator, best.denominator);
    let mut chosen = None;
    let [mut left_g, mut left_h] = left;
    let mut ended = false;
    for (i, [g, h]) in bins.iter().enumerate() {
        left_g += g;
        left_h += h;
        let (right_g, right_h) = (total_g - left_g, total_h - left_h);
        if right_h < lightest {
            ended = true;
            break;
        }
        if left_h >= lightest {
            let (dl, dr) = (left_h + lambda, right_h + lambda);
            let numerator = left_g * left_g * dr + right_g * right_g * dl;
            let denominator = dl * dr;
            if numerator * best_denominator > best_numerator * denominator {
                best_numerator = numerator;
                best_denominator = denominator;
                chosen = Some((first + i, left_g, left_h));
            }
        }
    }
    if chosen.is_some() {
        *best = ScanBest {
            numerator: best_numerator,
            denominator: best_denominator,
            chosen,
        };
    }
    (!ended).then_some([left_g, left_h])
}

/// The vector scan: blocks of four cuts, rescanned by [`scan_from`] when one
/// of them might change the best or end the scan; the last `len % 4` bins
/// scalar.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(bins: &[[f64; 2]], limits: &ScanLimits, best: &mut ScanBest) {
    use std::arch::x86_64::*;

    /// `[a, b, c, d]` → `[a, a+b, a+b+c, a+b+c+d]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn prefix_sum(x: __m256d) -> __m256d {
        let zero = _mm256_setzero_pd();
        // [0, a, b, c]
        let shifted = _mm256_blend_pd::<0b0001>(_mm256_permute4x64_pd::<0b10_01_00_00>(x), zero);
        let x = _mm256_add_pd(x, shifted);
        // [0, 0, a, a+b]
        let shifted = _mm256_blend_pd::<0b0011>(_mm256_permute4x64_pd::<0b01_00_00_00>(x), zero);
        _mm256_add_pd(x, shifted)
    }

    let total_g = _mm256_set1_pd(limits.total_g);
    let total_h = _mm256_set1_pd(limits.total_h);
    let lightest = _mm256_set1_pd(limits.lightest);
    let lambda = _mm256_set1_pd(limits.lambda);
    let (mut carry_g, mut carry_h) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let whole = bins.len() / 4 * 4;
    for (block, four) in bins[..whole].chunks_exact(4).enumerate() {
        // SAFETY: `four` is four `[f64; 2]`: eight contiguous `f64`s.
        let (p01, p23) = unsafe {
            let at = four.as_ptr().cast::<f64>();
            (_mm256_loadu_pd(at), _mm256_loadu_pd(at.add(4)))
        };
        // unpacklo: [g0, g2, g1, g3]; the permute puts them in order.
        let g = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(p01, p23));
        let h = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(p01, p23));
        let (sum_g, sum_h) = (prefix_sum(g), prefix_sum(h));
        let left_g = _mm256_add_pd(carry_g, sum_g);
        let left_h = _mm256_add_pd(carry_h, sum_h);
        let right_g = _mm256_sub_pd(total_g, left_g);
        let right_h = _mm256_sub_pd(total_h, left_h);
        let too_light = _mm256_cmp_pd::<_CMP_LT_OQ>(right_h, lightest);
        let heavy_left = _mm256_cmp_pd::<_CMP_GE_OQ>(left_h, lightest);
        let dl = _mm256_add_pd(left_h, lambda);
        let dr = _mm256_add_pd(right_h, lambda);
        // (left_g · left_g) · dr + (right_g · right_g) · dl, as the scalar scan.
        let numerator = _mm256_add_pd(
            _mm256_mul_pd(_mm256_mul_pd(left_g, left_g), dr),
            _mm256_mul_pd(_mm256_mul_pd(right_g, right_g), dl),
        );
        let denominator = _mm256_mul_pd(dl, dr);
        let better = _mm256_cmp_pd::<_CMP_GT_OQ>(
            _mm256_mul_pd(numerator, _mm256_set1_pd(best.denominator)),
            _mm256_mul_pd(_mm256_set1_pd(best.numerator), denominator),
        );
        let wins = _mm256_and_pd(better, heavy_left);
        if _mm256_movemask_pd(_mm256_or_pd(wins, too_light)) != 0 {
            let left = [_mm256_cvtsd_f64(carry_g), _mm256_cvtsd_f64(carry_h)];
            if scan_from(four, block * 4, left, limits, best).is_none() {
                return;
            }
        }
        carry_g = _mm256_add_pd(carry_g, _mm256_permute4x64_pd::<0b11_11_11_11>(sum_g));
        carry_h = _mm256_add_pd(carry_h, _mm256_permute4x64_pd::<0b11_11_11_11>(sum_h));
    }
    let left = [_mm256_cvtsd_f64(carry_g), _mm256_cvtsd_f64(carry_h)];
    scan_from(&bins[whole..], whole, left, limits, best);
}

/// The AVX-512 scan: [`scan_avx2`] with blocks of eight cuts, and a block
/// that may change the best settled from its lanes' scores (already the scalar
/// scan's, bit for bit) instead of being rescanned.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_avx512(bins: &[[f64; 2]], limits: &ScanLimits, best: &mut ScanBest) {
    use std::arch::x86_64::*;

    /// `[a, b, …, h]` → `[a, a+b, …, a+b+…+h]`. `alignr::<k>(x, 0)` is `x`
    /// moved up `8 - k` lanes with zeros below.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn prefix_sum(x: __m512d) -> __m512d {
        let zero = _mm512_setzero_si512();
        let up1 = _mm512_alignr_epi64::<7>(_mm512_castpd_si512(x), zero);
        let x = _mm512_add_pd(x, _mm512_castsi512_pd(up1));
        let up2 = _mm512_alignr_epi64::<6>(_mm512_castpd_si512(x), zero);
        let x = _mm512_add_pd(x, _mm512_castsi512_pd(up2));
        let up4 = _mm512_alignr_epi64::<4>(_mm512_castpd_si512(x), zero);
        _mm512_add_pd(x, _mm512_castsi512_pd(up4))
    }

    let total_g = _mm512_set1_pd(limits.total_g);
    let total_h = _mm512_set1_pd(limits.total_h);
    let lightest = _mm512_set1_pd(limits.lightest);
    let lambda = _mm512_set1_pd(limits.lambda);
    // Lane `i` of the `g`s is `f64` number `2i` of the pair of vectors loaded
    // (index bit 3 picks the second vector); of the `h`s, number `2i + 1`.
    let evens = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    let odds = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    let last_lane = _mm512_set1_epi64(7);
    let (mut carry_g, mut carry_h) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let whole = bins.len() / 8 * 8;
    for (block, eight) in bins[..whole].chunks_exact(8).enumerate() {
        // SAFETY: `eight` is eight `[f64; 2]`: sixteen contiguous `f64`s.
        let (low, high) = unsafe {
            let at = eight.as_ptr().cast::<f64>();
            (_mm512_loadu_pd(at), _mm512_loadu_pd(at.add(8)))
        };
        let g = _mm512_permutex2var_pd(low, evens, high);
        let h = _mm512_permutex2var_pd(low, odds, high);
        let (sum_g, sum_h) = (prefix_sum(g), prefix_sum(h));
        let left_g = _mm512_add_pd(carry_g, sum_g);
        let left_h = _mm512_add_pd(carry_h, sum_h);
        let right_g = _mm512_sub_pd(total_g, left_g);
        let right_h = _mm512_sub_pd(total_h, left_h);
        let too_light = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(right_h, lightest);
        let heavy_left = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(left_h, lightest);
        let dl = _mm512_add_pd(left_h, lambda);
        let dr = _mm512_add_pd(right_h, lambda);
        // (left_g · left_g) · dr + (right_g · right_g) · dl, as the scalar scan.
        let numerator = _mm512_add_pd(
            _mm512_mul_pd(_mm512_mul_pd(left_g, left_g), dr),
            _mm512_mul_pd(_mm512_mul_pd(right_g, right_g), dl),
        );
        let denominator = _mm512_mul_pd(dl, dr);
        let better = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(
            _mm512_mul_pd(numerator, _mm512_set1_pd(best.denominator)),
            _mm512_mul_pd(_mm512_set1_pd(best.numerator), denominator),
        );
        let wins = better & heavy_left;
        if wins | too_light != 0 {
            // The scalar scan's steps over this block, from the lanes' values:
            // cuts before the first winner change nothing; from it on, each
            // cut with a heavy enough left side is compared with the best so
            // far, in order, up to the first cut whose right side is too light.
            let stop = too_light.trailing_zeros().min(8) as usize;
            let first = wins.trailing_zeros().min(8) as usize;
            if first < stop {
                let lanes = |v: __m512d| {
                    let mut out = [0.0f64; 8];
                    // SAFETY: `out` holds eight `f64`s.
                    unsafe { _mm512_storeu_pd(out.as_mut_ptr(), v) };
                    out
                };
                let (numerators, denominators) = (lanes(numerator), lanes(denominator));
                let (lefts_g, lefts_h) = (lanes(left_g), lanes(left_h));
                for i in first..stop {
                    let heavy = heavy_left >> i & 1 == 1;
                    if heavy
                        && numerators[i] * best.denominator > best.numerator * denominators[i]
                    {
                        *best = ScanBest {
                            numerator: numerators[i],
                            denominator: denominators[i],
                            chosen: Some((block * 8 + i, lefts_g[i], lefts_h[i])),
                        };
                    }
                }
            }
            if too_light != 0 {
                return;
            }
        }
        carry_g = _mm512_add_pd(carry_g, _mm512_permutexvar_pd(last_lane, sum_g));
        carry_h = _mm512_add_pd(carry_h, _mm512_permutexvar_pd(last_lane, sum_h));
    }
    let left = [_mm512_cvtsd_f64(carry_g), _mm512_cvtsd_f64(carry_h)];
    scan_from(&bins[whole..], whole, left, limits, best);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_case(random: &mut Random) -> (Vec<[f64; 2]>, ScanLimits, ScanBest) {
        let len = random.below(300) as usize;
        // Magnitudes from tiny to near 2⁵³ / bins, with many empty bins.
        let scale = 1u64 << random.below(44);
        let bins: Vec<[f64; 2]> = (0..len)
            .map(|_| {
                if random.below(3) == 0 {
                    return [0.0, 0.0];
                }
                let g = random.below(2 * scale) as f64 - scale as f64;
                let h = random.below(scale) as f64;
                [g, h]
            })
            .collect();
        let total_g: f64 = bins.iter().map(|b| b[0]).sum::<f64>() + random.below(scale) as f64;
        let total_h: f64 = bins.iter().map(|b| b[1]).sum::<f64>() + random.below(scale) as f64;
        let lightest = match random.below(4) {
            0 => 1.0,
            1 => (total_h * 0.3).ceil().max(1.0),
            2 => (total_h * 0.6).ceil().max(1.0),
            _ => random.below(scale.max(1)) as f64 + 1.0,
        };
        let limits = ScanLimits {
            total_g,
            total_h,
            lightest,
            lambda: scale as f64 * 0.37,
        };
        let best = if random.below(2) == 0 {
            ScanBest {
                numerator: -1.0,
                denominator: 1.0,
                chosen: None,
            }
        } else {
            ScanBest {
                numerator: (scale as f64) * (scale as f64) * random.below(100) as f64,
                denominator: (scale as f64) * 0.9 + 1.0,
                chosen: Some((7, 1.0, 2.0)),
            }
        };
        (bins, limits, best)
    }

    /// The vector kinds this CPU runs (each is compared with the scalar scan).
    fn vector_kinds() -> Vec<ScanKind> {
        let kinds: Vec<ScanKind> = [ScanKind::Avx2, ScanKind::Avx512]
            .into_iter()
            .filter(|kind| kind.runs_here())
            .collect();
        if kinds.len() < 2 {
            eprintln!("this CPU runs only {kinds:?} of the vector scans");
        }
        kinds
    }

    #[test]
    fn the_vector_scans_choose_exactly_what_the_scalar_scan_chooses() {
        let kinds = vector_kinds();
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut changed = 0;
        for _ in 0..20_000 {
            let (bins, limits, best) = random_case(&mut random);
            let scalar = scan_exact(&bins, &limits, best, ScanKind::Scalar);
            for &kind in &kinds {
                let vector = scan_exact(&bins, &limits, best, kind);
                assert_eq!(
                (
                    scalar.numerator.to_bits(),
                    scalar.denominator.to_bits(),
                    scalar.chosen
                ),
                    (
                        vector.numerator.to_bits(),
                        vector.denominator.to_bits(),
                        vector.chosen
                    ),
                    "{kind:?}, {} bins, {limits:?}",
                    bins.len()
                );
            }
            changed += usize::from(scalar.chosen != best.chosen);
        }
        // The cases exercise both outcomes.
        assert!(
            changed > 1_000 && changed < 19_000,
            "{changed} of 20,000 changed the best"
        );
    }

    #[test]
    fn ties_keep_the_first_cut_and_a_light_right_side_ends_the_scan() {
        // The bins after bin 0 but the last are empty, so their cuts score
        // exactly as bin 0's, the best; the first of them wins, in a vector
        // block and in the tail (5 empty bins: one four-cut block and a tail
        // for AVX2, all tail for AVX-512; 12: blocks of both).
        for empty in [4, 12] {
            let mut bins = vec![[4.0, 2.0]];
            bins.extend(std::iter::repeat_n([0.0, 0.0], empty));
            bins.push([-1.0, 1.0]);
            let limits = ScanLimits {
                total_g: 5.0,
                total_h: 9.0,
                lightest: 1.5,
                lambda: 0.5,
            };
            let start = ScanBest {
                numerator: -1.0,
                denominator: 1.0,
                chosen: None,
            };
            let kinds = [ScanKind::Scalar, ScanKind::Avx2, ScanKind::Avx512];
            for kind in kinds {
                let best = scan_exact(&bins, &limits, start, kind);
                let (i, g, h) = best.chosen.expect("a split");
                assert_eq!((g, h), (4.0, 2.0));
                assert_eq!(i, 0, "the first of equal scores, {kind:?}, {empty} empty");
            }
            // With the right side too light after bin 0, nothing later counts.
            let heavy = ScanLimits {
                lightest: 6.5,
                ..limits
            };
            for kind in kinds {
                assert_eq!(scan_exact(&bins, &heavy, start, kind), start);
            }
        }
    }
}
