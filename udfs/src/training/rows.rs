//! Rows kept by a per-group training aggregate until the group is complete.
//!
//! Iterative trainers (logistic regression, boosting) need a group's rows
//! more than once, so their accumulators keep them: labels and features as
//! `f64` columns (a missing feature is NaN), serialised into the aggregate's
//! state for the merge step. Rows with a null label are not kept — they carry
//! nothing to learn from — and a NaN or infinite label is an error naming the
//! label column.

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::Float64Type;
use datafusion::common::{Result, ScalarValue, exec_err};

use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::booster::check_label;
use crate::training::gbdt::sketch::{take, take_u64};

/// A group's rows, column-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBuffer {
    /// One label per row.
    pub labels: Vec<f64>,
    /// `columns[f][r]`: feature `f` of row `r`, NaN if missing.
    pub columns: Vec<Vec<f64>>,
}

impl RowBuffer {
    /// An empty buffer of `features` columns.
    pub fn new(features: usize) -> Self {
        Self {
            labels: Vec::new(),
            columns: vec![Vec::new(); features],
        }
    }

    /// Appends the rows of a batch: `values[0]` the label, `values[1..=d]` the
    /// features (all `Float64` after coercion).
    pub fn append(
        &mut self,
        function: &'static str,
        label_name: &str,
        values: &[ArrayRef],
    ) -> TrainResult<()> {
        let d = self.columns.len();
        let label = values[0].as_primitive::<Float64Type>();
        let features: Vec<_> = values[1..=d]
            .iter()
            .map(|v| v.as_primitive::<Float64Type>())
            .collect();
        for r in 0..label.len() {
            if label.is_null(r) {
                continue;
            }
            let y = label.value(r);
            check_label(function, label_name, y)?;
            self.labels.push(y);
            for (column, feature) in self.columns.iter_mut().zip(&features) {
                column.push(if feature.is_null(r) {
                    f64::NAN
                } else {
                    feature.value(r)
                });
            }
        }
        Ok(())
    }

    /// Appends another buffer.
    pub fn extend(&mut self, other: RowBuffer) {
        self.labels.extend(other.labels);
        for (a, b) in self.columns.iter_mut().zip(other.columns) {
            a.extend(b);
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Heap bytes, for the aggregate's memory accounting.
    pub fn size(&self) -> usize {
        (self.labels.capacity() + self.columns.iter().map(Vec::capacity).sum::<usize>()) * 8
    }

    /// Sorts rows into a canonical order (by label, then features, by total
    /// order), so floating-point sums over them do not depend on how the rows
    /// were split and merged.
    pub fn sort_canonically(&mut self) {
        let n = self.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            self.labels[a].total_cmp(&self.labels[b]).then_with(|| {
                self.columns
                    .iter()
                    .map(|c| c[a].total_cmp(&c[b]))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        self.labels = order.iter().map(|&i| self.labels[i]).collect();
        for column in &mut self.columns {
            *column = order.iter().map(|&i| column[i]).collect();
        }
    }

    /// The buffer as one binary state value.
    pub fn to_state(&self) -> ScalarValue {
        let mut out = Vec::with_capacity(16 + self.len() * (self.columns.len() + 1) * 8);
        out.extend_from_slice(&(self.columns.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for y in &self.labels {
            out.extend_from_slice(&y.to_le_bytes());
        }
        for column in &self.columns {
            for x in column {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        ScalarValue::LargeBinary(Some(out))
    }

    /// Reads a buffer written by [`Self::to_state`].
    pub fn from_state(function: &'static str, bytes: &[u8]) -> TrainResult<Self> {
        let mut input = bytes;
        let d = usize::try_from(take_u64(function, &mut input)?).unwrap_or(usize::MAX);
        let n = usize::try_from(take_u64(function, &mut input)?).unwrap_or(usize::MAX);
        let expected = d
            .checked_add(1)
            .and_then(|k| k.checked_mul(n))
            .and_then(|k| k.checked_mul(8));
        if expected != Some(input.len()) {
            return Err(TrainError::Message {
                function,
                reason: "row buffer has the wrong length".into(),
            });
        }
        let mut floats = |count: usize| -> TrainResult<Vec<f64>> {
            let bytes = take(function, &mut input, count * 8)?;
            Ok(bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect())
        };
        let labels = floats(n)?;
        let columns = (0..d).map(|_| floats(n)).collect::<TrainResult<Vec<_>>>()?;
        Ok(Self { labels, columns })
    }

    /// Merges the binary states of a `merge_batch` call into this buffer.
    pub fn merge_states(&mut self, function: &'static str, states: &[ArrayRef]) -> Result<()> {
        let Some(binary) = states
            .first()
            .and_then(|s| s.as_any().downcast_ref::<LargeBinaryArray>())
        else {
            return exec_err!("{function}: state is not binary");
        };
        for state in binary.iter().flatten() {
            let other = RowBuffer::from_state(function, state)?;
            if other.columns.len() != self.columns.len() {
                return exec_err!(
                    "{function}: state has {} features, expected {}",
                    other.columns.len(),
                    self.columns.len()
                );
            }
            self.extend(other);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::Float64Array;

    #[test]
    fn keeps_labelled_rows_and_round_trips() {
        let mut rows = RowBuffer::new(1);
        let label: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(0.0)]));
        let x: ArrayRef = Arc::new(Float64Array::from(vec![None, Some(2.0), Some(3.0)]));
        rows.append("t", "y", &[label, x]).unwrap();
        assert_eq!(rows.labels, vec![1.0, 0.0]);
        assert!(rows.columns[0][0].is_nan() && rows.columns[0][1] == 3.0);
        let ScalarValue::LargeBinary(Some(bytes)) = rows.to_state() else {
            panic!()
        };
        let back = RowBuffer::from_state("t", &bytes).unwrap();
        assert_eq!(back.labels, rows.labels);
        assert!(RowBuffer::from_state("t", &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_nan_label_is_an_error_naming_the_label() {
        let mut rows = RowBuffer::new(1);
        let label: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN]));
        let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        let err = rows
            .append("train_gbdt", "churned", &[label, x])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("label 'churned'") && err.contains("NaN"),
            "{err}"
        );
    }
}
