//! Feature-engineering functions: transforms applied to raw columns before a
//! model sees them.
//!
//! A transform that learns from data comes as a pair: a **fit** aggregate that
//! returns the fitted parameters as a small JSON object (saved with a run), and
//! an **apply** scalar `f(x, params)` that takes that JSON as a constant string.
//! Fit states merge across partitions and executors, and every fit returns the
//! same JSON for any partitioning. Fits skip nulls (and NaN for numbers); an
//! infinite value, or no usable value at all, is an error. Numbers are coerced
//! to `Float64`; categories are strings, or integers read as decimal text.
//!
//! | function | what it does | returns |
//! |---|---|---|
//! | [`feature_hash`](feature_hash::FeatureHashFunc)`(value [, num_buckets])` | the hashing trick: a category to one of `n` buckets, identical to scikit-learn's `FeatureHasher` | `Int32` |
//! | [`fit_standard_scaler`](fit_standard_scaler::FitStandardScaler)`(x)` | mean and population std (scikit-learn's `StandardScaler`), from exact sums | `{"mean":m,"std":s,"count":n}` |
//! | [`standard_scale`](standard_scale::StandardScaleFunc)`(x, params)` | `(x - mean) / std`; `std = 0` divides by 1 | `Float64` |
//! | [`fit_min_max_scaler`](fit_min_max_scaler::FitMinMaxScaler)`(x)` | the range (scikit-learn's `MinMaxScaler`) | `{"min":a,"max":b}` |
//! | [`min_max_scale`](min_max_scale::MinMaxScaleFunc)`(x, params)` | `(x - min) / (max - min)`, extrapolating outside the range; 0 when `max = min` | `Float64` |
//! | [`fit_imputer`](fit_imputer::FitImputer)`(x, 'mean' \| 'median')` | the mean or the exact median (scikit-learn's `SimpleImputer`) | `{"value":v}` |
//! | [`impute`](impute::ImputeFunc)`(x, params)` | null and NaN replaced by `value`; `'{"value": 0}'` by hand is constant imputation | `Float64` |
//! | [`fit_categories`](fit_categories::FitCategories)`(x [, max_categories])` | distinct values by descending count, then ascending value | `{"categories":[…]}` |
//! | [`ordinal_encode`](ordinal_encode::OrdinalEncodeFunc)`(x, params)` | index in `categories`; unseen → `len(categories)` | `Int32` |
//! | [`one_hot`](one_hot::OneHotFunc)`(x, params)` | one-hot vector, last slot for unseen categories | `List<Float64>` of length `len(categories) + 1` |
//! | [`fit_quantiles`](fit_quantiles::FitQuantiles)`(x, n_buckets)` | exact quantiles `i / n_buckets` (numpy `linear`), strictly increasing | `{"cuts":[…]}` |
//! | [`quantile_bucket`](quantile_bucket::QuantileBucketFunc)`(x, params)` | number of cuts `<= x` | `Int32` in `0..=len(cuts)` |
//! | [`days_since`](days_since::DaysSinceFunc)`(t, reference)` | whole days from `t` to `reference` (cohort age), floored; dates, timestamps, ISO strings | `Int64` |
//! | `date_part(part, t)` / `extract(part FROM t)` | calendar parts (year, month, dow, hour, …): DataFusion built-ins, not redefined here | `Int32` / `Float64` |
//! | `json_get(json, key…)` | the value at a path, as a JSON union | union |
//! | `json_get_str` / `json_get_int` / `json_get_float` / `json_get_bool` `(json, key…)` | the value at a path as a typed scalar; null when absent or of another type | `Utf8` / `Int64` / `Float64` / `Boolean` |
//! | `json_get_json(json, key…)` | the value at a path as JSON text | `Utf8` |
//! | `json_as_text(json, key…)` | the value at a path as text, whatever its type | `Utf8` |
//! | `json_length(json, key…)` | length of the array or object at a path | `UInt64` |
//! | `json_contains(json, key…)` | whether the path exists | `Boolean` |
//! | `json_object_keys(json, key…)` | keys of the object at a path | `List<Utf8>` |
//! | `json -> key` / `json ->> key` | operators for `json_get` / `json_as_text` (`payload->'a'->>'b'`) | as the functions |
//!
//! The JSON functions are those of `datafusion-functions-json` ([`json`]);
//! keys are strings, array indexes integers. Supporting modules: [`args`]
//! (argument conventions) and [`exact_sum`] (order-free sums for the fits).

pub mod args;
pub mod days_since;
pub mod exact_sum;
pub mod feature_hash;
pub mod fit_categories;
pub mod fit_imputer;
pub mod fit_min_max_scaler;
pub mod fit_quantiles;
pub mod fit_standard_scaler;
pub mod impute;
pub mod json;
pub mod min_max_scale;
pub mod one_hot;
pub mod ordinal_encode;
pub mod quantile_bucket;
pub mod standard_scale;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// The scalar functions of this family, the JSON functions included.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut functions = vec![
        Arc::new(ScalarUDF::from(feature_hash::FeatureHashFunc::new())),
        Arc::new(ScalarUDF::from(standard_scale::StandardScaleFunc::new())),
        Arc::new(ScalarUDF::from(min_max_scale::MinMaxScaleFunc::new())),
        Arc::new(ScalarUDF::from(impute::ImputeFunc::new())),
        Arc::new(ScalarUDF::from(ordinal_encode::OrdinalEncodeFunc::new())),
        Arc::new(ScalarUDF::from(one_hot::OneHotFunc::new())),
        Arc::new(ScalarUDF::from(quantile_bucket::QuantileBucketFunc::new())),
        Arc::new(ScalarUDF::from(days_since::DaysSinceFunc::new())),
    ];
    functions.extend(json::json_functions());
    functions
}

/// The aggregate functions of this family.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(
            fit_standard_scaler::FitStandardScaler::new(),
        )),
        Arc::new(AggregateUDF::from(
            fit_min_max_scaler::FitMinMaxScaler::new(),
        )),
        Arc::new(AggregateUDF::from(fit_imputer::FitImputer::new())),
        Arc::new(AggregateUDF::from(fit_categories::FitCategories::new())),
        Arc::new(AggregateUDF::from(fit_quantiles::FitQuantiles::new())),
    ]
}
