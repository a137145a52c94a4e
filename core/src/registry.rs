//! The one function registry: Ember's functions, for every role.
//!
//! DataFusion resolves a function by name when it plans SQL (client), when it
//! decodes a logical plan (scheduler) and when it decodes a task's physical
//! plan (executor). Ballista fills each of those registries with DataFusion's
//! built-ins only, and `upgrade_for_ballista` *replaces* a session's function
//! lists, so Ember adds its functions after every upgrade, through the
//! functions here and nowhere else.

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::catalog::TableFunctionImpl;
use datafusion::error::Result;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// Ember's scalar functions.
pub fn ember_scalar_functions() -> Vec<Arc<ScalarUDF>> {
    ember_udfs::all_scalar_functions()
}

/// Ember's aggregate functions.
pub fn ember_aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    ember_udfs::all_aggregate_functions()
}

/// How much memory this process may use to keep the rows of `ember train`'s
/// GBDT runs between tree levels (the executor's `--training-rows-memory`;
/// an embedded run keeps the default, 4 GiB).
pub fn set_training_rows_memory(bytes: usize) {
    ember_udfs::training::distributed::gbdt_resident::set_budget_bytes(bytes);
}

/// Whether `name` is one of Ember's functions (scalar or aggregate).
pub fn is_ember_function(name: &str) -> bool {
    ember_scalar_functions().iter().any(|f| f.name() == name)
        || ember_aggregate_functions().iter().any(|f| f.name() == name)
}

/// Ember's table functions (called in `FROM`), by name. They are needed
/// where SQL is planned, the client: they expand to plain plan nodes there.
pub fn ember_table_functions() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    ember_udfs::all_table_functions()
}

/// Adds Ember's functions to `state`. Call it after the state has been
/// upgraded for Ballista, never before: the upgrade replaces function lists.
pub fn register_ember_functions(state: &mut SessionState) -> Result<()> {
    for f in ember_scalar_functions() {
        state.register_udf(f)?;
    }
    for f in ember_aggregate_functions() {
        state.register_udaf(f)?;
    }
    for (name, f) in ember_table_functions() {
        state.register_udtf(name, f);
    }
    // The `->` / `->>` operators and the JSON cast rewrite are planning
    // extensions, not functions: they go in where SQL is planned.
    ember_udfs::features::json::register_json_planning(state)
}

/// The registry an executor decodes task plans with: the same built-ins the
/// client and scheduler plan with, plus Ember's functions.
///
/// Ballista's `BallistaFunctionRegistry::default()` leaves out DataFusion's
/// nested (array, map, struct-access) functions, although the client plans
/// with them: any task using `array_element` or `p[1]` was rejected by the
/// executor. The lists here are the ones [`crate::session`] plans with.
pub fn executor_function_registry() -> BallistaFunctionRegistry {
    use ballista_core::extension::{
        ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
    };
    let mut registry = BallistaFunctionRegistry::default();
    for f in ballista_scalar_functions() {
        registry.scalar_functions.insert(f.name().to_string(), f);
    }
    for f in ballista_aggregate_functions() {
        registry.aggregate_functions.insert(f.name().to_string(), f);
    }
    for f in ballista_window_functions() {
        registry.window_functions.insert(f.name().to_string(), f);
    }
    for f in ember_scalar_functions() {
        registry.scalar_functions.insert(f.name().to_string(), f);
    }
    for f in ember_aggregate_functions() {
        registry.aggregate_functions.insert(f.name().to_string(), f);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_registry_has_builtins_and_ember_functions() {
        let registry = executor_function_registry();
        assert!(registry.udf("abs").is_ok());
        assert!(registry.udf("array_element").is_ok(), "nested functions");
        assert!(registry.udf("predict").is_ok() && registry.udf("__ember_score").is_ok());
        assert!(registry.udf("feature_hash").is_ok());
        assert!(is_ember_function("feature_hash"));
        assert!(!is_ember_function("abs"));
    }
}
