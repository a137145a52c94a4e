//! The step kinds: what one attempt of a step does.
//!
//! Each kind turns its declaration into SQL on the run's session (or, for
//! training, into the distributed trainer's passes) and reports what it
//! wrote. Retries, timeouts and history are the runner's business, not the
//! steps': a step only runs, honours its cancel signal, and says what it made.

pub mod check;
pub mod features;
pub mod score;
pub mod sql;
pub mod train;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ember_core::EmberContext;
use tokio::sync::watch;

use super::error::Result;
use super::load::Pipeline;
use super::tables::{self, Format};
use super::template::Values;
use crate::history::ArtifactKind;
use crate::sql::SqlRunner;

/// What one attempt of a step works with.
pub struct StepContext {
    /// The run's session (embedded or on a cluster).
    pub ember: Arc<EmberContext>,
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The step's index in `pipeline.spec.steps`.
    pub index: usize,
    /// Placeholder values for this attempt.
    pub values: Values,
    /// The logical date, `YYYY-MM-DD`.
    pub ds: String,
    /// Where outputs go (absolute).
    pub output_dir: PathBuf,
    /// Turns true when the attempt must stop (timeout, run timeout).
    pub cancel: watch::Receiver<bool>,
    /// Every table registered in the run so far: name → (location, format).
    pub locations: Locations,
}

/// The run's tables: name → (location, format).
pub type Locations = Arc<std::sync::Mutex<BTreeMap<String, (String, Format)>>>;

/// What an attempt made.
#[derive(Debug, Default)]
pub struct StepOutcome {
    /// Rows written, summed over outputs.
    pub rows_written: Option<u64>,
    /// Output tables: name and location, registered for downstream steps.
    pub outputs: Vec<(String, String)>,
    /// Things to keep in the run history.
    pub artifacts: Vec<(ArtifactKind, String, String)>,
    /// Warnings (drift above the warning threshold, ...).
    pub warnings: Vec<String>,
}

impl StepContext {
    /// The step's declaration.
    pub fn spec(&self) -> &super::spec::StepSpec {
        &self.pipeline.spec.steps[self.index]
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.spec().name
    }

    /// Where table `name` lives, if registered.
    pub fn location(&self, name: &str) -> Option<(String, Format)> {
        self.locations
            .lock()
            .ok()
            .and_then(|l| l.get(name).cloned())
    }

    /// Registers table `name` in the session and in [`Self::locations`].
    pub async fn register(&self, name: &str, location: &str, format: Format) -> Result<()> {
        tables::register(self.ember.session(), name, location, format).await?;
        if let Ok(mut l) = self.locations.lock() {
            l.insert(name.to_string(), (location.to_string(), format));
        }
        Ok(())
    }

    /// Fills in placeholders of this step's text.
    pub fn render(&self, text: &str) -> Result<String> {
        self.values.render(self.name(), text)
    }

    /// An SQL runner on the run's session that stops on the cancel signal.
    pub fn runner(&self) -> SqlRunner<'_> {
        SqlRunner::new(&self.ember, false).with_cancel(self.cancel.clone())
    }

    /// Where output table `table` of this run goes.
    pub fn output_location(&self, table: &str, partition_by_date: bool) -> String {
        let base = self.output_dir.join(table);
        let dir = if partition_by_date {
            base.join(format!("ds={}", self.ds))
        } else {
            base
        };
        format!("{}/", dir.to_string_lossy())
    }

    /// Runs `query` and writes its rows to output `table`: staged, checked
    /// against the step's `expect` contract while still staged, and only
    /// then renamed into place and registered, so a broken contract never
    /// replaces the previous output. Returns the rows written.
    pub async fn write_output(
        &self,
        table: &str,
        query: &str,
        partition_by_date: bool,
        outcome: &mut StepOutcome,
    ) -> Result<u64> {
        let runner = self.runner();
        let mut statements = runner.parse(query)?;
        if statements.len() != 1 {
            return Err(super::error::PipelineError::Contract(format!(
                "step '{}': the query for '{table}' must be one statement, found {}",
                self.name(),
                statements.len()
            )));
        }
        let statement = statements.remove(0);
        let location = self.output_location(table, partition_by_date);
        let (rows, staged) = runner.write_parquet_staged(statement, &location).await?;
        if let Some(expect) = &self.spec().expect {
            let mut expect = expect.clone();
            expect.assert = expect
                .assert
                .iter()
                .map(|a| self.render(a))
                .collect::<Result<_>>()?;
            let expect = &expect;
            let checked = async {
                if let Some(staged) = &staged {
                    staged.ensure_exists()?;
                    self.register(table, &staged.staging_location(), Format::Parquet)
                        .await?;
                }
                let owner = format!("step '{}'", self.name());
                super::expect::check(&runner, &owner, table, expect).await
            }
            .await;
            match checked {
                Ok(report) => outcome.artifacts.push((
                    ArtifactKind::Metrics,
                    format!("contract:{table}"),
                    serde_json::to_string(&report).unwrap_or_default(),
                )),
                Err(e) => {
                    let _ = self.ember.session().deregister_table(table);
                    if let Some(staged) = staged {
                        staged.abort();
                    }
                    return Err(e);
                }
            }
        }
        if let Some(staged) = staged {
            staged.commit()?;
        }
        self.register(table, &location, Format::Parquet).await?;
        outcome.rows_written = Some(outcome.rows_written.unwrap_or(0) + rows);
        outcome.outputs.push((table.to_string(), location.clone()));
        outcome
            .artifacts
            .push((ArtifactKind::Output, table.to_string(), location));
        Ok(rows)
    }
}

/// Runs one attempt of the step.
pub async fn run_step(ctx: &StepContext) -> Result<StepOutcome> {
    let spec = ctx.spec().clone();
    let outcome = if let Some(s) = &spec.sql {
        sql::run(ctx, s).await?
    } else if let Some(s) = &spec.features {
        features::run(ctx, s).await?
    } else if let Some(s) = &spec.train {
        train::run(ctx, s, ctx.location(&s.input)).await?
    } else if let Some(s) = &spec.score {
        score::run(ctx, s).await?
    } else if let Some(s) = &spec.check {
        check::run(ctx, s).await?
    } else {
        StepOutcome::default()
    };
    Ok(outcome)
}
