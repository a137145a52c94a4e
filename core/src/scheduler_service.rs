//! Ember's scheduler: Ballista's scheduler with Ember's session, codecs and
//! REST routes, served the same way by `ember-scheduler` and by the embedded
//! in-process cluster.
//!
//! One port serves Ballista's gRPC (job submission, executor registration),
//! Ballista's REST API (`/api/jobs`, `/api/job/{id}/stages`, `/api/metrics`
//! with Prometheus metrics), the probes `/healthz` and `/readyz`, and Ember's
//! own routes under `/api/ember/` (see [`crate::jobs_api`]). With an auth
//! token, every request but `/healthz` must carry it (see [`crate::auth`]);
//! with a certificate, the port serves TLS (see [`crate::tls`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

use crate::access::ClusterAccess;
use crate::auth::{AuthToken, require_token};
use crate::codec::{EmberLogicalCodec, EmberPhysicalCodec};
use crate::error::{EmberError, Result};
use crate::jobs_api;
use crate::session::{ember_config_producer, scheduler_session_builder};
use crate::tls::{ServerIdentity, TlsListener};

/// The scheduler type Ember runs.
pub type EmberSchedulerServer = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Applies Ember's session builder, config producer and codecs, and Ember's
/// defaults, to a Ballista scheduler config.
///
/// Defaults Ember changes, and why:
/// * tasks go round-robin over executors rather than filling one executor's
///   slots first, so a small cluster uses every executor from the first stage;
/// * finished jobs' shuffle files are removed after 60 s (Ballista: 300 s), as
///   Ember's clients fetch results as soon as a job completes.
///
/// The scheduler's own connections to executors use `access` (the token, and
/// TLS trusting the cluster's CA).
pub fn ember_scheduler_config(
    base: SchedulerConfig,
    access: &ClusterAccess,
) -> Result<SchedulerConfig> {
    let mut config = base
        .with_override_config_producer(ember_config_producer(access))
        .with_override_session_builder(scheduler_session_builder()?)
        .with_task_distribution(TaskDistributionPolicy::RoundRobin)
        .with_finished_job_data_clean_up_interval_seconds(60);
    config.override_logical_codec = Some(Arc::new(EmberLogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(EmberPhysicalCodec::default()));
    config.override_create_grpc_client_endpoint = access.endpoint_override();
    config.validate()?;
    Ok(config)
}

/// A started scheduler, before it is served.
pub struct StartedScheduler {
    /// The scheduler, shared with its routes.
    pub server: EmberSchedulerServer,
    /// Its cluster state (jobs, executors), for Ember's routes.
    pub cluster: BallistaCluster,
}

/// Creates the scheduler described by `config` (see [`ember_scheduler_config`]).
pub async fn create_ember_scheduler(config: SchedulerConfig) -> Result<StartedScheduler> {
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let server =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster.clone(), config).await?;
    Ok(StartedScheduler { server, cluster })
}

/// Serves gRPC, Ballista's REST API, the probes and Ember's routes on
/// `listener` until the process ends; with `auth`, only to callers that carry
/// the token; with `tls`, over TLS presenting that certificate.
pub async fn serve(
    listener: TcpListener,
    started: StartedScheduler,
    auth: Option<AuthToken>,
    tls: Option<&ServerIdentity>,
) -> Result<()> {
    let StartedScheduler { server, cluster } = started;
    let config = server.state.config.clone();
    let grpc = SchedulerGrpcServer::new(server.clone())
        .max_encoding_message_size(config.grpc_server_max_encoding_message_size as usize)
        .max_decoding_message_size(config.grpc_server_max_decoding_message_size as usize);
    let mut routes = RoutesBuilder::default();
    routes.add_service(grpc);

    let server = Arc::new(server);
    let app: Router = ballista_scheduler::api::get_routes(Arc::clone(&server))
        .merge(routes.routes().into_axum_router())
        .merge(probe_routes(Arc::clone(&server)))
        .merge(jobs_api::routes(Arc::clone(&server), cluster.job_state()))
        .route("/api/ember/auth-check", get(auth_check));
    let app = match auth {
        Some(token) => app.layer(middleware::from_fn(move |request, next| {
            require_token(token.clone(), request, next)
        })),
        None => app,
    };

    // Ballista's scheduler reads each caller's address (`ConnectInfo`), for
    // executors that register without a host name.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        None => axum::serve(listener, app).await,
        // `tap_io` (a no-op here) is what gives a custom listener axum's
        // `ConnectInfo<SocketAddr>`.
        Some(identity) => {
            let listener = TlsListener::new(listener, identity)?.tap_io(|_| {});
            axum::serve(listener, app).await
        }
    };
    served.map_err(|e| EmberError::io("scheduler listener", e))
}

/// Answers only callers the token gate let through: clients call it to learn,
/// before submitting anything, whether their token is accepted.
async fn auth_check() -> &'static str {
    "ok\n"
}

/// `/healthz` (the process is up) and `/readyz` (enough executors registered).
fn probe_routes(server: Arc<EmberSchedulerServer>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/readyz", get(readyz))
        .with_state(server)
}

async fn readyz(State(server): State<Arc<EmberSchedulerServer>>) -> Response {
    let registered = server
        .state
        .executor_manager
        .get_executors_state()
        .await
        .map(|s| s.len())
        .unwrap_or(0);
    let required = server.state.config.min_ready_executors;
    if server.is_ready() {
        (
            StatusCode::OK,
            format!("ready: {registered} executors registered\n"),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {registered}/{required} executors registered\n"),
        )
            .into_response()
    }
}
