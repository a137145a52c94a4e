//! Job progress on the terminal, read from the scheduler.
//!
//! While a statement runs, a background task asks the scheduler's
//! `/api/ember/job/{id}` route (see `ember_core::jobs_api`) how many stages
//! and partitions are done, and draws one line on stderr. Nothing is drawn
//! when stderr is not a terminal, nor for a job that ends within the first
//! second, so piped output and quick queries stay clean.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::execution_plans::DistributedQueryExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::protobuf::LogicalPlanNode;
use ember_core::jobs_api::JobProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a job runs before its progress is drawn.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the scheduler is asked.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Progress of one running job.
pub struct JobProgressDisplay {
    scheduler_http: String,
    rest: reqwest::Client,
    plan: Arc<dyn ExecutionPlan>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl JobProgressDisplay {
    /// Starts following the job `plan` submits. With `enabled` false (or
    /// stderr not a terminal) nothing is drawn, but [`Self::cancel_job`]
    /// still works.
    /// `rest` is the session's REST client (it carries the cluster's token).
    pub fn start(
        scheduler_http: String,
        rest: reqwest::Client,
        plan: Arc<dyn ExecutionPlan>,
        enabled: bool,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = (enabled && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            tokio::spawn(follow(
                scheduler_http.clone(),
                rest.clone(),
                Arc::clone(&plan),
                stopped,
            ))
        });
        Self {
            scheduler_http,
            rest,
            plan,
            stop,
            task,
        }
    }

    /// The job's id, once the scheduler has accepted it.
    pub fn job_id(&self) -> Option<String> {
        job_id_of(&self.plan)
    }

    /// Asks the scheduler to cancel the job (and its running tasks).
    pub async fn cancel_job(&self) {
        let Some(job_id) = self.job_id() else { return };
        let url = format!("{}/api/job/{job_id}", self.scheduler_http);
        match self
            .rest
            .patch(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => eprintln!("ember: cancelled job {job_id}"),
            Ok(r) => eprintln!(
                "ember: cancelling job {job_id}: scheduler answered {}",
                r.status()
            ),
            Err(e) => eprintln!("ember: cancelling job {job_id}: {e}"),
        }
    }

    /// Stops drawing and clears the line.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn job_id_of(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()
        .and_then(|exec| exec.job_id())
        .map(|id| id.to_string())
}

async fn follow(
    scheduler_http: String,
    client: reqwest::Client,
    plan: Arc<dyn ExecutionPlan>,
    mut stopped: watch::Receiver<bool>,
) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
        if started.elapsed() >= SHOW_AFTER && bar.is_hidden() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        let Some(job_id) = job_id_of(&plan) else {
            bar.set_message("submitting job".to_string());
            bar.tick();
            continue;
        };
        let url = format!("{scheduler_http}/api/ember/job/{job_id}");
        let progress = match client.get(&url).timeout(POLL_EVERY * 4).send().await {
            Ok(r) if r.status().is_success() => r.json::<JobProgress>().await.ok(),
            _ => None,
        };
        if let Some(progress) = progress {
            bar.set_message(describe(&progress));
        }
        bar.tick();
    }
    bar.finish_and_clear();
}

/// One line: `job 3fZ: stage 2/4, 37/64 partitions`.
pub fn describe(progress: &JobProgress) -> String {
    let (stages_done, stages) = progress.stage_counts();
    let (parts_done, parts) = progress.partition_counts();
    format!(
        "job {}: {} · stage {stages_done}/{stages} · {parts_done}/{parts} partitions",
        progress.job_id,
        progress.status.to_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_core::jobs_api::StageProgress;

    #[test]
    fn the_line_counts_stages_and_partitions() {
        let stage = |id, status: &str, done, total| StageProgress {
            stage_id: id,
            status: status.to_string(),
            partitions_total: total,
            partitions_done: done,
            tasks: vec![],
        };
        let progress = JobProgress {
            job_id: "abc".into(),
            status: "Running".into(),
            error: None,
            stages: vec![stage(1, "Successful", 4, 4), stage(2, "Running", 1, 8)],
            completed_tasks_by_executor: Default::default(),
        };
        assert_eq!(
            describe(&progress),
            "job abc: running · stage 1/2 · 5/12 partitions"
        );
    }
}
