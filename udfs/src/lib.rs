//! Ember's SQL functions.
//!
//! Every function Ember adds to SQL lives here, one function per file, grouped by
//! family the way `datafusion-functions` is: `features/` (feature engineering),
//! `metrics/` (model quality), `scoring/` (model scoring) and `training/`
//! (model training). Each family's `mod.rs` lists its
//! functions; [`all_scalar_functions`] and [`all_aggregate_functions`] list every
//! family. `ember-core` registers exactly these lists on the client, the
//! scheduler and every executor, so a function added here is available
//! everywhere a plan can be built or run.

pub mod config;
mod cpu;
pub mod features;
pub mod metrics;
pub mod scoring;
pub mod tables;
pub mod training;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// Every scalar function Ember adds to SQL.
pub fn all_scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut functions = features::scalar_functions();
    functions.extend(metrics::scalar_functions());
    functions.extend(scoring::scalar_functions());
    functions.extend(training::scalar_functions());
    functions
}

/// Every table function (called in `FROM`) Ember adds to SQL, by name.
pub fn all_table_functions() -> Vec<(
    &'static str,
    Arc<dyn datafusion::catalog::TableFunctionImpl>,
)> {
    tables::table_functions()
}

/// Every aggregate function Ember adds to SQL.
pub fn all_aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    let mut functions = features::aggregate_functions();
    functions.extend(metrics::aggregate_functions());
    functions.extend(training::aggregate_functions());
    functions
}
