//! Training functions: models fitted by aggregates, per group or over a whole table.
//!
//! | function | what it trains | returns |
//! |---|---|---|
//! | [`train_linear`](train_linear::TrainLinear) | least squares (optionally ridge) from mergeable moments | Ember linear JSON |
//! | [`train_logistic`](train_logistic::TrainLogistic) | logistic regression, Newton's method | Ember linear JSON (`binary:logistic`) |
//! | [`train_gbdt`](train_gbdt::TrainGbdt) | gradient-boosted trees, histogram method | XGBoost JSON |
//!
//! All three are called `train_x(label, feature, ... [, 'params'])` and, with
//! `GROUP BY`, train one model per group, groups in parallel across
//! partitions and executors. Every model they return is scored by `predict`.
//! One model over a whole table (too big for one group) is `ember train`: a
//! driver that runs the internal aggregates of [`distributed`] over the
//! cluster, one query per Newton iteration or tree level, and never collects
//! rows.
//!
//! Supporting modules: [`params`] (typed parameters, XGBoost names and
//! defaults), [`args`] (argument convention), [`rows`] (a group's rows),
//! [`linear`], [`logistic`], [`solve`] (the linear algebra), [`gbdt`] (the
//! boosting engine) and [`error`].

pub mod args;
pub mod distributed;
pub mod error;
pub mod exact_float;
pub mod gbdt;
pub mod linear;
pub mod logistic;
pub mod params;
pub mod rows;
pub mod solve;
pub mod train_gbdt;
pub mod train_linear;
pub mod train_logistic;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// The aggregate functions of this family (user-facing and the driver's internal ones).
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(train_linear::TrainLinear::new())),
        Arc::new(AggregateUDF::from(train_logistic::TrainLogistic::new())),
        Arc::new(AggregateUDF::from(train_gbdt::TrainGbdt::new())),
        Arc::new(AggregateUDF::from(
            distributed::gbdt_sketch::GbdtSketch::default(),
        )),
        Arc::new(AggregateUDF::from(
            distributed::gbdt_level::GbdtLevel::default(),
        )),
        Arc::new(AggregateUDF::from(
            distributed::logistic_newton::LogisticNewton::default(),
        )),
    ]
}

/// The scalar functions of this family (the driver's internal ones).
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(distributed::gbdt_bin::GbdtBin::default())),
        Arc::new(ScalarUDF::from(
            distributed::gbdt_row_key::GbdtRowKey::default(),
        )),
        Arc::new(ScalarUDF::from(
            distributed::gbdt_release::GbdtRelease::default(),
        )),
    ]
}
