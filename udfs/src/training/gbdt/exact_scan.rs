//! The split scan of one feature over dense, cumulative bin sums held
//! exactly in `f64`, eight cuts at a time with AVX-512, or four with AVX2.
//!
//! Training one model per group spends about a third of its time here:
//! every cut of every feature at every node with 32 rows or more is scored.
//! A cut's score needs the sums of the bins on its left, so a node's table
//! holds, per feature, the running sums of its bins ([`accumulate`]) rather
//! than the bins themselves: the scan then reads each cut's left side instead
//! of adding it up. Tables are kept from parent to child, and the larger child
//! is its parent's table minus its sibling's: for cumulative sums too, so half
//! the tables scanned are never accumulated at all. (Computing the running sums
//! inside the scan, as before, cost about as many instructions as scoring the
//! cuts, and the scan is bound by instruction throughput, not memory.)
//!
//! The vector scans score a block of cuts with the same operations in the same
//! order as the scalar scan, so every score is bit for bit the scalar one.
//! Choosing the split stays exactly the scalar scan's: a block of cuts is
//! compared, all at once, against the best score from before the block. When
//! no cut of the block beats it (the common case once a feature's best cut
//! has been seen) and none makes the right side too light, the scalar scan
//! would have changed nothing either. Otherwise the block's cuts are taken in
//! order, with the scalar scan's strict "better than the best so far" and its
//! stop at the first too-light right side (AVX-512 from the lanes' scores,
//! AVX2 by the scalar code).
//!
//! Sums are exact: every bin and every sum of bins is an integer below 2⁵³ in
//! magnitude (the caller checks that the round's absolute gradients and
//! Hessians each sum below it, `RowSplitter::set_gradients`), so running sums,
//! whatever the order of their additions, and differences of them are the
//! values a row-by-row sum gives.

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

/// Turns bin sums (`[g, h]`) into running sums in place: entry `i` becomes
/// the sum of bins `0..=i`. Exact for sums of integers below 2⁵³ (see the
/// module docs); AVX-512 where the CPU has it, with the same result.
pub(crate) fn accumulate(bins: &mut [[f64; 2]]) {
    #[cfg(target_arch = "x86_64")]
    if avx512_available() {
        // SAFETY: the CPU has AVX-512F (checked just above).
        unsafe { accumulate_avx512(bins) };
        return;
    }
    accumulate_from(bins, [0.0, 0.0]);
}

/// The scalar [`accumulate`], adding `carry` (the sums before `bins`).
fn accumulate_from(bins: &mut [[f64; 2]], carry: [f64; 2]) {
    let [mut g, mut h] = carry;
    for bin in bins {
        g += bin[0];
        h += bin[1];
        *bin = [g, h];
    }
}

/// [`accumulate`] four bins (one vector of `[g, h]` pairs) at a time.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate_avx512(bins: &mut [[f64; 2]]) {
    use std::arch::x86_64::*;

    let zero = _mm512_setzero_si512();
    // Lanes 6 and 7 (the last pair) into every pair.
    let last_pair = _mm512_set_epi64(7, 6, 7, 6, 7, 6, 7, 6);
    let mut carry = _mm512_setzero_pd();
    let whole = bins.len() / 4 * 4;
    for four in bins[..whole].chunks_exact_mut(4) {
        let at = four.as_mut_ptr().cast::<f64>();
        // SAFETY: `four` is four `[f64; 2]`: eight contiguous `f64`s.
        let x = unsafe { _mm512_loadu_pd(at) };
        // Pairs `[a, b, c, d]` → `[a, a+b, b+c, c+d]` → `[a, a+b, a+b+c, a+b+c+d]`;
        // `alignr::<k>(x, 0)` moves `x` up `8 - k` lanes with zeros below.
        let up1 = _mm512_alignr_epi64::<6>(_mm512_castpd_si512(x), zero);
        let x = _mm512_add_pd(x, _mm512_castsi512_pd(up1));
        let up2 = _mm512_alignr_epi64::<4>(_mm512_castpd_si512(x), zero);
        let local = _mm512_add_pd(x, _mm512_castsi512_pd(up2));
        // SAFETY: as the load.
        unsafe { _mm512_storeu_pd(at, _mm512_add_pd(local, carry)) };
        // The carry's chain is one addition per four bins.
        carry = _mm512_add_pd(carry, _mm512_permutexvar_pd(last_pair, local));
    }
    let carry = [
        _mm512_cvtsd_f64(carry),
        _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(1), carry)),
    ];
    accumulate_from(&mut bins[whole..], carry);
}

