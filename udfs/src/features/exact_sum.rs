//! Exact sums of `f64` values and of their squares, for fits that must not
//! depend on partitioning.
//!
//! Floating-point addition is not associative: a mean summed partition by
//! partition and then merged depends on how the rows were split, so the same
//! table fitted on two clusters would give two scalers. [`ExactSum`] adds every
//! finite value exactly, as an integer multiple of 2^-1074 (the smallest
//! subnormal), and every square as a multiple of 2^-2148. Integer addition is
//! associative, so partial sums merge in any order to the same total, and the
//! mean and the population variance are each rounded once, correctly, from
//! those exact totals — the same result for any split of the rows, and no
//! cancellation in `n·Σx² − (Σx)²`.
//!
//! The integers are kept as a window of 64-bit words around the bits the values
//! touched: data of one order of magnitude needs two or three words per sum.

use datafusion::common::{Result, exec_err};

/// Bit position of 2^0 in the sum of values (values are multiples of 2^-1074).
const VALUE_SCALE: i32 = 1074;
/// Bit position of 2^0 in the sum of squares.
const SQUARE_SCALE: i32 = 2 * VALUE_SCALE;

/// An unsigned integer: little-endian 64-bit words, of which only a window
/// starting at word `base` is stored (the words below it are zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Window {
    base: usize,
    words: Vec<u64>,
}

impl Window {
    /// Adds `word` at word position `at`, carrying upwards.
    fn add_word(&mut self, at: usize, word: u64) {
        if word == 0 {
            return;
        }
        if self.words.is_empty() {
            self.base = at;
        } else if at < self.base {
            let mut grown = vec![0; self.base - at];
            grown.extend_from_slice(&self.words);
            self.words = grown;
            self.base = at;
        }
        let mut i = at - self.base;
        let mut carry = word;
        while carry != 0 {
            if i >= self.words.len() {
                self.words.resize(i + 1, 0);
            }
            let (sum, overflow) = self.words[i].overflowing_add(carry);
            self.words[i] = sum;
            carry = u64::from(overflow);
            i += 1;
        }
    }

    /// Adds `value · 2^bit`.
    fn add_shifted(&mut self, value: u128, bit: usize) {
        let (at, offset) = (bit / 64, bit % 64);
        let low = value as u64;
        let high = (value >> 64) as u64;
        if offset == 0 {
            self.add_word(at, low);
            self.add_word(at + 1, high);
        } else {
            self.add_word(at, low << offset);
            self.add_word(at + 1, (high << offset) | (low >> (64 - offset)));
            self.add_word(at + 2, high >> (64 - offset));
        }
    }

    fn add(&mut self, other: &Window) {
        for (i, word) in other.words.iter().enumerate() {
            self.add_word(other.base + i, *word);
        }
    }

    /// The whole integer, from word 0.
    fn to_dense(&self) -> Vec<u64> {
        let mut dense = vec![0; self.base];
        dense.extend_from_slice(&self.words);
        trim(&mut dense);
        dense
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.base as u64).to_le_bytes());
        out.extend_from_slice(&(self.words.len() as u64).to_le_bytes());
        for word in &self.words {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }

    fn read(function: &str, input: &mut &[u8]) -> Result<Self> {
        let base = take_u64(function, input)?;
        let len = take_u64(function, input)?;
        // No sum has more than a few hundred words; anything bigger is a corrupt state.
        if base > 1024 || len > 1024 {
            return exec_err!("{function}: corrupt exact-sum state (window {base}+{len})");
        }
        let mut words = Vec::with_capacity(len as usize);
        for _ in 0..len {
            words.push(take_u64(function, input)?);
        }
        Ok(Self {
            base: base as usize,
            words,
        })
    }
}

fn take_u64(function: &str, input: &mut &[u8]) -> Result<u64> {
    let Some((head, rest)) = input.split_first_chunk::<8>() else {
        return exec_err!("{function}: truncated exact-sum state");
    };
    *input = rest;
    Ok(u64::from_le_bytes(*head))
}

/// The exact count, sum and sum of squares of finite `f64` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactSum {
    count: u64,
    positive: Window,
    negative: Window,
    squares: Window,
}

impl ExactSum {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes held on the heap.
    pub fn heap_size(&self) -> usize {
        8 * (self.positive.words.capacity()
            + self.negative.words.capacity()
            + self.squares.words.capacity())
    }

