//! Running a pipeline: the DAG, concurrency, retries, timeouts and history.
//!
//! A step starts as soon as every step it depends on has succeeded, up to
//! `max_parallel` at once. Each attempt is recorded in the run history. A
//! failed attempt is retried after `retry_delay`, doubled per retry. An
//! attempt that passes its `timeout` has its running job cancelled on the
//! scheduler (not only abandoned) and counts as a failed attempt. A step
//! that fails for good marks every step downstream of it skipped, while
//! independent branches go on. A run-level `timeout` cancels whatever is
//! still running. Outputs are staged and renamed into place by the steps, so
//! a failed or killed run leaves the previous good output of every table.
//!
//! `--resume RUN` starts a new run (linked to the old one) for the same
//! date, keeps the steps that succeeded (their outputs are where that run
//! left them) and runs only the failed and skipped ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use ember_core::EmberContext;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::display::RunDisplay;
use super::error::{PipelineError, Result};
use super::expect;
use super::load::Pipeline;
use super::steps::{self, Locations, StepContext, StepOutcome};
use super::tables::{self, Format};
use super::template::Values;
use crate::history::{ArtifactKind, History, NewRun, RunId, RunState, StepState, Trigger};

/// How long a cancelled attempt may take to cancel its job and stop.
const CANCEL_GRACE: Duration = Duration::from_secs(30);
/// The longest wait between retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

/// What a run records of how it was started, so `--resume` can start the
/// same way: its `--param` values and its output directory.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct RecordedParams {
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    output_dir: Option<String>,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The logical date.
    pub ds: NaiveDate,
    /// `--param name=value` overrides of the pipeline's `[params]`.
    pub params: Vec<(String, String)>,
    /// Overrides the pipeline's `output_dir`.
    pub output_dir: Option<PathBuf>,
    /// Why the run starts.
    pub trigger: Trigger,
    /// Resume this earlier run: keep its succeeded steps.
    pub resume: Option<RunId>,
    /// The schedule's fire time, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Draw live step lines on a terminal.
    pub live: bool,
    /// Print nothing while running.
    pub quiet: bool,
}

