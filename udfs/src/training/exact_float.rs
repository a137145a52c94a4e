//! Floats in driver messages, sent as bit patterns.
//!
//! The driver sends leaf values, cut points and coefficients to aggregates
//! as JSON text. Decimal text parsed back is not guaranteed to give the same
//! float (serde_json's fast path can be one ulp off), and one ulp in a margin
//! changes quantised gradients — the trees of `ember train` would then differ
//! from `train_gbdt`'s on the same rows. Bit patterns make the round trip exact.

/// `f64` as its `u64` bit pattern.
pub mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bit pattern.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.to_bits())
    }

    /// Reads the bit pattern.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        u64::deserialize(deserializer).map(f64::from_bits)
    }
}

/// Encodes `f32` values as a JSON list of bit patterns.
pub fn f32s_to_json(values: &[f32]) -> String {
    let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
    serde_json::Value::from(bits).to_string()
}

/// Decodes a list written by [`f32s_to_json`].
pub fn f32s_from_json(text: &str) -> Result<Vec<f32>, serde_json::Error> {
    serde_json::from_str::<Vec<u32>>(text)
        .map(|bits| bits.into_iter().map(f32::from_bits).collect())
}

/// Encodes `f64` values as a JSON list of bit patterns.
pub fn f64s_to_json(values: &[f64]) -> String {
    let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    serde_json::Value::from(bits).to_string()
}

/// Decodes a list written by [`f64s_to_json`].
pub fn f64s_from_json(text: &str) -> Result<Vec<f64>, serde_json::Error> {
    serde_json::from_str::<Vec<u64>>(text)
        .map(|bits| bits.into_iter().map(f64::from_bits).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_exact() {
        let values = [0.1_f64, -1e-300, 123_456.789_012_345_67, f64::MAX];
        assert_eq!(f64s_from_json(&f64s_to_json(&values)).unwrap(), values);
        let cuts = [0.1_f32, 3.402_823_5e38, -7.5e-39];
        assert_eq!(f32s_from_json(&f32s_to_json(&cuts)).unwrap(), cuts);
    }
}