    /// Adds a finite value (the caller rejects infinities and skips NaN).
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let bits = x.abs().to_bits();
        let exponent = (bits >> 52) as usize;
        let fraction = bits & ((1 << 52) - 1);
        // x = mantissa · 2^(position - 1074), position in 0..=2045.
        let (mantissa, position) = if exponent == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << 52), exponent - 1)
        };
        if mantissa == 0 {
            return;
        }
        let m = u128::from(mantissa);
        if x < 0.0 {
            self.negative.add_shifted(m, position);
        } else {
            self.positive.add_shifted(m, position);
        }
        self.squares.add_shifted(m * m, 2 * position);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &ExactSum) {
        self.count += other.count;
        self.positive.add(&other.positive);
        self.negative.add(&other.negative);
        self.squares.add(&other.squares);
    }

    /// The mean, correctly rounded; `None` when no value was added.
    pub fn mean(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let (negative, magnitude) = self.signed_sum();
        // Σ·2^128 / n has at least 64 significant bits, enough to round once.
        let (quotient, remainder) = div_small(&shift_words(&magnitude, 2), self.count);
        let mean = round_to_f64(&quotient, -VALUE_SCALE - 128, remainder != 0);
        Some(if negative { -mean } else { mean })
    }

    /// The population variance `(n·Σx² − (Σx)²) / n²`, correctly rounded;
    /// `None` when no value was added.
    pub fn variance(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let (_, sum) = self.signed_sum();
        let scaled_squares = mul_small(&self.squares.to_dense(), self.count);
        let numerator = sub(&scaled_squares, &mul(&sum, &sum));
        // floor(floor(a/n)/n) = floor(a/n²); the result is exact iff both divisions are.
        let (q1, r1) = div_small(&shift_words(&numerator, 4), self.count);
        let (q2, r2) = div_small(&q1, self.count);
        Some(round_to_f64(&q2, -SQUARE_SCALE - 256, r1 != 0 || r2 != 0))
    }

    /// The sign and magnitude of Σx (as a multiple of 2^-1074).
    fn signed_sum(&self) -> (bool, Vec<u64>) {
        let positive = self.positive.to_dense();
        let negative = self.negative.to_dense();
        if cmp(&positive, &negative) == std::cmp::Ordering::Less {
            (true, sub(&negative, &positive))
        } else {
            (false, sub(&positive, &negative))
        }
    }

    /// The state as bytes (see [`ExactSum::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            8 + 48
                + 8 * (self.positive.words.len()
                    + self.negative.words.len()
                    + self.squares.words.len()),
        );
        out.extend_from_slice(&self.count.to_le_bytes());
        self.positive.write(&mut out);
        self.negative.write(&mut out);
        self.squares.write(&mut out);
        out
    }

    /// Reads a state written by [`ExactSum::to_bytes`]; `function` names the
    /// caller in errors.
    pub fn from_bytes(function: &str, bytes: &[u8]) -> Result<Self> {
        let mut input = bytes;
        let count = take_u64(function, &mut input)?;
        let positive = Window::read(function, &mut input)?;
        let negative = Window::read(function, &mut input)?;
        let squares = Window::read(function, &mut input)?;
        if !input.is_empty() {
            return exec_err!(
                "{function}: corrupt exact-sum state ({} trailing bytes)",
                input.len()
            );
        }
        Ok(Self {
            count,
            positive,
            negative,
            squares,
        })
    }
}

fn trim(words: &mut Vec<u64>) {
    while words.last() == Some(&0) {
        words.pop();
    }
}

fn cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    // Both trimmed: the longer is larger.
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

/// `a - b` for `a >= b`.
fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = false;
    for (i, word) in a.iter().enumerate() {
        let (d1, b1) = word.overflowing_sub(b.get(i).copied().unwrap_or(0));
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        out.push(d2);
        borrow = b1 || b2;
    }
    trim(&mut out);
    out
}

fn mul(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = vec![0_u64; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        let mut carry = 0_u128;
        for (j, y) in b.iter().enumerate() {
            let t = u128::from(*x) * u128::from(*y) + u128::from(out[i + j]) + carry;
            out[i + j] = t as u64;
            carry = t >> 64;
        }
        out[i + b.len()] = carry as u64;
    }
    trim(&mut out);
    out
}

fn mul_small(a: &[u64], k: u64) -> Vec<u64> {
    mul(a, &[k])
}

/// `a · 2^(64·words)`.
fn shift_words(a: &[u64], words: usize) -> Vec<u64> {
    if a.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0; words];
    out.extend_from_slice(a);
    out
}

/// `(a / d, a % d)` for `d > 0`.
fn div_small(a: &[u64], d: u64) -> (Vec<u64>, u64) {
    let mut quotient = vec![0_u64; a.len()];
    let mut remainder = 0_u128;
    for i in (0..a.len()).rev() {
        let current = (remainder << 64) | u128::from(a[i]);
        quotient[i] = (current / u128::from(d)) as u64;
        remainder = current % u128::from(d);
    }
    trim(&mut quotient);
    (quotient, remainder as u64)
}

fn bit_len(a: &[u64]) -> usize {
    match a.last() {
        None => 0,
        Some(top) => 64 * a.len() - top.leading_zeros() as usize,
    }
}

fn bit(a: &[u64], i: usize) -> bool {
    a.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
}