/// Scans the cuts whose left sides are `lefts` (`[g, h]`, cumulative: entry
/// `i` sums bins `0..=i`, and cut `i` is the one after bin `i`) and returns
/// the best score, starting from `best`. `kind` selects the implementation; a
/// vector kind the CPU lacks falls back to the scalar scan. The result is the
/// same whichever runs.
pub(crate) fn scan_exact(
    lefts: &[[f64; 2]],
    limits: &ScanLimits,
    best: ScanBest,
    kind: ScanKind,
) -> ScanBest {
    let mut best = best;
    #[cfg(target_arch = "x86_64")]
    match kind {
        ScanKind::Avx512 if avx512_available() => {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { scan_avx512(lefts, limits, &mut best) };
            return best;
        }
        ScanKind::Avx2 if avx2_available() => {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { scan_avx2(lefts, limits, &mut best) };
            return best;
        }
        _ => {}
    }
    let _ = kind;
    scan_from(lefts, 0, limits, &mut best);
    best
}

/// The scalar scan of `lefts`, the first of which is cut `first`. Returns
/// `false` where the right side became too light (the scan is over).
#[inline]
fn scan_from(lefts: &[[f64; 2]], first: usize, limits: &ScanLimits, best: &mut ScanBest) -> bool {
    let &ScanLimits {
        total_g,
        total_h,
        lightest,
        lambda,
    } = limits;
    let (mut best_numerator, mut best_denominator) = (best.numerator, best.denominator);
    let mut chosen = None;
    let mut ended = false;
    for (i, &[left_g, left_h]) in lefts.iter().enumerate() {
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
    !ended
}

/// The AVX2 scan: blocks of four cuts, rescanned by [`scan_from`] when one of
/// them might change the best or end the scan; the last `len % 4` cuts scalar.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(lefts: &[[f64; 2]], limits: &ScanLimits, best: &mut ScanBest) {
    use std::arch::x86_64::*;

    let total_g = _mm256_set1_pd(limits.total_g);
    let total_h = _mm256_set1_pd(limits.total_h);
    let lightest = _mm256_set1_pd(limits.lightest);
    let lambda = _mm256_set1_pd(limits.lambda);
    let whole = lefts.len() / 4 * 4;
    for (block, four) in lefts[..whole].chunks_exact(4).enumerate() {
        // SAFETY: `four` is four `[f64; 2]`: eight contiguous `f64`s.
        let (p01, p23) = unsafe {
            let at = four.as_ptr().cast::<f64>();
            (_mm256_loadu_pd(at), _mm256_loadu_pd(at.add(4)))
        };
        // unpacklo: [g0, g2, g1, g3]; the permute puts them in order.
        let left_g = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(p01, p23));
        let left_h = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(p01, p23));
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
        if _mm256_movemask_pd(_mm256_or_pd(wins, too_light)) != 0
            && !scan_from(four, block * 4, limits, best)
        {
            return;
        }
    }
    scan_from(&lefts[whole..], whole, limits, best);
}

