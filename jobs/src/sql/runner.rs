//! Runs SQL scripts statement by statement on an [`EmberContext`].
//!
//! DataFusion's `SessionContext::sql` takes one statement; a user's script
//! (`ember sql -f nightly.sql`) has many. The runner parses the whole script
//! first (so a syntax error anywhere stops it before anything runs), then
//! plans and runs each statement in order:
//!
//! * DDL and `SET` run on the client and return nothing;
//! * queries run on the cluster, with progress on a terminal, and return rows;
//! * `COPY ... TO` runs on the cluster with executors writing to a staging
//!   sibling of the target, which replaces the target only when the job
//!   succeeds (see [`super::staged_output`]).
//!
//! A statement that fails on an unreadable input file names the file (see
//! [`super::bad_input`]).
//!
//! Ctrl-C cancels the running job on the scheduler before the command exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::dml::CopyTo;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use ember_core::EmberContext;
use tokio::sync::watch;

use crate::error::{JobsError, Result, explain_write_error};
use crate::progress::JobProgressDisplay;
use crate::sql::bad_input::name_bad_file;
use crate::sql::guarded_plan::plan_statement;
use crate::sql::staged_output::StagedOutput;

/// The outcome of one statement.
#[derive(Debug)]
pub struct StatementOutcome {
    /// Position of the statement in the script, from 1.
    pub index: usize,
    /// What kind of statement it was.
    pub kind: StatementKind,
    /// Schema of the rows, for statements that return rows.
    pub schema: SchemaRef,
    /// The rows (empty for statements that return none).
    pub batches: Vec<RecordBatch>,
    /// Wall time of the statement.
    pub elapsed: Duration,
}

/// How a statement's result is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// A query (or EXPLAIN): its rows are the result.
    Query,
    /// DDL or SET: no result.
    Command,
    /// A write: `rows` rows were written to `target`.
    Write {
        /// Rows written.
        rows: u64,
        /// The final location.
        target: String,
    },
}

/// Runs scripts on one context.
pub struct SqlRunner<'a> {
    ember: &'a EmberContext,
    show_progress: bool,
    cancel: Option<watch::Receiver<bool>>,
}

impl<'a> SqlRunner<'a> {
    /// A runner on `ember`; `show_progress` draws job progress on stderr when
    /// it is a terminal.
    pub fn new(ember: &'a EmberContext, show_progress: bool) -> Self {
        Self {
            ember,
            show_progress,
            cancel: None,
        }
    }

    /// Cancels the running job on the scheduler (and returns
    /// [`JobsError::Cancelled`]) when `cancel` turns true: pipeline step
    /// timeouts use it, so a timed-out step stops its job instead of
    /// abandoning it.
    pub fn with_cancel(mut self, cancel: watch::Receiver<bool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Parses `sql` into statements, failing before anything runs if any of
    /// them does not parse. Parse errors carry the line and column.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let state = self.ember.session().state();
        let options = state.config().options();
        let dialect =
            datafusion::sql::sqlparser::dialect::dialect_from_str(options.sql_parser.dialect)
                .ok_or_else(|| {
                    JobsError::Usage(format!(
                        "unknown SQL dialect {}",
                        options.sql_parser.dialect
                    ))
                })?;
        let statements = DFParserBuilder::new(sql)
            .with_dialect(dialect.as_ref())
            .build()?
            .parse_statements()?;
        Ok(statements.into_iter().collect())
    }

    /// Whether `statement` is a query, by its syntax (before planning).
    pub fn is_query(statement: &Statement) -> bool {
        use datafusion::sql::sqlparser::ast::Statement as Sql;
        match statement {
            Statement::Statement(s) => matches!(s.as_ref(), Sql::Query(_)),
            Statement::Explain(_) => true,
            _ => false,
        }
    }