/// `a >> shift`, of which the caller knows at most 64 bits remain.
fn low_word_after_shift(a: &[u64], shift: usize) -> u64 {
    let (at, offset) = (shift / 64, shift % 64);
    let low = a.get(at).copied().unwrap_or(0);
    let high = a.get(at + 1).copied().unwrap_or(0);
    if offset == 0 {
        low
    } else {
        (low >> offset) | (high << (64 - offset))
    }
}

/// `a · 2^exponent (+ a positive amount below 2^exponent when `inexact`)`,
/// rounded to the nearest `f64`, ties to even.
fn round_to_f64(a: &[u64], exponent: i32, inexact: bool) -> f64 {
    let len = bit_len(a) as i32;
    if len == 0 {
        return 0.0;
    }
    // The weight of the result's last mantissa bit: 53 bits, or fewer for a subnormal.
    let lsb = (exponent + len - 53).max(-1074);
    let shift = lsb - exponent;
    if shift <= 0 {
        // Fewer than 53 bits: exact (callers keep at least 64 bits, so unused).
        return ldexp(low_word_after_shift(a, 0) as f64, exponent);
    }
    let shift = shift as usize;
    let mut mantissa = low_word_after_shift(a, shift);
    let round = bit(a, shift - 1);
    let sticky = inexact || (0..shift - 1).any(|i| bit(a, i));
    if round && (sticky || mantissa & 1 == 1) {
        mantissa += 1;
    }
    ldexp(mantissa as f64, lsb)
}

/// `x · 2^k`, exact whenever the result is representable.
fn ldexp(mut x: f64, mut k: i32) -> f64 {
    fn pow2(k: i32) -> f64 {
        // k in -1022..=1023: a normal power of two.
        f64::from_bits(((k + 1023) as u64) << 52)
    }
    while k > 1023 {
        x *= pow2(1023);
        k -= 1023;
    }
    while k < -1022 {
        x *= pow2(-1022);
        k += 1022;
    }
    x * pow2(k)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sum_of(values: &[f64]) -> ExactSum {
        let mut s = ExactSum::new();
        for v in values {
            s.add(*v);
        }
        s
    }

    #[test]
    fn mean_and_variance_of_small_integers() {
        let s = sum_of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean(), Some(2.5));
        assert_eq!(s.variance(), Some(1.25));
        assert_eq!(s.count(), 4);
        assert_eq!(ExactSum::new().mean(), None);
    }

    #[test]
    fn negative_and_mixed_values() {
        let s = sum_of(&[-3.0, 1.0]);
        assert_eq!(s.mean(), Some(-1.0));
        assert_eq!(s.variance(), Some(4.0));
        assert_eq!(sum_of(&[0.0, -0.0]).mean(), Some(0.0));
    }

    #[test]
    fn no_cancellation_where_floats_lose_everything() {
        // 1e16 + 1 - 1e16 is 0 in floats; the exact mean of three values is 1/3.
        let s = sum_of(&[1e16, 1.0, -1e16]);
        assert_eq!(s.mean(), Some(1.0 / 3.0));
        // Variance of {1e9, 1e9 + 1}: 0.25 exactly, lost by the naive formula.
        let s = sum_of(&[1e9, 1e9 + 1.0]);
        assert_eq!(s.variance(), Some(0.25));
    }

    #[test]
    fn correctly_rounded_one_tenth() {
        // 0.1 + 0.2 + 0.3 in floats is 0.6000000000000001; exactly it is the
        // sum of the three doubles, whose mean rounds to 0.2.
        let s = sum_of(&[0.1, 0.2, 0.3]);
        assert_eq!(s.mean(), Some(0.2));
    }

    #[test]
    fn subnormals_and_extremes() {
        let tiny = f64::from_bits(1);
        assert_eq!(sum_of(&[tiny, tiny]).mean(), Some(tiny));
        assert_eq!(sum_of(&[tiny]).variance(), Some(0.0));
        assert_eq!(sum_of(&[f64::MAX, f64::MAX]).mean(), Some(f64::MAX));
        assert_eq!(
            sum_of(&[f64::MIN_POSITIVE * 3.0]).mean(),
            Some(f64::MIN_POSITIVE * 3.0)
        );
    }

    #[test]
    fn merge_is_independent_of_split_and_order() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.001 + 1e6 * ((i % 3) as f64 - 1.0))
            .collect();
        let whole = sum_of(&values);
        for split in [1, 17, 500, 999] {
            let mut a = sum_of(&values[split..]);
            let b = sum_of(&values[..split]);
            a.merge(&b);
            assert_eq!(a.mean(), whole.mean());
            assert_eq!(a.variance(), whole.variance());
        }
    }

    #[test]
    fn bytes_round_trip() {
        let s = sum_of(&[1.5, -2.25, 1e300, 3e-310]);
        let back = ExactSum::from_bytes("t", &s.to_bytes()).unwrap();
        assert_eq!(back, s);
        assert!(ExactSum::from_bytes("t", &[1, 2, 3]).is_err());
    }
}
