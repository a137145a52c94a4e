//! Tasks that can be cancelled while they compute.
//!
//! Ballista cancels a task on an executor by aborting its future
//! (`futures::future::abortable`, see `ballista_executor::executor::Executor::
//! execute_query_stage`). An aborted future stops only when it next returns
//! `Pending`, and a CPU-bound DataFusion task returns `Pending` only where an
//! operator spends tokio's cooperative budget: DataFusion's leaves (scans,
//! `generate_series`'s placeholder row) spend one unit per batch they make.
//! Operators that make many batches out of one input batch spend none, so a
//! task whose batches come from them never yields: a cross join emits one
//! batch per build-side row for each probe batch, an unnest expands one list
//! (Ember's `generate_series`) into as many batches as it holds, and a filter
//! or aggregate above them loops over those batches without returning. Such a
//! task ignored its cancellation and ran to the end, holding its executor's
//! core after the job was reported cancelled.
//!
//! [`YieldingJoinsAndUnnests`] wraps those operators in DataFusion's
//! [`CooperativeExec`], which spends one unit of budget per batch they
//! emit, so every 128 batches the task yields and a cancelled task stops.
//! It costs a counter decrement per batch, and `CooperativeExec` is part
//! of DataFusion's plan protocol, so executors decode it like any node.
//!
//! This makes the task's future stop; the shuffle writer's coordinator,
//! spawned apart from that future, stops with it in Ember's vendored
//! `ballista-core` (see `vendor/README.md` and `tests/tests/cancellation.rs`).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::unnest::UnnestExec;

/// Wraps cross joins, nested-loop joins and unnests in [`CooperativeExec`].
/// It runs after every other physical optimizer rule.
#[derive(Debug, Default)]
pub struct YieldingJoinsAndUnnests;

/// Whether `plan` can emit many batches per input batch without spending
/// cooperative budget.
fn multiplies_batches(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<CrossJoinExec>() || plan.is::<NestedLoopJoinExec>() || plan.is::<UnnestExec>()
}

impl PhysicalOptimizerRule for YieldingJoinsAndUnnests {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wrapped = plan.transform_up(|node| {
            // Already wrapped (the rule ran before): leave it.
            if let Some(coop) = node.downcast_ref::<CooperativeExec>()
                && let Some(inner) = coop.input().downcast_ref::<CooperativeExec>()
            {
                return Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(Arc::clone(inner.input())))
                        as Arc<dyn ExecutionPlan>,
                ));
            }
            if multiplies_batches(&node) {
                return Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ));
            }
            Ok(Transformed::no(node))
        })?;
        Ok(wrapped.data)
    }

    fn name(&self) -> &str {
        "YieldingJoinsAndUnnests"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Adds [`YieldingJoinsAndUnnests`] as the last physical optimizer rule of
/// `state`.
pub fn with_yielding_operators(state: SessionState) -> SessionState {
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rule(Arc::new(YieldingJoinsAndUnnests))
        .build()
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    async fn plan_of(sql: &str) -> String {
        let config = SessionConfig::new().with_target_partitions(2);
        let state = with_yielding_operators(SessionContext::new_with_config(config).state());
        let ctx = SessionContext::new_with_state(state);
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn cross_joins_and_unnests_are_wrapped_once() {
        let plan = plan_of(
            "SELECT count(*) FROM (SELECT unnest([1, 2, 3]) AS a) x \
             CROSS JOIN (SELECT unnest([4, 5]) AS b) y WHERE a * b = -1",
        )
        .await;
        let lines: Vec<&str> = plan.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if ["CrossJoinExec", "NestedLoopJoinExec", "UnnestExec"]
                .iter()
                .any(|op| line.trim_start().starts_with(op))
            {
                assert!(
                    lines[i - 1].contains("CooperativeExec"),
                    "not wrapped:\n{plan}"
                );
                assert!(
                    !lines[i - 2].contains("CooperativeExec"),
                    "wrapped twice:\n{plan}"
                );
            }
        }
        // The filter makes it a nested-loop join.
        assert!(plan.contains("NestedLoopJoinExec"), "{plan}");
    }

    #[tokio::test]
    async fn the_rule_is_idempotent() {
        let config = SessionConfig::new();
        let ctx = SessionContext::new_with_config(config);
        let plan = ctx
            .sql("SELECT unnest([1, 2, 3]) AS a")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let rule = YieldingJoinsAndUnnests;
        let once = rule.optimize(plan, &ConfigOptions::default()).unwrap();
        let twice = rule
            .optimize(Arc::clone(&once), &ConfigOptions::default())
            .unwrap();
        assert_eq!(
            displayable(once.as_ref()).indent(false).to_string(),
            displayable(twice.as_ref()).indent(false).to_string()
        );
    }

    #[tokio::test]
    async fn wrapped_plans_give_the_same_answer() {
        let config = SessionConfig::new().with_target_partitions(2);
        let state = with_yielding_operators(SessionContext::new_with_config(config).state());
        let ctx = SessionContext::new_with_state(state);
        let batches = ctx
            .sql(
                "SELECT count(*) AS n FROM (SELECT unnest(range(1, 101)) AS a) x \
                 CROSS JOIN (SELECT unnest(range(1, 51)) AS b) y WHERE (a + b) % 2 = 0",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, 2500);
    }
}
