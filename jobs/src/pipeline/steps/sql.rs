//! `[step.sql]`: ETL — a query whose rows become a named output.

use super::{StepContext, StepOutcome};
use crate::pipeline::error::Result;
use crate::pipeline::spec::SqlStepSpec;

/// Runs the query and writes its rows as the step's output.
pub async fn run(ctx: &StepContext, spec: &SqlStepSpec) -> Result<StepOutcome> {
    let query = ctx.render(&spec.query)?;
    let mut outcome = StepOutcome::default();
    ctx.write_output(&spec.output, &query, spec.partition_by_date, &mut outcome)
        .await?;
    Ok(outcome)
}
