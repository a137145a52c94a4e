//! Ember's scheduler REST routes: where each task of a job ran, and how far
//! the job has got.
//!
//! Ballista's REST API reports stages and task timings but not which executor
//! ran a task, and lists no tasks for stages that have not started. Ember's
//! progress display needs totals for every stage, and operators (and Ember's
//! tests) need to see that work really spread across executors, so the
//! scheduler serves one more route:
//!
//! `GET /api/ember/job/{job_id}` returns a [`JobProgress`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use ballista_core::JobId;
use ballista_core::serde::protobuf::{job_status, task_status};
use ballista_scheduler::cluster::JobState;
use ballista_scheduler::state::execution_graph::ExecutionGraphBox;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::physical_plan::ExecutionPlanProperties;
use serde::{Deserialize, Serialize};

use crate::scheduler_service::EmberSchedulerServer;

/// A job's progress, stage by stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobProgress {
    /// The job's id.
    pub job_id: String,
    /// `Queued`, `Running`, `Completed` or `Failed`.
    pub status: String,
    /// The error, when the job failed.
    pub error: Option<String>,
    /// One entry per stage, by stage id.
    pub stages: Vec<StageProgress>,
    /// Tasks completed successfully, by the executor that ran them.
    pub completed_tasks_by_executor: BTreeMap<String, usize>,
}

impl JobProgress {
    /// Stages completed, and stages in all.
    pub fn stage_counts(&self) -> (usize, usize) {
        let done = self
            .stages
            .iter()
            .filter(|s| s.status == "Successful")
            .count();
        (done, self.stages.len())
    }

    /// Partitions completed, and partitions in all, over every stage.
    pub fn partition_counts(&self) -> (usize, usize) {
        self.stages.iter().fold((0, 0), |(d, t), s| {
            (d + s.partitions_done, t + s.partitions_total)
        })
    }

    /// Whether the job has ended, successfully or not.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "Completed" | "Failed")
    }
}

/// One stage's progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageProgress {
    /// The stage id.
    pub stage_id: usize,
    /// `Unresolved`, `Resolved`, `Running`, `Successful` or `Failed`.
    pub status: String,
    /// Partitions the stage computes (one or more per task).
    pub partitions_total: usize,
    /// Partitions whose task completed.
    pub partitions_done: usize,
    /// Every task bound so far, with the executor it ran on.
    pub tasks: Vec<TaskPlacement>,
}

/// Where one task ran and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskPlacement {
    /// The task id within the job.
    pub task_id: usize,
    /// `Running`, `Successful` or `Failed`.
    pub status: String,
    /// The executor, where known (a failed task does not report it).
    pub executor_id: Option<String>,
    /// The partitions the task covered.
    pub partitions: Vec<usize>,
}

#[derive(Clone)]
struct ApiState {
    server: Arc<EmberSchedulerServer>,
    jobs: Arc<dyn JobState>,
}

/// Ember's routes, to merge into the scheduler's router.
pub fn routes(server: Arc<EmberSchedulerServer>, jobs: Arc<dyn JobState>) -> Router {
    Router::new()
        .route("/api/ember/job/{job_id}", get(job_progress))
        .with_state(ApiState { server, jobs })
}

async fn job_progress(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobProgress>, (StatusCode, String)> {
    let id: JobId = job_id.clone().into();
    let running = state.server.state.task_manager.get_running_job_cache();
    if let Some(cached) = running.get(&id) {
        let graph = cached.execution_graph.read().await;
        return Ok(Json(progress_of(&graph)));
    }
    match state.jobs.get_execution_graph(&id).await {
        Ok(Some(graph)) => Ok(Json(progress_of(&graph))),
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no job '{job_id}'"))),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("job '{job_id}': {e}"),
        )),
    }
}

fn progress_of(graph: &ExecutionGraphBox) -> JobProgress {
    let (status, error) = match &graph.status().status {
        None => ("Queued".to_string(), None),
        Some(job_status::Status::Queued(_)) => ("Queued".to_string(), None),
        Some(job_status::Status::Running(_)) => ("Running".to_string(), None),
        Some(job_status::Status::Successful(_)) => ("Completed".to_string(), None),
        Some(job_status::Status::Failed(f)) => ("Failed".to_string(), Some(f.error.clone())),
    };
    let mut stages: Vec<StageProgress> = graph.stages().values().map(stage_progress).collect();
    stages.sort_by_key(|s| s.stage_id);
    let mut completed_tasks_by_executor = BTreeMap::new();
    for task in stages.iter().flat_map(|s| &s.tasks) {
        if let (Some(executor), "Successful") = (&task.executor_id, task.status.as_str()) {
            *completed_tasks_by_executor
                .entry(executor.clone())
                .or_insert(0) += 1;
        }
    }
    JobProgress {
        job_id: graph.job_id().to_string(),
        status,
        error,
        stages,
        completed_tasks_by_executor,
    }
}

fn stage_progress(stage: &ExecutionStage) -> StageProgress {
    let (stage_id, partitions_total) = match stage {
        ExecutionStage::UnResolved(s) => (
            s.stage_id,
            s.plan
                .children()
                .first()
                .map(|c| c.output_partitioning().partition_count())
                .unwrap_or(1),
        ),
        ExecutionStage::Resolved(s) => (s.stage_id, s.partitions),
        ExecutionStage::Running(s) => (s.stage_id, s.partitions),
        ExecutionStage::Successful(s) => (s.stage_id, s.partitions),
        ExecutionStage::Failed(s) => (s.stage_id, s.partitions),
    };
    let tasks: Vec<TaskPlacement> = stage
        .task_infos()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let (status, executor_id) = match &t.task_status {
                task_status::Status::Running(r) => ("Running", Some(r.executor_id.clone())),
                task_status::Status::Successful(s) => ("Successful", Some(s.executor_id.clone())),
                task_status::Status::Failed(_) => ("Failed", None),
            };
            TaskPlacement {
                task_id: t.task_id,
                status: status.to_string(),
                executor_id,
                partitions: t.global_input_partition_ids.clone(),
            }
        })
        .collect();
    let partitions_done = match stage {
        ExecutionStage::Successful(_) => partitions_total,
        _ => tasks
            .iter()
            .filter(|t| t.status == "Successful")
            .map(|t| t.partitions.len())
            .sum(),
    };
    StageProgress {
        stage_id,
        status: stage.variant_name().to_string(),
        partitions_total,
        partitions_done,
        tasks,
    }
}
