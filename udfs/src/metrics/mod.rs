//! Metric functions: model quality measured in SQL, over a holdout table.
//!
//! | function | what it measures | returns |
//! |---|---|---|
//! | [`auc`](auc::Auc) | `auc(score, label)`: ROC AUC, identical to scikit-learn's `roc_auc_score` (ties count ½); null when only one class is present | `Float64` |
//!
//! Metrics are aggregates with mergeable states, so `GROUP BY` gives one value
//! per segment and partial results from executors combine to the same value
//! whatever the partitioning.

pub mod auc;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// The scalar functions of this family (none yet).
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![]
}

/// The aggregate functions of this family.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::from(auc::Auc::new()))]
}
