//! `ember schedule DIR` and `ember backfill`: runs by the calendar.
//!
//! The scheduler reads every `*.toml` pipeline in a directory that has a
//! `[schedule]`, and on each tick asks [`ParsedSchedule::due`] which fire
//! times have passed since the last scheduled run recorded in the history
//! (so a restarted scheduler picks up where it stopped, and the catch-up
//! policy decides what happens to runs missed while it was down). A
//! pipeline never seen before starts from the scheduler's start time: no
//! surprise backfill of the past. Due runs of one pipeline run one after the
//! other, oldest first; different pipelines run side by side. The directory
//! is re-read on every tick, so adding or editing a pipeline needs no
//! restart; a file that does not load is reported once and skipped.
//!
//! Every run gets a session of its own on the cluster (or its own embedded
//! cluster), so two pipelines with a table of the same name, or two dates of
//! one backfill, never see each other's tables; and with a shared
//! `--output-dir`, each pipeline writes under a directory of its own name.
//!
//! Time comes from a [`Clock`], so tests drive the calendar without sleeping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use ember_core::{ClusterTarget, EmberContext};

use super::error::{PipelineError, Result};
use super::load::Pipeline;
use super::runner::{RunOptions, RunResult, run_pipeline};
use super::schedule_spec::ParsedSchedule;
use crate::history::{History, Trigger};

/// The source of "now".
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The longest the scheduler sleeps between looks at the directory.
pub const POLL: Duration = Duration::from_secs(30);

/// Scheduled pipelines of one directory.
pub struct Scheduler {
    dir: PathBuf,
    target: ClusterTarget,
    history: Arc<History>,
    clock: Clock,
    first_seen: BTreeMap<String, DateTime<Utc>>,
    reported: BTreeMap<PathBuf, String>,
    /// Run options used for every run (output dir, parameters, display).
    pub template: RunOptions,
}

impl Scheduler {
    /// A scheduler for the pipelines in `dir`.
    pub fn new(
        dir: &Path,
        target: ClusterTarget,
        history: Arc<History>,
        clock: Clock,
        template: RunOptions,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            target,
            history,
            clock,
            first_seen: BTreeMap::new(),
            reported: BTreeMap::new(),
            template,
        }
    }

    /// The scheduled pipelines in the directory now.
    pub fn pipelines(&mut self) -> Result<Vec<(Arc<Pipeline>, ParsedSchedule)>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| PipelineError::Read {
            path: self.dir.clone(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        let mut found = Vec::new();
        for path in paths {
            match Pipeline::load(&path) {
                Ok(p) => {
                    self.reported.remove(&path);
                    if let Some(spec) = &p.spec.schedule
                        && let Ok(schedule) = ParsedSchedule::parse(spec)
                    {
                        found.push((Arc::new(p), schedule));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    if self.reported.get(&path) != Some(&message) {
                        eprintln!("ember schedule: skipping {}: {message}", path.display());
                        self.reported.insert(path, message);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Runs every run due now; returns their results.
    pub async fn tick(&mut self) -> Result<Vec<RunResult>> {
        let now = (self.clock)();
        let mut plans = Vec::new();
        for (pipeline, schedule) in self.pipelines()? {
            let name = pipeline.spec.name.clone();
            let last = match self.history.last_scheduled(&name)? {
                Some(t) => t,
                None => *self.first_seen.entry(name).or_insert(now),
            };
            let due = schedule.due(last, now);
            if !due.is_empty() {
                plans.push((pipeline, due));
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (pipeline, due) in plans {
            let target = self.target.clone();
            let history = Arc::clone(&self.history);
            let mut template = self.template.clone();
            template.output_dir = template.output_dir.map(|d| d.join(&pipeline.spec.name));
            tasks.spawn(async move {
                let mut results = Vec::new();
                for run in due {
                    let options = RunOptions {
                        ds: run.ds,
                        trigger: Trigger::Schedule,
                        scheduled_for: Some(run.scheduled_for),
                        resume: None,
                        ..template.clone()
                    };
                    let outcome = match connect(&target).await {
                        Ok(ember) => {
                            run_pipeline(
                                Arc::clone(&pipeline),
                                ember,
                                Arc::clone(&history),
                                options,
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(r) => results.push(r),
                        Err(e) => {
                            eprintln!("ember schedule: {} for {}: {e}", pipeline.spec.name, run.ds)
                        }
                    }
                }
                results
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            results.extend(done.map_err(|e| {
                PipelineError::Contract(format!("a scheduled run's task failed: {e}"))
            })?);
        }
        Ok(results)
    }

    /// How long to sleep before the next tick: until the next fire time of
    /// any pipeline, at most [`POLL`].
    pub fn sleep_for(&mut self) -> Duration {
        let now = (self.clock)();
        let next = self
            .pipelines()
            .unwrap_or_default()
            .iter()
            .filter_map(|(_, s)| s.next_after(now))
            .min();
        match next {
            Some(t) => (t - now).to_std().unwrap_or_default().min(POLL),
            None => POLL,
        }
    }

    /// Ticks until Ctrl-C.
    pub async fn run_forever(&mut self) -> Result<()> {
        loop {
            for r in self.tick().await? {
                eprintln!(
                    "ember schedule: {} for {} (run {}): {}",
                    r.pipeline,
                    r.ds,
                    r.run_id,
                    r.state.as_str()
                );
            }
            let wait = self.sleep_for() + Duration::from_millis(200);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

/// A fresh session on `target` for one run.
async fn connect(target: &ClusterTarget) -> Result<Arc<EmberContext>> {
    EmberContext::connect(target.clone())
        .await
        .map(Arc::new)
        .map_err(|e| PipelineError::Step(crate::error::JobsError::from(e)))
}

/// Runs `pipeline` for every date from `from` to `to` (inclusive), oldest
/// first, each in a session of its own; a failed date is reported and the
/// next one still runs.
pub async fn backfill(
    pipeline: Arc<Pipeline>,
    target: ClusterTarget,
    history: Arc<History>,
    from: NaiveDate,
    to: NaiveDate,
    template: RunOptions,
) -> Result<Vec<RunResult>> {
    if to < from {
        return Err(PipelineError::Contract(format!(
            "backfill: --to {to} is before --from {from}"
        )));
    }
    let mut results = Vec::new();
    let mut day = from;
    while day <= to {
        let options = RunOptions {
            ds: day,
            trigger: Trigger::Backfill,
            scheduled_for: None,
            resume: None,
            ..template.clone()
        };
        let ember = connect(&target).await?;
        results
            .push(run_pipeline(Arc::clone(&pipeline), ember, Arc::clone(&history), options).await?);
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    Ok(results)
}
