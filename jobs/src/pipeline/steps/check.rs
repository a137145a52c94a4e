//! `[step.check]`: a data contract on a table, as a step of its own.

use super::{StepContext, StepOutcome};
use crate::history::ArtifactKind;
use crate::pipeline::error::Result;
use crate::pipeline::expect;
use crate::pipeline::spec::CheckStepSpec;

/// Checks the table; a broken contract fails the step.
pub async fn run(ctx: &StepContext, spec: &CheckStepSpec) -> Result<StepOutcome> {
    let mut rendered = spec.expect.clone();
    rendered.assert = spec
        .expect
        .assert
        .iter()
        .map(|a| ctx.render(a))
        .collect::<Result<_>>()?;
    let owner = format!("check '{}'", ctx.name());
    let report = expect::check(&ctx.runner(), &owner, &spec.table, &rendered).await?;
    Ok(StepOutcome {
        artifacts: vec![(
            ArtifactKind::Metrics,
            format!("contract:{}", spec.table),
            serde_json::to_string(&report).unwrap_or_default(),
        )],
        ..StepOutcome::default()
    })
}
