//! `fit_quantiles(x, n_buckets)`: cut points for equal-frequency buckets.
//!
//! Returns `{"cuts":[c1,…]}`: the exact quantiles at `i / n_buckets`, `i = 1 …
//! n_buckets - 1`, of the non-null, non-NaN values, with numpy's default
//! definition (`numpy.quantile(values, i / n, method="linear")`): for `N`
//! sorted values `v[0] ≤ … ≤ v[N-1]`, the position `h = (N - 1) · i / n` —
//! computed exactly, as integers — gives `v[⌊h⌋] + (h - ⌊h⌋) · (v[⌊h⌋+1] -
//! v[⌊h⌋])` (interpolated with numpy's `_lerp`). Cuts that do not exceed the
//! smallest value or the previous cut are dropped, so the list is strictly
//! increasing, at most `n_buckets - 1` long, and every bucket
//! [`quantile_bucket`](super::quantile_bucket) can return receives at least
//! one fitted value. This is the binning of scikit-learn's
//! `KBinsDiscretizer(strategy="quantile")` and pandas' `qcut`.
//!
//! Exact quantiles need every value: the state is the values, a
//! `List<Float64>` per partition, merged by concatenation and sorted once —
//! the result does not depend on partitioning.

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};
use serde::{Deserialize, Serialize};

use super::args::{
    check_arity, coerce_float, coerce_integer, extend_from_f64_lists, f64_list_field,
    f64_list_state, for_each_finite, json_result, literal_integer, no_values,
};

const NAME: &str = "fit_quantiles";
/// The most buckets: more cut points than this are no longer a feature.
const MAX_BUCKETS: i64 = 1_000_000;

/// The parameters `fit_quantiles` returns and `quantile_bucket` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileParams {
    /// Strictly increasing cut points.
    pub cuts: Vec<f64>,
}

/// The `fit_quantiles` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitQuantiles {
    signature: Signature,
}

impl Default for FitQuantiles {
    fn default() -> Self {
        Self::new()
    }
}

impl FitQuantiles {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FitQuantiles {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 2, 2, "(x, n_buckets)")?;
        Ok(vec![
            coerce_float(NAME, "x", &arg_types[0])?,
            coerce_integer(NAME, "n_buckets", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![f64_list_field(format!("{}[values]", args.name))])
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let n_buckets = match literal_integer(NAME, "n_buckets", acc_args.exprs.get(1))? {
            Some(n @ 1..=MAX_BUCKETS) => n as u64,
            Some(n) => {
                return plan_err!(
                    "{NAME}: argument 'n_buckets' must be between 1 and {MAX_BUCKETS}, got {n}"
                );
            }
            None => return plan_err!("{NAME}: missing argument 'n_buckets'"),
        };
        Ok(Box::new(QuantilesAccumulator::new(n_buckets)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            DocumentationBuilder::new_with_details(
                DocSection {
                    include: true,
                    label: "Ember Feature Functions",
                    description: None,
                },
                "Fits equal-frequency buckets: returns the JSON object {\"cuts\":[…]} with at most \
                 n_buckets - 1 strictly increasing cut points, the exact quantiles i/n_buckets of \
                 the non-null, non-NaN values (numpy.quantile, method 'linear'). Cuts equal to the \
                 minimum or to the previous cut are dropped. Fitting on no value is an error. \
                 Apply it with quantile_bucket.",
                "fit_quantiles(x, n_buckets)",
            )
            .with_sql_example("SELECT fit_quantiles(income, 10) FROM customers")
            .with_argument("x", "Numeric expression to fit.")
            .with_argument(
                "n_buckets",
                "Constant integer, 1 to 1000000: the number of buckets.",
            )
            .build()
        }))
    }
}

/// Every value seen.
#[derive(Debug)]
pub struct QuantilesAccumulator {
    n_buckets: u64,
    values: Vec<f64>,
}

impl QuantilesAccumulator {
    /// An empty accumulator for `n_buckets` buckets.
    pub fn new(n_buckets: u64) -> Self {
        Self {
            n_buckets,
            values: Vec::new(),
        }
    }
}

/// numpy's `_lerp(a, b, t)`: exact at both ends and monotonic in `t`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t < 0.5 {
        a + diff * t
    } else {
        b - diff * (1.0 - t)
    }
}