impl RunOptions {
    /// Options for a manual run of `ds`.
    pub fn manual(ds: NaiveDate) -> Self {
        Self {
            ds,
            params: vec![],
            output_dir: None,
            trigger: Trigger::Manual,
            resume: None,
            scheduled_for: None,
            live: true,
            quiet: false,
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepResult {
    /// The step.
    pub name: String,
    /// Its final state.
    pub state: StepState,
    /// Attempts made in this run.
    pub attempts: u32,
    /// Rows written by the succeeded attempt.
    pub rows_written: Option<u64>,
    /// The last error.
    pub error: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The run's id in the history.
    pub run_id: RunId,
    /// The pipeline.
    pub pipeline: String,
    /// The logical date.
    pub ds: String,
    /// The final state.
    pub state: RunState,
    /// Per step, in file order.
    pub steps: Vec<StepResult>,
    /// The first error, if the run failed.
    pub error: Option<String>,
    /// Where outputs are.
    pub output_dir: PathBuf,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Artifacts (models, metrics) recorded by this run: (step, kind, name, value).
    pub artifacts: Vec<(String, String, String, String)>,
}

impl RunResult {
    /// Whether every step succeeded.
    pub fn succeeded(&self) -> bool {
        self.state == RunState::Succeeded
    }
}

/// The placeholder values of a run.
fn run_values(
    pipeline: &Pipeline,
    options: &RunOptions,
    output_dir: &std::path::Path,
    run_id: RunId,
) -> Result<Values> {
    let mut values = Values::new(pipeline.spec.params.clone());
    for (name, value) in &options.params {
        if !pipeline.spec.params.contains_key(name) {
            return Err(PipelineError::Invalid {
                path: pipeline.path.clone(),
                message: format!(
                    "--param {name}: the pipeline has no parameter '{name}' (its [params]: {})",
                    pipeline
                        .spec
                        .params
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        values.set(name, value.clone());
    }
    let ds = options.ds.format("%Y-%m-%d").to_string();
    values.set("ds_nodash", ds.replace('-', ""));
    values.set("ds", ds);
    values.set("run_id", run_id.to_string());
    values.set("pipeline", pipeline.spec.name.clone());
    values.set("pipeline_dir", pipeline.dir.to_string_lossy().to_string());
    values.set("output_dir", output_dir.to_string_lossy().to_string());
    values.set("attempt", "1");
    Ok(values)
}

/// Resolves the run's output directory.
pub fn output_dir(pipeline: &Pipeline, options: &RunOptions) -> Result<PathBuf> {
    if let Some(dir) = &options.output_dir {
        return std::path::absolute(dir).map_err(|source| PipelineError::Read {
            path: dir.clone(),
            source,
        });
    }
    let mut values = Values::new(pipeline.spec.params.clone());
    for (k, v) in &options.params {
        values.set(k, v.clone());
    }
    values.set("ds", options.ds.format("%Y-%m-%d").to_string());
    values.set("pipeline", pipeline.spec.name.clone());
    values.set("pipeline_dir", pipeline.dir.to_string_lossy().to_string());
    let text = match &pipeline.spec.output_dir {
        Some(t) => values.render("pipeline", t)?,
        None => "output".to_string(),
    };
    Ok(PathBuf::from(tables::resolve(&pipeline.dir, &text)))
}

/// Runs `pipeline` on `ember`, recording it in `history`.
pub async fn run_pipeline(
    pipeline: Arc<Pipeline>,
    ember: Arc<EmberContext>,
    history: Arc<History>,
    options: RunOptions,
) -> Result<RunResult> {
    let started = Instant::now();
    history.mark_dead_runs()?;
    let names = pipeline.step_names();
    let n = names.len();

    // A resumed run keeps the date, parameters and succeeded steps of the old one.
    let mut options = options;
    let mut kept = vec![false; n];
    if let Some(old) = options.resume {
        let details = history.run(old)?;
        if details.summary.pipeline != pipeline.spec.name {
            return Err(PipelineError::Invalid {
                path: pipeline.path.clone(),
                message: format!(
                    "run {old} is a run of pipeline '{}', not '{}'",
                    details.summary.pipeline, pipeline.spec.name
                ),
            });
        }
        options.ds = NaiveDate::parse_from_str(&details.summary.ds, "%Y-%m-%d").map_err(|e| {
            PipelineError::Contract(format!(
                "run {old} has an unreadable date '{}': {e}",
                details.summary.ds
            ))
        })?;
        let recorded: RecordedParams = serde_json::from_str(&details.params_json).map_err(|e| {
            PipelineError::Contract(format!(
                "run {old} has unreadable parameters ({e}); start a new run instead"
            ))
        })?;
        // The old run's parameters, overridden by any given now.
        let mut merged = recorded.params;
        for (k, v) in options.params.drain(..) {
            merged.insert(k, v);
        }
        options.params = merged.into_iter().collect();
        if options.output_dir.is_none() {
            options.output_dir = recorded.output_dir.map(PathBuf::from);
        }
        for step in &details.steps {
            if step.state == StepState::Succeeded
                && let Some(i) = pipeline.step(&step.name)
            {
                kept[i] = true;
            }
        }
        options.trigger = Trigger::Resume;
    }
    let output_dir = output_dir(&pipeline, &options)?;
    let ds = options.ds.format("%Y-%m-%d").to_string();
    let params_json = serde_json::to_string(&RecordedParams {
        params: options.params.iter().cloned().collect(),
        output_dir: Some(output_dir.to_string_lossy().to_string()),
    })
    .unwrap_or_else(|_| "{}".to_string());
    let run_id = history.start_run(
        &NewRun {
            pipeline: pipeline.spec.name.clone(),
            pipeline_path: pipeline.path.to_string_lossy().to_string(),
            ds: ds.clone(),
            trigger: options.trigger,
            resumed_from: options.resume,
            scheduled_for: options.scheduled_for,
            params_json,
        },
        &names,
    )?;
    let display = Arc::new(RunDisplay::new(&names, options.live, options.quiet));
    display.note(&format!(
        "ember run: pipeline '{}' for {ds}, run {run_id} on {}{}",
        pipeline.spec.name,
        ember.target().describe(),
        options
            .resume
            .map(|r| format!(" (resuming run {r})"))
            .unwrap_or_default()
    ));

    let outcome = execute(
        &pipeline,
        &ember,
        &history,
        &options,
        run_id,
        &output_dir,
        &kept,
        &display,
    )
    .await;
    let (states, first_error, timed_out) = match outcome {
        Ok(v) => v,
        Err(e) => {
            // Failed outside any step (an input's contract, a missing input,
            // the history): steps not finished are skipped; the run fails
            // like any other, so its hook runs and a backfill goes on.
            let message = e.to_string();
            let recorded = history.run(run_id)?;
            let mut states = Vec::new();
            for step in &recorded.steps {
                let mut state = step.state;
                let mut error = step.error.clone();
                if !state.is_terminal() {
                    state = StepState::Skipped;
                    error = Some(format!("not run: {message}"));
                    history.set_step_state(run_id, &step.name, state, error.as_deref())?;
                }
                states.push(StepResult {
                    name: step.name.clone(),
                    state,
                    attempts: step.attempts,
                    rows_written: step.rows_written,
                    error,
                });
            }
            display.note(&format!("ember run: {message}"));
            (states, Some(message), false)
        }
    };
    let state = if states.iter().all(|s| s.state == StepState::Succeeded) {
        RunState::Succeeded
    } else if timed_out {
        RunState::TimedOut
    } else {
        RunState::Failed
    };
    history.finish_run(run_id, state, first_error.as_deref())?;
    let details = history.run(run_id)?;
    let artifacts = details
        .artifacts
        .iter()
        .map(|a| {
            (
                a.step.clone(),
                a.kind.as_str().to_string(),
                a.name.clone(),
                a.value.clone(),
            )
        })
        .collect();
    let result = RunResult {
        run_id,
        pipeline: pipeline.spec.name.clone(),
        ds,
        state,
        steps: states,
        error: first_error,
        output_dir,
        seconds: started.elapsed().as_secs_f64(),
        artifacts,
    };
    if !result.succeeded()
        && let Some(hook) = &pipeline.spec.on_failure
    {
        super::hook::run_failure_hook(hook, &result, &display).await;
    }
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    pipeline: &Arc<Pipeline>,
    ember: &Arc<EmberContext>,
    history: &Arc<History>,
    options: &RunOptions,
    run_id: RunId,
    output_dir: &std::path::Path,
    kept: &[bool],
    display: &Arc<RunDisplay>,
) -> Result<(Vec<StepResult>, Option<String>, bool)> {
    let values = run_values(pipeline, options, output_dir, run_id)?;
    let ds = options.ds.format("%Y-%m-%d").to_string();
    let locations: Locations = Arc::default();

    // The run's deadline covers the inputs and their contracts too.
    let deadline = pipeline
        .timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let inputs = async {
        // Inputs, and their contracts, before any step.
        for (name, table) in &pipeline.spec.tables {
            let path = tables::resolve(
                &pipeline.dir,
                &values.render(&format!("table {name}"), &table.path)?,
            );
            let format = Format::parse(table.format.as_deref());
            tables::register(ember.session(), name, &path, format).await?;
            if let Ok(mut l) = locations.lock() {
                l.insert(name.clone(), (path.clone(), format));
            }
            if let Some(expect) = &table.expect {
                let runner = crate::sql::SqlRunner::new(ember, false);
                expect::check(&runner, &format!("input table '{name}'"), name, expect).await?;
            }
        }
        Ok::<(), PipelineError>(())
    };
    match deadline {
        Some(d) => tokio::time::timeout_at(d, inputs).await.map_err(|_| {
            PipelineError::TimedOut(format!(
                "{} (the run's timeout) while reading its input tables",
                humantime::format_duration(pipeline.timeout.unwrap_or_default())
            ))
        })??,
        None => inputs.await?,
    }

    let n = pipeline.spec.steps.len();
    let mut results: Vec<StepResult> = pipeline
        .spec
        .steps
        .iter()
        .map(|s| StepResult {
            name: s.name.clone(),
            state: StepState::Pending,
            attempts: 0,
            rows_written: None,
            error: None,
        })
        .collect();
    // Steps kept from a resumed run: their outputs are registered, not rebuilt.
    for i in 0..n {
        if kept[i] {
            let ctx = step_context(
                pipeline,
                ember,
                &values,
                &ds,
                output_dir,
                i,
                watch::channel(false).1,
                &locations,
            );
            for table in pipeline.spec.steps[i].writes() {
                let location = ctx.output_location(&table, partitioned(&pipeline.spec.steps[i]));
                ctx.register(&table, &location, Format::Parquet).await?;
            }
            results[i].state = StepState::Succeeded;
            history.set_step_state(
                run_id,
                &results[i].name,
                StepState::Succeeded,
                Some("kept from the resumed run"),
            )?;
            display.update(i, "succeeded", "kept from the resumed run", true);
        }
    }

    let (run_cancel_tx, run_cancel) = watch::channel(false);
    let mut running: JoinSet<(usize, StepResult)> = JoinSet::new();
    let mut first_error: Option<String> = None;
    let mut timed_out = false;
    loop {
        // Skip everything downstream of a failure (in dependency order, so a
        // skip reaches every descendant in one pass).
        for &i in &pipeline.order {
            if results[i].state == StepState::Pending
                && let Some(&bad) = pipeline.deps[i].iter().find(|&&d| {
                    matches!(
                        results[d].state,
                        StepState::Failed | StepState::TimedOut | StepState::Skipped
                    )
                })
            {
                let why = format!("'{}' did not succeed", results[bad].name);
                results[i].state = StepState::Skipped;
                results[i].error = Some(why.clone());
                history.set_step_state(run_id, &results[i].name, StepState::Skipped, Some(&why))?;
                display.update(i, "skipped", &why, true);
            }
        }
        // Start what is ready.
        if !*run_cancel.borrow() {
            for &i in &pipeline.order {
                if running.len() >= pipeline.max_parallel() {
                    break;
                }
                let ready = results[i].state == StepState::Pending
                    && pipeline.deps[i]
                        .iter()
                        .all(|&d| results[d].state == StepState::Succeeded);
                if !ready {
                    continue;
                }
                results[i].state = StepState::Running;
                history.set_step_state(run_id, &results[i].name, StepState::Running, None)?;
                let task = StepTask {
                    pipeline: Arc::clone(pipeline),
                    ember: Arc::clone(ember),
                    history: Arc::clone(history),
                    display: Arc::clone(display),
                    values: values.clone(),
                    ds: ds.clone(),
                    output_dir: output_dir.to_path_buf(),
                    index: i,
                    run_id,
                    run_cancel: run_cancel.clone(),
                    locations: Arc::clone(&locations),
                };
                running.spawn(async move {
                    let result = task.run().await;
                    (i, result)
                });
            }
        }
        if running.is_empty() {
            break;
        }
        let stopped = *run_cancel.borrow();
        let until_deadline = async {
            match deadline {
                Some(d) if !stopped => tokio::time::sleep_until(d).await,
                _ => std::future::pending::<()>().await,
            }
        };
        let interrupted = async {
            if stopped || tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let joined = tokio::select! {
            j = running.join_next() => j,
            _ = until_deadline => {
                timed_out = true;
                let _ = run_cancel_tx.send(true);
                first_error.get_or_insert_with(|| format!(
                    "the run exceeded its timeout of {}", humantime::format_duration(pipeline.timeout.unwrap_or_default())
                ));
                display.note("ember run: the run timed out; cancelling running steps");
                continue;
            }
            _ = interrupted => {
                let _ = run_cancel_tx.send(true);
                first_error.get_or_insert_with(|| "interrupted (Ctrl-C); running jobs were cancelled".to_string());
                display.note("ember run: interrupted; cancelling running steps");
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let (i, result) =
            joined.map_err(|e| PipelineError::Contract(format!("a step task failed: {e}")))?;
        if result.state != StepState::Succeeded && first_error.is_none() {
            first_error = Some(format!(
                "step '{}' {}: {}",
                result.name,
                result.state.as_str(),
                result.error.clone().unwrap_or_default()
            ));
        }
        results[i] = result;
    }
    // Steps never started because the run was cancelled.
    for r in results.iter_mut() {
        if r.state == StepState::Pending {
            r.state = StepState::Skipped;
            r.error = Some(if timed_out {
                "the run timed out before this step started".to_string()
            } else {
                "the run was interrupted before this step started".to_string()
            });
            history.set_step_state(run_id, &r.name, StepState::Skipped, r.error.as_deref())?;
        }
    }
    Ok((results, first_error, timed_out))
}

fn partitioned(step: &super::spec::StepSpec) -> bool {
    step.sql.as_ref().is_some_and(|s| s.partition_by_date)
        || step.features.as_ref().is_some_and(|s| s.partition_by_date)
        || step.score.as_ref().is_some_and(|s| s.partition_by_date)
}

#[allow(clippy::too_many_arguments)]
fn step_context(
    pipeline: &Arc<Pipeline>,
    ember: &Arc<EmberContext>,
    values: &Values,
    ds: &str,
    output_dir: &std::path::Path,
    index: usize,
    cancel: watch::Receiver<bool>,
    locations: &Locations,
) -> StepContext {
    StepContext {
        ember: Arc::clone(ember),
        pipeline: Arc::clone(pipeline),
        index,
        values: values.clone(),
        ds: ds.to_string(),
        output_dir: output_dir.to_path_buf(),
        cancel,
        locations: Arc::clone(locations),
    }
}

/// One step, all its attempts.
struct StepTask {
    pipeline: Arc<Pipeline>,
    ember: Arc<EmberContext>,
    history: Arc<History>,
    display: Arc<RunDisplay>,
    values: Values,
    ds: String,
    output_dir: PathBuf,
    index: usize,
    run_id: RunId,
    run_cancel: watch::Receiver<bool>,
    locations: Locations,
}

/// How one attempt ended.
enum Attempt {
    Done(Result<StepOutcome>),
    TimedOut(Duration),
    RunCancelled,
}

impl StepTask {
    fn name(&self) -> &str {
        &self.pipeline.spec.steps[self.index].name
    }

    async fn run(self) -> StepResult {
        let spec = &self.pipeline.spec.steps[self.index];
        let name = spec.name.clone();
        let mut result = StepResult {
            name: name.clone(),
            state: StepState::Running,
            attempts: 0,
            rows_written: None,
            error: None,
        };
        let timeout = self.pipeline.step_timeouts[self.index];
        let mut delay = self.pipeline.retry_delays[self.index].min(MAX_RETRY_DELAY);
        let started = Instant::now();
        for _ in 0..=spec.retries {
            let attempt = match self.history.start_attempt(self.run_id, &name) {
                Ok(a) => a,
                Err(e) => {
                    result.state = StepState::Failed;
                    result.error = Some(e.to_string());
                    break;
                }
            };
            result.attempts += 1;
            let detail = if attempt > 1 {
                format!("attempt {attempt}")
            } else {
                String::new()
            };
            self.display.update(self.index, "running", &detail, false);
            let mut permanent = false;
            let (attempt_state, error, outcome) = match self.attempt(attempt, timeout).await {
                Attempt::Done(Ok(outcome)) => (StepState::Succeeded, None, Some(outcome)),
                Attempt::Done(Err(e)) => {
                    // A wrong placeholder fails every attempt the same way.
                    permanent = matches!(e, PipelineError::Template { .. });
                    (StepState::Failed, Some(e.to_string()), None)
                }
                Attempt::TimedOut(t) => (
                    StepState::TimedOut,
                    Some(format!(
                        "timed out after {}; its job was cancelled",
                        humantime::format_duration(t)
                    )),
                    None,
                ),
                Attempt::RunCancelled => (
                    StepState::TimedOut,
                    Some("the run timed out; the step's job was cancelled".to_string()),
                    None,
                ),
            };
            let rows = outcome.as_ref().and_then(|o| o.rows_written);
            let _ = self.history.finish_attempt(
                self.run_id,
                &name,
                attempt,
                attempt_state,
                error.as_deref(),
                rows,
            );
            if let Some(outcome) = outcome {
                for (kind, artifact, value) in &outcome.artifacts {
                    let _ =
                        self.history
                            .record_artifact(self.run_id, &name, *kind, artifact, value);
                }
                for warning in &outcome.warnings {
                    let _ = self.history.record_artifact(
                        self.run_id,
                        &name,
                        ArtifactKind::Metrics,
                        "warning",
                        warning,
                    );
                    self.display
                        .note(&format!("ember run: step {name}: {warning}"));
                }
                result.state = StepState::Succeeded;
                result.rows_written = rows;
                result.error = None;
                break;
            }
            result.state = attempt_state;
            result.error = error;
            let run_cancelled = *self.run_cancel.borrow();
            if attempt > spec.retries || run_cancelled || permanent {
                break;
            }
            self.display.update(
                self.index,
                "retrying",
                &format!(
                    "attempt {attempt} failed ({}); next in {}",
                    short(result.error.as_deref()),
                    humantime::format_duration(delay)
                ),
                false,
            );
            let mut run_cancel = self.run_cancel.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = run_cancel.wait_for(|c| *c) => break,
            }
            delay = delay
                .checked_mul(2)
                .unwrap_or(MAX_RETRY_DELAY)
                .min(MAX_RETRY_DELAY);
        }
        let _ =
            self.history
                .set_step_state(self.run_id, &name, result.state, result.error.as_deref());
        let elapsed = format!("{:.1} s", started.elapsed().as_secs_f64());
        let detail = match (result.state, result.rows_written) {
            (StepState::Succeeded, Some(rows)) => format!("{rows} rows in {elapsed}"),
            (StepState::Succeeded, None) => format!("in {elapsed}"),
            _ => format!(
                "{} (after {} attempt(s))",
                short(result.error.as_deref()),
                result.attempts
            ),
        };
        self.display
            .update(self.index, result.state.as_str(), &detail, true);
        result
    }

    async fn attempt(&self, attempt: u32, timeout: Option<Duration>) -> Attempt {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let ctx = step_context(
            &self.pipeline,
            &self.ember,
            &self.values.with("attempt", attempt.to_string()),
            &self.ds,
            &self.output_dir,
            self.index,
            cancel_rx,
            &self.locations,
        );
        let future = steps::run_step(&ctx);
        tokio::pin!(future);
        let timer = async {
            match timeout {
                Some(t) => match tokio::time::Instant::now().checked_add(t) {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                },
                None => std::future::pending::<()>().await,
            }
        };
        let mut run_cancel = self.run_cancel.clone();
        let ended = tokio::select! {
            r = &mut future => return Attempt::Done(r),
            _ = timer => Attempt::TimedOut(timeout.unwrap_or_default()),
            _ = run_cancel.wait_for(|c| *c) => Attempt::RunCancelled,
        };
        // Tell the step to cancel its job, and give it time to do so. A step
        // that completes in that time anyway (its output is committed) has
        // succeeded; one that fails was stopped by the timeout.
        let _ = cancel_tx.send(true);
        match tokio::time::timeout(CANCEL_GRACE, &mut future).await {
            Ok(Ok(outcome)) => Attempt::Done(Ok(outcome)),
            Ok(Err(_)) => ended,
            Err(_) => {
                tracing::warn!(
                    "step {} did not stop within {CANCEL_GRACE:?} of being cancelled",
                    self.name()
                );
                ended
            }
        }
    }
}

fn short(error: Option<&str>) -> String {
    let text = error.unwrap_or("failed");
    let line = crate::error::one_line(text);
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line
    }
}
