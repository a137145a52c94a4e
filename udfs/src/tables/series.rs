//! `generate_series(start, stop [, step])` and `range(start, stop [, step])`
//! in `FROM`, on a cluster.
//!
//! DataFusion's own versions are table providers that exist only in the
//! process that planned the query, and Ballista cannot send them to the
//! scheduler ("Error serializing custom table"). Ember's are views: a one-row
//! plan whose list-valued `range`/`generate_series` scalar is unnested into a
//! column `value`. A view is inlined into the query before it leaves the
//! client, so the plan is made of ordinary nodes every process can decode.
//! Integers, dates and timestamps (with an interval step) work as in
//! DataFusion. The series is built as one list in one task, so it suits
//! series of up to a few million values (test data, calendars, grids).

use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::functions_nested::range::{gen_series_udf, range_udf};
use datafusion::logical_expr::{LogicalPlanBuilder, col};

const LIST_COLUMN: &str = "__ember_series";

/// `generate_series` (inclusive) or `range` (exclusive) as a table function.
#[derive(Debug)]
pub struct SeriesFunc {
    name: &'static str,
    inclusive: bool,
}

impl SeriesFunc {
    /// `generate_series(start, stop [, step])`: `stop` included.
    pub fn generate_series() -> Self {
        Self {
            name: "generate_series",
            inclusive: true,
        }
    }

    /// `range(start, stop [, step])`: `stop` excluded.
    pub fn range() -> Self {
        Self {
            name: "range",
            inclusive: false,
        }
    }
}

impl TableFunctionImpl for SeriesFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 3 {
            return plan_err!(
                "{}: expected 1 to 3 arguments (start, stop [, step]), got {}",
                self.name,
                exprs.len()
            );
        }
        let udf = if self.inclusive {
            gen_series_udf()
        } else {
            range_udf()
        };
        let list = udf.call(exprs.to_vec()).alias(LIST_COLUMN);
        let plan = LogicalPlanBuilder::empty(true)
            .project(vec![list])?
            .unnest_column(LIST_COLUMN)?
            .project(vec![col(LIST_COLUMN).alias("value")])?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn values(sql: &str) -> Vec<String> {
        let ctx = SessionContext::new();
        ctx.register_udtf("generate_series", Arc::new(SeriesFunc::generate_series()));
        ctx.register_udtf("range", Arc::new(SeriesFunc::range()));
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        text.lines()
            .filter(|l| l.starts_with("| ") && !l.contains("value"))
            .map(|l| l.trim_matches(|c| c == '|' || c == ' ').to_string())
            .collect()
    }

    #[tokio::test]
    async fn generate_series_includes_stop_and_range_does_not() {
        assert_eq!(
            values("SELECT value FROM generate_series(1, 3)").await,
            ["1", "2", "3"]
        );
        assert_eq!(values("SELECT value FROM range(1, 3)").await, ["1", "2"]);
        assert_eq!(
            values("SELECT value FROM generate_series(10, 1, -4)").await,
            ["10", "6", "2"]
        );
    }

    #[tokio::test]
    async fn columns_can_be_renamed_and_aggregated() {
        assert_eq!(
            values("SELECT sum(v) AS value FROM generate_series(1, 100) AS t(v)").await,
            ["5050"]
        );
    }

    #[tokio::test]
    async fn dates_step_by_intervals() {
        assert_eq!(
            values("SELECT value FROM generate_series(DATE '2026-01-30', DATE '2026-02-01', INTERVAL '1 day')").await,
            ["2026-01-30", "2026-01-31", "2026-02-01"]
        );
    }

    #[tokio::test]
    async fn wrong_argument_counts_are_named() {
        let ctx = SessionContext::new();
        ctx.register_udtf("range", Arc::new(SeriesFunc::range()));
        let err = ctx
            .sql("SELECT * FROM range()")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("range") && err.contains("got 0"), "{err}");
    }
}