/// The cut points of `sorted` (ascending, non-empty) for `n` buckets.
pub fn cuts(sorted: &[f64], n: u64) -> Vec<f64> {
    let Some(&min) = sorted.first() else {
        return Vec::new();
    };
    let last = (sorted.len() - 1) as u128;
    let n128 = u128::from(n);
    let mut cuts: Vec<f64> = Vec::new();
    for i in 1..n {
        // h = last · i / n, as the integer part j and the remainder r / n.
        let h = last * u128::from(i);
        let (j, r) = ((h / n128) as usize, h % n128);
        let cut = if r == 0 {
            sorted[j]
        } else {
            lerp(sorted[j], sorted[j + 1], r as f64 / n as f64)
        };
        if cut > *cuts.last().unwrap_or(&min) {
            cuts.push(cut);
        }
    }
    cuts
}

impl Accumulator for QuantilesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("{NAME}: missing argument 'x'");
        };
        for_each_finite(NAME, "x", x, |v| self.values.push(v))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(values) = states.first() else {
            return exec_err!("{NAME}: missing state");
        };
        extend_from_f64_lists(NAME, values, &mut self.values)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![f64_list_state(&self.values)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return no_values(NAME, "x");
        }
        self.values.sort_unstable_by(f64::total_cmp);
        json_result(
            NAME,
            &QuantileParams {
                cuts: cuts(&self.values, self.n_buckets),
            },
        )
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 8 * self.values.capacity()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;
    use std::sync::Arc;

    fn fitted(n: u64, parts: &[Vec<Option<f64>>]) -> Result<String> {
        let mut merged = QuantilesAccumulator::new(n);
        for part in parts {
            let mut partial = QuantilesAccumulator::new(n);
            let array: ArrayRef = Arc::new(Float64Array::from(part.clone()));
            partial.update_batch(&[array])?;
            let state: Vec<ArrayRef> = partial
                .state()?
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state)?;
        }
        Ok(merged
            .evaluate()?
            .try_as_str()
            .flatten()
            .unwrap()
            .to_string())
    }

    #[test]
    fn quartiles_of_one_to_ten_by_hand() {
        // h = 9 i / 4 = 2.25, 4.5, 6.75: 3 + 0.25, 5 + 0.5, 7 + 0.75
        // (numpy.quantile(range(1, 11), [.25, .5, .75]) = [3.25, 5.5, 7.75]).
        let values: Vec<Option<f64>> = (1..=10).rev().map(|v| Some(f64::from(v))).collect();
        assert_eq!(fitted(4, &[values]).unwrap(), r#"{"cuts":[3.25,5.5,7.75]}"#);
    }

    #[test]
    fn exact_positions_and_nulls() {
        // Five values, two buckets: h = 4 / 2 = 2, the middle value exactly.
        let values = vec![
            Some(10.0),
            None,
            Some(30.0),
            Some(f64::NAN),
            Some(20.0),
            Some(0.0),
            Some(40.0),
        ];
        assert_eq!(fitted(2, &[values]).unwrap(), r#"{"cuts":[20.0]}"#);
    }

    #[test]
    fn ties_drop_repeated_and_minimum_cuts() {
        // Sorted 0 0 0 0 1: quartile positions 1, 2, 3 all land on 0, the minimum.
        let values = vec![Some(0.0), Some(1.0), Some(0.0), Some(0.0), Some(0.0)];
        assert_eq!(fitted(4, &[values]).unwrap(), r#"{"cuts":[]}"#);
        // Sorted 0 1 1 1 1: every cut is 1, kept once.
        let values = vec![Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0)];
        assert_eq!(fitted(4, &[values]).unwrap(), r#"{"cuts":[1.0]}"#);
    }

    #[test]
    fn one_bucket_or_one_value_has_no_cuts() {
        assert_eq!(
            fitted(1, &[vec![Some(1.0), Some(2.0)]]).unwrap(),
            r#"{"cuts":[]}"#
        );
        assert_eq!(fitted(5, &[vec![Some(3.0)]]).unwrap(), r#"{"cuts":[]}"#);
    }

    #[test]
    fn merged_partial_states_give_the_same_json() {
        let values: Vec<Option<f64>> = (0..97)
            .map(|i| Some(f64::from((i * 31) % 97) * 0.7))
            .collect();
        let whole = fitted(7, std::slice::from_ref(&values)).unwrap();
        let split = fitted(
            7,
            &[values[50..].to_vec(), vec![None], values[..50].to_vec()],
        )
        .unwrap();
        assert_eq!(whole, split);
    }

    #[test]
    fn no_values_is_an_error() {
        let err = fitted(3, &[vec![None]]).unwrap_err().to_string();
        assert!(err.contains("fit_quantiles: argument 'x' has no"), "{err}");
    }
}
