//! JSON field extraction: the functions of `datafusion-functions-json`.
//!
//! Raw event columns often hold JSON text. Rather than write another parser,
//! Ember ships the community crate's functions (`json_get_str(payload, 'a',
//! 'b')`, `payload->'a'->>'b'`, …), which parse with `jiter` a batch at a time.
//! [`json_functions`] joins Ember's scalar function list, so the functions are
//! registered wherever Ember's are — the client, the scheduler, every executor
//! decoding a task plan. The `->` / `->>` / `?` operators and the rewrite that
//! turns `json_get(…)::int` into `json_get_int(…)` are planning extensions,
//! needed only where SQL is planned: [`register_json_planning`] adds them.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::ScalarUDF;
use datafusion_functions_json::udfs;

/// The 13 JSON scalar functions of `datafusion-functions-json`.
pub fn json_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        udfs::json_get_udf(),
        udfs::json_get_bool_udf(),
        udfs::json_get_float_udf(),
        udfs::json_get_int_udf(),
        udfs::json_get_json_udf(),
        udfs::json_get_array_udf(),
        udfs::json_get_str_udf(),
        udfs::json_as_text_udf(),
        udfs::json_contains_udf(),
        udfs::json_length_udf(),
        udfs::json_object_keys_udf(),
        udfs::json_from_scalar_udf(),
        udfs::json_union_to_text_udf(),
    ]
}

/// Registers the JSON functions with `state`, plus the planner for the
/// `->`, `->>`, `?` operators and the cast rewriter. Call it after the state
/// has been upgraded for Ballista (the upgrade replaces function lists).
pub fn register_json_planning(state: &mut SessionState) -> Result<()> {
    datafusion_functions_json::register_all(state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_distinct_functions() {
        let mut names: Vec<String> = json_functions()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 13);
        assert!(names.iter().any(|n| n == "json_get_str"));
    }
}