/// The AVX-512 scan: blocks of eight cuts, a block that may change the best
/// settled from its lanes' scores (already the scalar scan's, bit for bit);
/// the last `len % 8` cuts scalar.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_avx512(lefts: &[[f64; 2]], limits: &ScanLimits, best: &mut ScanBest) {
    use std::arch::x86_64::*;

    let total_g = _mm512_set1_pd(limits.total_g);
    let total_h = _mm512_set1_pd(limits.total_h);
    let lightest = _mm512_set1_pd(limits.lightest);
    let lambda = _mm512_set1_pd(limits.lambda);
    // Lane `i` of the `g`s is `f64` number `2i` of the pair of vectors loaded
    // (index bit 3 picks the second vector); of the `h`s, number `2i + 1`.
    let evens = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    let odds = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    let whole = lefts.len() / 8 * 8;
    for (block, eight) in lefts[..whole].chunks_exact(8).enumerate() {
        // SAFETY: `eight` is eight `[f64; 2]`: sixteen contiguous `f64`s.
        let (low, high) = unsafe {
            let at = eight.as_ptr().cast::<f64>();
            (_mm512_loadu_pd(at), _mm512_loadu_pd(at.add(8)))
        };
        let left_g = _mm512_permutex2var_pd(low, evens, high);
        let left_h = _mm512_permutex2var_pd(low, odds, high);
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
                for i in first..stop {
                    let heavy = heavy_left >> i & 1 == 1;
                    if heavy && numerators[i] * best.denominator > best.numerator * denominators[i]
                    {
                        let [g, h] = eight[i];
                        *best = ScanBest {
                            numerator: numerators[i],
                            denominator: denominators[i],
                            chosen: Some((block * 8 + i, g, h)),
                        };
                    }
                }
            }
            if too_light != 0 {
                return;
            }
        }
    }
    scan_from(&lefts[whole..], whole, limits, best);
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

    /// Running sums of `bins`, one bin after another.
    fn running(bins: &[[f64; 2]]) -> Vec<[f64; 2]> {
        let mut lefts = bins.to_vec();
        accumulate_from(&mut lefts, [0.0, 0.0]);
        lefts
    }

    #[test]
    fn accumulating_gives_the_running_sums_of_one_bin_after_another() {
        if !avx512_available() {
            eprintln!("this CPU has no AVX-512: only the scalar accumulation runs here");
        }
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        // Every length up to two vectors and a tail, then random ones.
        let short = (0..10).map(|len| {
            let bins = (0..len).map(|i| [i as f64 - 3.0, (i * i) as f64]).collect();
            (bins, ())
        });
        let long = (0..5_000).map(|_| (random_case(&mut random).0, ()));
        for (bins, ()) in short.chain(long).collect::<Vec<(Vec<[f64; 2]>, ())>>() {
            let mut vector = bins.clone();
            accumulate(&mut vector);
            let bits = |sums: &[[f64; 2]]| -> Vec<[u64; 2]> {
                sums.iter()
                    .map(|[g, h]| [g.to_bits(), h.to_bits()])
                    .collect()
            };
            assert_eq!(bits(&vector), bits(&running(&bins)), "{} bins", bins.len());
        }
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
            let lefts = running(&bins);
            let scalar = scan_exact(&lefts, &limits, best, ScanKind::Scalar);
            for &kind in &kinds {
                let vector = scan_exact(&lefts, &limits, best, kind);
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

    /// Blocks of small integers: ties between cuts, within a block and
    /// across blocks, are common, and with negative Hessians (which the scan
    /// does not assume away) a cut with a too-light right side may come
    /// anywhere in a block, before or after one that wins.
    #[test]
    fn small_integer_scans_with_ties_and_light_cuts_anywhere_choose_as_the_scalar_scan() {
        let kinds = vector_kinds();
        let mut random = Random(0x853c_49e6_748f_ea9b);
        let (mut changed, mut light_then_heavy) = (0, 0);
        for _ in 0..50_000 {
            let len = random.below(21) as usize;
            let bins: Vec<[f64; 2]> = (0..len)
                .map(|_| [random.below(7) as f64 - 3.0, random.below(5) as f64 - 1.0])
                .collect();
            let lefts = running(&bins);
            let limits = ScanLimits {
                total_g: random.below(9) as f64 - 4.0,
                total_h: random.below(12) as f64,
                lightest: 1.0 + random.below(4) as f64,
                lambda: [0.5, 1.0, 2.0][random.below(3) as usize],
            };
            let best = match random.below(3) {
                0 => ScanBest {
                    numerator: -1.0,
                    denominator: 1.0,
                    chosen: None,
                },
                _ => ScanBest {
                    numerator: random.below(40) as f64,
                    denominator: 1.0 + random.below(8) as f64,
                    chosen: Some((99, 0.0, 0.0)),
                },
            };
            let light = |[_, h]: [f64; 2]| limits.total_h - h < limits.lightest;
            let first_block = &lefts[..len.min(8)];
            if let Some(at) = first_block.iter().position(|l| light(*l)) {
                light_then_heavy += usize::from(first_block[at..].iter().any(|l| !light(*l)));
            }
            let scalar = scan_exact(&lefts, &limits, best, ScanKind::Scalar);
            for &kind in &kinds {
                let vector = scan_exact(&lefts, &limits, best, kind);
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
                    "{kind:?}, bins {bins:?}, {limits:?}, from {best:?}"
                );
            }
            changed += usize::from(scalar.chosen != best.chosen);
        }
        assert!(
            changed > 5_000 && changed < 45_000,
            "{changed} of 50,000 changed the best"
        );
        assert!(
            light_then_heavy > 1_000,
            "{light_then_heavy} light-then-heavy blocks"
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
            let lefts = running(&bins);
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
                let best = scan_exact(&lefts, &limits, start, kind);
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
                assert_eq!(scan_exact(&lefts, &heavy, start, kind), start);
            }
        }
    }
}
