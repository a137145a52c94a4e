//! Planning a statement without letting a planner panic take the process
//! down.
//!
//! Fuzzing found DataFusion 55's SQL planner panicking on some malformed
//! statements (a scalar subquery with an empty select list indexes an empty
//! schema). A nightly pipeline or a shared CLI session must answer such a
//! statement with an error, so every statement Ember runs is planned on its
//! own task, and a panic there becomes an error naming the statement.

use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement;

use crate::error::{JobsError, Result};

/// Plans `statement` in `state`; a panic in the planner is an error.
pub async fn plan_statement(state: SessionState, statement: Statement) -> Result<LogicalPlan> {
    let text = statement.to_string();
    let planned = tokio::spawn(async move { state.statement_to_plan(statement).await }).await;
    match planned {
        Ok(result) => Ok(result?),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(JobsError::Query(DataFusionError::Plan(format!(
                "the SQL planner failed on this statement ({reason}); \
                 check it for an empty select list or other malformed parts: {}",
                one_line_prefix(&text, 200)
            ))))
        }
        Err(e) => Err(JobsError::Usage(format!("planning was cancelled: {e}"))),
    }
}

fn one_line_prefix(text: &str, max_chars: usize) -> String {
    let line = crate::error::one_line(text);
    match line.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn a_planner_panic_is_an_error_naming_the_statement() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT) AS VALUES (1)")
            .await
            .expect("table t");
        let state = ctx.state();
        let statement = state
            .sql_to_statement(
                "SELECT a FROM t WHERE a > (SELECT FROM t)",
                &datafusion::common::config::Dialect::Generic,
            )
            .expect("parses");
        let err = plan_statement(state.clone(), statement)
            .await
            .expect_err("DataFusion 55 panics planning an empty scalar subquery");
        let text = err.to_string();
        assert!(
            text.contains("the SQL planner failed") && text.contains("SELECT FROM t"),
            "{text}"
        );
        let fine = state
            .sql_to_statement(
                "SELECT 1 AS one",
                &datafusion::common::config::Dialect::Generic,
            )
            .expect("parses");
        assert!(plan_statement(state, fine).await.is_ok());
    }
}
