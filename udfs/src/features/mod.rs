//! Feature-engineering functions: transforms applied to raw columns before a
//! model sees them.
//!
//! | function | what it does |
//! |---|---|
//! | [`feature_hash`](feature_hash::FeatureHashFunc) | the hashing trick: a category to one of `n` buckets, identical to scikit-learn's `FeatureHasher` |

pub mod feature_hash;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// The scalar functions of this family.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(
        feature_hash::FeatureHashFunc::new(),
    ))]
}

/// The aggregate functions of this family.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![]
}
