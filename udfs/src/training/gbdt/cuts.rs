//! Cut points: where a feature's histogram bins begin.
//!
//! Bin `b` of a feature holds the values `x` with exactly `b` cuts `≤ x`, so a
//! split "bins `< k` go left" is the XGBoost condition `x < cuts[k−1]` on the
//! same `f32` value — the tree Ember writes scores rows exactly as training
//! partitioned them. A feature with at most `max_bins` distinct values gets
//! one bin per value; otherwise the cuts are weighted quantiles of the sketch,
//! so bins hold about equally many rows (XGBoost's `hist`). Missing values
//! (null, NaN) have their own bin, [`MISSING_BIN`].

use crate::training::gbdt::sketch::FeatureSketch;

/// The bin of a null or NaN value.
pub const MISSING_BIN: u16 = u16::MAX;

/// Cut points from a feature's sketch; at most `max_bins − 1` of them.
pub fn cuts_from_sketch(sketch: &FeatureSketch, max_bins: usize) -> Vec<f32> {
    // ±inf are values like any other for binning (−inf lands in bin 0, +inf in
    // the top bin), but never a cut: a split condition must be a finite number.
    let values: Vec<(f32, u64)> = sketch
        .sorted_values()
        .into_iter()
        .filter(|(v, _)| v.is_finite())
        .collect();
    if values.len() <= max_bins {
        return values.iter().skip(1).map(|(v, _)| *v).collect();
    }
    let total: u128 = values.iter().map(|(_, c)| u128::from(*c)).sum();
    let bins = max_bins as u128;
    let mut cuts = Vec::with_capacity(max_bins);
    let mut before: u128 = 0; // rows with a smaller value than values[i]
    let mut next = 1u128; // the next quantile j/bins to place
    for (value, count) in &values {
        // Place a cut at this value if the rows below it reach quantile `next`.
        if next < bins && before * bins >= next * total {
            if cuts.last() != Some(value) && before > 0 {
                cuts.push(*value);
            }
            while next < bins && before * bins >= next * total {
                next += 1;
            }
        }
        before += u128::from(*count);
    }
    cuts
}

/// The bin of a value.
#[inline]
pub fn bin_of(cuts: &[f32], value: f64) -> u16 {
    let v = value as f32;
    if v.is_nan() {
        MISSING_BIN
    } else {
        // The number of cuts <= v; at most 65 534 cuts, so it fits.
        cuts.partition_point(|c| *c <= v) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_one_bin_each() {
        let mut s = FeatureSketch::new(64);
        for v in [3.0, 1.0, 2.0, 2.0] {
            s.add(Some(v));
        }
        let cuts = cuts_from_sketch(&s, 256);
        assert_eq!(cuts, vec![2.0, 3.0]);
        assert_eq!(
            [
                bin_of(&cuts, 1.0),
                bin_of(&cuts, 2.0),
                bin_of(&cuts, 2.5),
                bin_of(&cuts, 9.0)
            ],
            [0, 1, 1, 2]
        );
        assert_eq!(bin_of(&cuts, f64::NAN), MISSING_BIN);
    }

    #[test]
    fn infinities_are_never_cuts() {
        let mut s = FeatureSketch::new(64);
        for v in [f64::NEG_INFINITY, 1.0, 2.0, f64::INFINITY, 1e300] {
            s.add(Some(v));
        }
        let cuts = cuts_from_sketch(&s, 256);
        assert_eq!(cuts, vec![2.0]);
        assert_eq!(bin_of(&cuts, f64::INFINITY), 1);
        assert_eq!(bin_of(&cuts, f64::NEG_INFINITY), 0);
    }

    #[test]
    fn many_values_get_equal_weight_bins() {
        let mut s = FeatureSketch::new(1 << 16);
        for i in 0..10_000 {
            s.add(Some(f64::from(i)));
        }
        let cuts = cuts_from_sketch(&s, 4);
        assert_eq!(cuts, vec![2500.0, 5000.0, 7500.0]);
    }
}