    /// Plans and runs one statement.
    pub async fn run(&self, index: usize, statement: Statement) -> Result<StatementOutcome> {
        let started = Instant::now();
        let state = self.ember.session().state();
        let plan = plan_statement(state, statement).await?;
        let inputs = match &plan {
            LogicalPlan::Copy(copy) => copy.input.as_ref().clone(),
            plan => plan.clone(),
        };
        match self.run_plan(index, plan, started).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(name_bad_file(&inputs, e).await),
        }
    }

    async fn run_plan(
        &self,
        index: usize,
        plan: LogicalPlan,
        started: Instant,
    ) -> Result<StatementOutcome> {
        match plan {
            LogicalPlan::Copy(copy) => self.run_copy(index, copy, started).await,
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => {
                let df = self.ember.session().execute_logical_plan(plan).await?;
                let schema = Arc::clone(df.schema().inner());
                df.collect().await?;
                Ok(StatementOutcome {
                    index,
                    kind: StatementKind::Command,
                    schema,
                    batches: vec![],
                    elapsed: started.elapsed(),
                })
            }
            plan => {
                let df = self.ember.session().execute_logical_plan(plan).await?;
                let schema = Arc::clone(df.schema().inner());
                let physical = df.create_physical_plan().await?;
                let batches = self.execute(physical).await?;
                Ok(StatementOutcome {
                    index,
                    kind: StatementKind::Query,
                    schema,
                    batches,
                    elapsed: started.elapsed(),
                })
            }
        }
    }

    /// Runs query statement `statement` and writes its rows as Parquet to
    /// `target` (a file if it ends in `.parquet`, else a directory), staged
    /// and renamed into place when the job succeeds.
    pub async fn run_to_parquet(
        &self,
        index: usize,
        statement: Statement,
        target: &str,
    ) -> Result<StatementOutcome> {
        let started = Instant::now();
        let state = self.ember.session().state();
        let plan = plan_statement(state, statement).await?;
        let inputs = plan.clone();
        let written = async {
            let df = self.ember.session().execute_logical_plan(plan).await?;
            let (copy, staged) = staged_parquet_copy(df, target)?;
            self.run_write(index, copy, staged, target.to_string(), started)
                .await
        }
        .await;
        match written {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(name_bad_file(&inputs, e).await),
        }
    }

    /// The session statements are planned in.
    pub fn session(&self) -> &datafusion::prelude::SessionContext {
        self.ember.session()
    }

    /// Runs one query and returns its rows, with progress and cancellation
    /// like every statement.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut statements = self.parse(sql)?;
        let Some(statement) = statements.pop() else {
            return Ok(vec![]);
        };
        Ok(self.run(1, statement).await?.batches)
    }

    /// Like [`Self::run_to_parquet`], but leaves the staged output
    /// uncommitted: the caller checks it (pipeline contracts) and then
    /// commits or aborts it. Returns the rows written and the staged output
    /// (`None` for object-store targets, written in place).
    pub async fn write_parquet_staged(
        &self,
        statement: Statement,
        target: &str,
    ) -> Result<(u64, Option<StagedOutput>)> {
        let state = self.ember.session().state();
        let plan = plan_statement(state, statement).await?;
        let inputs = plan.clone();
        let df = match self.ember.session().execute_logical_plan(plan).await {
            Ok(df) => df,
            Err(e) => return Err(name_bad_file(&inputs, e.into()).await),
        };
        let (copy, staged) = staged_parquet_copy(df, target)?;
        let result = async {
            let df = self.ember.session().execute_logical_plan(copy).await?;
            let physical = df.create_physical_plan().await?;
            self.execute(physical).await
        }
        .await;
        match result {
            Ok(batches) => Ok((count_written(&batches), staged)),
            Err(e) => {
                let e = match staged {
                    Some(staged) => {
                        let e = explain_write_error(e, staged.target());
                        staged.abort();
                        e
                    }
                    None => e,
                };
                Err(name_bad_file(&inputs, e).await)
            }
        }
    }

    async fn run_copy(
        &self,
        index: usize,
        copy: CopyTo,
        started: Instant,
    ) -> Result<StatementOutcome> {
        let target = copy.output_url.clone();
        let staged = StagedOutput::new(&target)?;
        let mut copy = copy;
        if let Some(staged) = &staged {
            copy.output_url = staged.staging_location();
        }
        let plan = LogicalPlan::Copy(copy);
        self.run_write(index, plan, staged, target, started).await
    }

    async fn run_write(
        &self,
        index: usize,
        plan: LogicalPlan,
        staged: Option<StagedOutput>,
        target: String,
        started: Instant,
    ) -> Result<StatementOutcome> {
        let schema = Arc::clone(plan.schema().inner());
        let result = async {
            let df = self.ember.session().execute_logical_plan(plan).await?;
            let physical = df.create_physical_plan().await?;
            self.execute(physical).await
        }
        .await;
        let batches = match result {
            Ok(batches) => batches,
            Err(e) => {
                return Err(match staged {
                    Some(staged) => {
                        let e = explain_write_error(e, staged.target());
                        staged.abort();
                        e
                    }
                    None => e,
                });
            }
        };
        let target = match staged {
            Some(staged) => {
                let shown = staged.target().display().to_string();
                staged.commit()?;
                shown
            }
            None => target,
        };
        Ok(StatementOutcome {
            index,
            kind: StatementKind::Write {
                rows: count_written(&batches),
                target,
            },
            schema,
            batches: vec![],
            elapsed: started.elapsed(),
        })
    }

    /// Runs a physical plan on the cluster, showing progress and cancelling
    /// the job on Ctrl-C.
    async fn execute(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Vec<RecordBatch>> {
        let task_ctx = self.ember.session().task_ctx();
        let progress = JobProgressDisplay::start(
            self.ember.scheduler_http().to_string(),
            self.ember.rest_client().clone(),
            Arc::clone(&plan),
            self.show_progress,
        );
        let mut cancel = self.cancel.clone();
        let cancelled = async move {
            match cancel.as_mut() {
                Some(rx) => {
                    if rx.wait_for(|c| *c).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let query = collect(Arc::clone(&plan), task_ctx);
        tokio::pin!(query);
        // With a cancel signal, whoever owns it handles Ctrl-C (a pipeline run
        // cancels all its steps); otherwise Ctrl-C cancels this job.
        let owns_ctrl_c = self.cancel.is_none();
        let ctrl_c = async move {
            if !owns_ctrl_c || tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let outcome = tokio::select! {
            result = &mut query => result.map_err(JobsError::from),
            _ = ctrl_c => {
                cancel_when_submitted(&progress, &mut query).await;
                Err(JobsError::Usage("interrupted: the job was cancelled".to_string()))
            }
            _ = cancelled => {
                cancel_when_submitted(&progress, &mut query).await;
                Err(JobsError::Cancelled(progress.job_id()))
            }
        };
        progress.finish().await;
        outcome
    }
}

/// How long a cancelled query may take to be accepted by the scheduler.
const SUBMIT_WAIT: Duration = Duration::from_secs(60);

/// Cancels the job on the scheduler. Its id arrives with the scheduler's
/// first status update, which can come only once the job is planned, so
/// until then the query is kept running (polled) and the id awaited;
/// dropping the query before would leave the job running, unknown.
async fn cancel_when_submitted<F>(progress: &JobProgressDisplay, query: &mut std::pin::Pin<&mut F>)
where
    F: std::future::Future,
{
    let deadline = tokio::time::Instant::now() + SUBMIT_WAIT;
    while progress.job_id().is_none() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            // The job ended by itself: nothing is left to cancel.
            _ = query.as_mut() => return,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    progress.cancel_job().await;
}

/// The row count a write plan reports (DataFusion's `count` column).
fn count_written(batches: &[RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    use arrow::datatypes::UInt64Type;
    batches
        .iter()
        .filter(|b| b.num_columns() > 0)
        .filter_map(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .map(|a| (0..a.len()).map(|i| a.value(i)).sum::<u64>())
        })
        .sum()
}

/// The Parquet write of `df` to `target`, through a staging sibling when
/// the target can be staged (see [`StagedOutput`]).
fn staged_parquet_copy(
    df: datafusion::dataframe::DataFrame,
    target: &str,
) -> Result<(LogicalPlan, Option<StagedOutput>)> {
    let staged = StagedOutput::new(target)?;
    let location = staged
        .as_ref()
        .map(StagedOutput::staging_location)
        .unwrap_or_else(|| target.to_string());
    Ok((parquet_copy_plan(df, &location)?, staged))
}

/// The logical plan `DataFrame::write_parquet` would run, built without
/// running it, so the runner can run it with progress and staging like any
/// `COPY`.
fn parquet_copy_plan(df: datafusion::dataframe::DataFrame, path: &str) -> Result<LogicalPlan> {
    use datafusion::datasource::file_format::format_as_file_type;
    use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
    use datafusion::logical_expr::LogicalPlanBuilder;
    let file_type = format_as_file_type(Arc::new(ParquetFormatFactory::new()));
    let (_, plan) = df.into_parts();
    let plan = LogicalPlanBuilder::copy_to(
        plan,
        path.to_string(),
        file_type,
        Default::default(),
        vec![],
    )?
    .build()?;
    Ok(plan)
}
