//! A deterministic, mergeable summary of a feature's values, for choosing bins.
//!
//! Histogram bins must be the same however the data is split across
//! partitions, or a cluster would train different trees than one process.
//! Sketches whose result depends on insertion order (t-digest, GK) cannot
//! promise that. This one keeps *exact counts* of distinct values (as `f32`,
//! the precision XGBoost trains and scores in); when a feature has more than
//! `capacity` distinct values it keeps only those whose hash is among the
//! `capacity` smallest — a uniform sample of the distinct values, still with
//! exact counts. A value in the global sample is in every partition's sample,
//! so the merged result is identical for every split and merge order.
//! Weighted quantiles of the sample give the cut points ([`super::cuts`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::training::error::{TrainError, TrainResult};

/// Distinct values kept per feature before sampling starts.
pub const DEFAULT_CAPACITY: usize = 1 << 15;

/// A multiplicative hasher for the `u32` keys (SipHash is needlessly slow here).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Counts = HashMap<u32, u64, BuildHasherDefault<KeyHasher>>;

/// The sampling order of a value: a well-mixed hash, ties broken by the bits.
#[inline]
fn rank(bits: u32) -> (u64, u32) {
    let mut z = u64::from(bits).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31), bits)
}

/// The `f32` bit pattern a value is counted under (−0 counted as +0).
#[inline]
pub fn key(x: f64) -> Option<u32> {
    let v = x as f32;
    if v.is_nan() {
        None
    } else if v == 0.0 {
        Some(0)
    } else {
        Some(v.to_bits())
    }
}

/// The summary of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSketch {
    counts: Counts,
    /// Values ranked above this are not kept (set once sampling started).
    threshold: Option<(u64, u32)>,
    /// Rows whose value was null or NaN.
    pub missing: u64,
    capacity: usize,
}

impl FeatureSketch {
    /// An empty sketch keeping up to `capacity` distinct values.
    pub fn new(capacity: usize) -> Self {
        Self {
            counts: Counts::default(),
            threshold: None,
            missing: 0,
            capacity: capacity.max(16),
        }
    }

    /// Adds one value (`None` = missing).
    #[inline]
    pub fn add(&mut self, value: Option<f64>) {
        match value.and_then(key) {
            None => self.missing += 1,
            Some(bits) => self.add_count(bits, 1),
        }
    }

    fn add_count(&mut self, bits: u32, count: u64) {
        if let Some(t) = self.threshold
            && rank(bits) > t
        {
            return;
        }
        *self.counts.entry(bits).or_insert(0) += count;
        if self.counts.len() > 2 * self.capacity {
            self.shrink_to(self.capacity);
        }
    }

    /// Keeps the `keep` lowest-ranked values and never admits higher ranks again.
    fn shrink_to(&mut self, keep: usize) {
        if self.counts.len() <= keep {
            return;
        }
        let mut ranks: Vec<(u64, u32)> = self.counts.keys().map(|b| rank(*b)).collect();
        let (_, nth, _) = ranks.select_nth_unstable(keep - 1);
        let t = *nth;
        self.threshold = Some(self.threshold.map_or(t, |old| old.min(t)));
        self.counts.retain(|bits, _| rank(*bits) <= t);
    }

    /// Merges another partial sketch (any order gives the same final result).
    pub fn merge(&mut self, other: &FeatureSketch) {
        self.missing += other.missing;
        if let Some(t) = other.threshold {
            self.threshold = Some(self.threshold.map_or(t, |old| old.min(t)));
            let t = self.threshold.unwrap_or(t);
            self.counts.retain(|bits, _| rank(*bits) <= t);
        }
        for (bits, count) in &other.counts {
            self.add_count(*bits, *count);
        }
    }

    /// The kept values with their counts, ascending by value (after the final
    /// trim to `capacity`, which makes the result independent of merge order).
    pub fn sorted_values(&self) -> Vec<(f32, u64)> {
        let mut final_sketch = self.clone();
        final_sketch.shrink_to(self.capacity);
        let mut values: Vec<(f32, u64)> = final_sketch
            .counts
            .iter()
            .map(|(b, c)| (f32::from_bits(*b), *c))
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        values
    }

    /// Whether the feature had too many distinct values to count them all.
    pub fn is_sampled(&self) -> bool {
        self.threshold.is_some()
    }

    /// Serialises the sketch for an aggregate's state.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.missing.to_le_bytes());
        out.extend_from_slice(&(self.capacity as u64).to_le_bytes());
        match self.threshold {
            None => out.push(0),
            Some((h, b)) => {
                out.push(1);
                out.extend_from_slice(&h.to_le_bytes());
                out.extend_from_slice(&b.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.counts.len() as u64).to_le_bytes());
        let mut entries: Vec<(&u32, &u64)> = self.counts.iter().collect();
        entries.sort_unstable();
        for (bits, count) in entries {
            out.extend_from_slice(&bits.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
    }

    /// Reads a sketch written by [`Self::to_bytes`], advancing `input`.
    pub fn from_bytes(function: &'static str, input: &mut &[u8]) -> TrainResult<Self> {
        let missing = take_u64(function, input)?;
        let capacity =
            usize::try_from(take_u64(function, input)?).map_err(|_| bad(function, "capacity"))?;
        let threshold = match take(function, input, 1)?[0] {
            0 => None,
            _ => {
                let h = take_u64(function, input)?;
                let b = u32::from_le_bytes(
                    take(function, input, 4)?
                        .try_into()
                        .map_err(|_| bad(function, "threshold"))?,
                );
                Some((h, b))
            }
        };
        let n = usize::try_from(take_u64(function, input)?).map_err(|_| bad(function, "length"))?;
        if n > input.len() / 12 {
            return Err(bad(function, "length"));
        }
        let mut counts = Counts::default();
        counts.reserve(n);
        for _ in 0..n {
            let bits = u32::from_le_bytes(
                take(function, input, 4)?
                    .try_into()
                    .map_err(|_| bad(function, "value"))?,
            );
            counts.insert(bits, take_u64(function, input)?);
        }
        Ok(Self {
            counts,
            threshold,
            missing,
            capacity: capacity.max(16),
        })
    }
}

fn bad(function: &'static str, what: &str) -> TrainError {
    TrainError::Message {
        function,
        reason: format!("sketch {what} is truncated or invalid"),
    }
}

/// Takes `n` bytes off the front of `input`.
pub(crate) fn take<'a>(
    function: &'static str,
    input: &mut &'a [u8],
    n: usize,
) -> TrainResult<&'a [u8]> {
    if input.len() < n {
        return Err(bad(function, "data"));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

/// Takes a little-endian `u64` off the front of `input`.
pub(crate) fn take_u64(function: &'static str, input: &mut &[u8]) -> TrainResult<u64> {
    let bytes = take(function, input, 8)?;
    Ok(u64::from_le_bytes(
        bytes.try_into().map_err(|_| bad(function, "number"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(values: &[f64], capacity: usize) -> FeatureSketch {
        let mut s = FeatureSketch::new(capacity);
        values.iter().for_each(|v| s.add(Some(*v)));
        s
    }

    #[test]
    fn merge_order_does_not_change_the_result() {
        let values: Vec<f64> = (0..20_000)
            .map(|i| ((f64::from(i) * 0.618).fract() * 1000.0).floor() + f64::from(i % 3) / 7.0)
            .collect();
        let whole = sketch_of(&values, 64);
        let mut parts: Vec<FeatureSketch> =
            values.chunks(3_001).map(|c| sketch_of(c, 64)).collect();
        let mut forward = FeatureSketch::new(64);
        parts.iter().for_each(|p| forward.merge(p));
        parts.reverse();
        let mut backward = FeatureSketch::new(64);
        parts.iter().for_each(|p| backward.merge(p));
        assert!(whole.is_sampled());
        assert_eq!(whole.sorted_values(), forward.sorted_values());
        assert_eq!(forward.sorted_values(), backward.sorted_values());
        assert_eq!(whole.sorted_values().len(), 64);
    }

    #[test]
    fn small_features_are_counted_exactly_and_round_trip() {
        let mut s = sketch_of(&[1.0, 2.0, 2.0, -0.0, 0.0], 64);
        s.add(None);
        s.add(Some(f64::NAN));
        assert_eq!(s.sorted_values(), vec![(0.0, 2), (1.0, 1), (2.0, 2)]);
        assert_eq!(s.missing, 2);
        let mut bytes = Vec::new();
        s.to_bytes(&mut bytes);
        let back = FeatureSketch::from_bytes("t", &mut bytes.as_slice()).unwrap();
        assert_eq!(back.sorted_values(), s.sorted_values());
        assert!(FeatureSketch::from_bytes("t", &mut &bytes[..bytes.len() - 3]).is_err());
    }
}
