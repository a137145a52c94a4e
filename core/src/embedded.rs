//! An in-process Ember cluster: a scheduler and one executor on loopback, so
//! that a command given no cluster address works with nothing running.
//!
//! It is the same scheduler (with Ember's routes) and the same executor code
//! as the binaries run, minus process boundaries: work is planned into stages
//! and shuffled through Arrow Flight exactly as on a real cluster, so a job
//! that works embedded works on a cluster. Scheduling is push-based, as on a
//! cluster: the scheduler launches a task the moment a slot is free and the
//! executor reports each task as it ends. (Ballista's own standalone mode
//! uses pull scheduling, where an idle executor polls every 50 ms and reports
//! finished tasks only with its next poll, which costs a few hundred
//! milliseconds per multi-stage query.) All ports are on loopback, chosen by
//! the OS, and guarded by a random token that only this process knows, so
//! other users of the machine cannot submit work to it or read its results.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::BALLISTA_PROTOCOL_VERSION;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::ids::new_instance_id;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::ExecutorRegistration;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::scheduler::{
    ExecutorOperatingSystemSpecification, ExecutorSpecification,
};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_executor::executor::Executor;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_executor::executor_server::startup;
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::health::ExecutorHealth;
use ballista_executor::metrics::LoggingMetricsCollector;
use ballista_executor::runtime_cache::{DefaultSessionRuntimeCache, MemoryPoolPolicy};
use ballista_executor::shutdown::ShutdownNotifier;
use ballista_executor::with_request_check;
use ballista_scheduler::config::SchedulerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::access::ClusterAccess;
use crate::auth::AuthToken;
use crate::codec::{EmberLogicalCodec, EmberPhysicalCodec};
use crate::error::{EmberError, Result};
use crate::registry::executor_function_registry;
use crate::scheduler_service::{create_ember_scheduler, ember_scheduler_config, serve};
use crate::session::{ember_config_producer, executor_runtime_producer};

/// Sessions whose runtime an embedded executor keeps between tasks.
const SESSION_RUNTIME_CACHE: usize = 16;

/// A running in-process cluster. Dropping it stops the scheduler and executor
/// and removes the executor's work directory.
pub struct EmbeddedCluster {
    scheduler: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    shutdown: ShutdownNotifier,
    token: AuthToken,
    _work_dir: tempfile::TempDir,
}

impl EmbeddedCluster {
    /// Starts a scheduler and an executor with `vcores` task slots.
    pub async fn start(vcores: usize) -> Result<Self> {
        let vcores = vcores.max(1);
        let listener = bind_loopback().await?;
        let scheduler = local_addr(&listener)?;

        let config = SchedulerConfig::default()
            .with_hostname("127.0.0.1")
            .with_port(scheduler.port())
            .with_scheduler_policy(TaskSchedulingPolicy::PushStaged);
        let token = AuthToken::random();
        let access = ClusterAccess::with_auth(Some(token.clone()));
        let started = create_ember_scheduler(ember_scheduler_config(config, &access)?).await?;
        let gate = Some(token.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = serve(listener, started, gate, None).await {
                log::error!("embedded scheduler stopped: {e}");
            }
        })];

        let work_dir = tempfile::Builder::new()
            .prefix("ember-embedded-")
            .tempdir()
            .map_err(|e| EmberError::io("temporary work directory", e))?;
        let work_path = work_dir.path().to_string_lossy().to_string();
        let (executor_tasks, shutdown) =
            start_executor(scheduler, vcores, work_path, &token).await?;
        tasks.extend(executor_tasks);
        Ok(Self {
            scheduler,
            tasks,
            shutdown,
            token,
            _work_dir: work_dir,
        })
    }

    /// The token every connection to this cluster must carry.
    pub fn auth_token(&self) -> &AuthToken {
        &self.token
    }

    /// The scheduler's socket address on loopback.
    pub fn scheduler_addr(&self) -> SocketAddr {
        self.scheduler
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        // Stops the executor's task runner, status reporter and heartbeat loops.
        let _ = self.shutdown.notify_shutdown.send(());
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind_loopback() -> Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| EmberError::io("127.0.0.1:0", e))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| EmberError::io("loopback listener", e))
}

async fn start_executor(
    scheduler: SocketAddr,
    vcores: usize,
    work_dir: String,
    token: &AuthToken,
) -> Result<(Vec<JoinHandle<()>>, ShutdownNotifier)> {
    let flight = bind_loopback().await?;
    let flight_addr = local_addr(&flight)?;
    // The scheduler dials the executor's gRPC port back during registration;
    // Ballista binds it itself, so it is chosen here and released just before.
    let grpc_port = local_addr(&bind_loopback().await?)?.port();
    let metadata = ExecutorRegistration {
        id: new_instance_id(),
        host: Some(flight_addr.ip().to_string()),
        port: u32::from(flight_addr.port()),
        grpc_port: u32::from(grpc_port),
        specification: Some(
            ExecutorSpecification::default()
                .with_vcores(vcores as u32)
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: BALLISTA_PROTOCOL_VERSION,
    };

    let runtime_producer = executor_runtime_producer(work_dir.clone());
    let unbounded_pool: MemoryPoolPolicy = Arc::new(|base, _config, _vcores| Ok(base));
    let runtime_cache = Arc::new(DefaultSessionRuntimeCache::new(
        Arc::clone(&runtime_producer),
        unbounded_pool,
        SESSION_RUNTIME_CACHE,
    ));
    let executor = Arc::new(
        Executor::with_default_execution_engine(
            metadata,
            &work_dir,
            runtime_producer,
            ember_config_producer(&ClusterAccess::with_auth(Some(token.clone()))),
            Arc::new(executor_function_registry()),
            Arc::new(LoggingMetricsCollector::default()),
            vcores,
        )
        .with_session_runtime_cache(Some(runtime_cache)),
    );

    let flight_service = with_request_check(
        FlightServiceServer::new(BallistaFlightService::new(work_dir.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        Some(token.grpc_request_check()),
    );
    let flight_task = tokio::spawn(async move {
        let served = create_grpc_server(&GrpcServerConfig::default())
            .add_service(flight_service)
            .serve_with_incoming(TcpListenerStream::new(flight))
            .await;
        if let Err(e) = served {
            log::error!("embedded executor's Flight service stopped: {e}");
        }
    });

    let config = Arc::new(ExecutorProcessConfig {
        bind_host: "127.0.0.1".to_string(),
        external_host: Some("127.0.0.1".to_string()),
        port: flight_addr.port(),
        grpc_port,
        scheduler_host: scheduler.ip().to_string(),
        scheduler_port: scheduler.port(),
        vcores,
        task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
        work_dir: Some(work_dir),
        override_grpc_request_check: Some(token.grpc_request_check()),
        override_create_grpc_client_endpoint: ClusterAccess::with_auth(Some(token.clone()))
            .endpoint_override(),
        ..ExecutorProcessConfig::default()
    });
    let codec: BallistaCodec = BallistaCodec::new(
        Arc::new(EmberLogicalCodec::default()),
        Arc::new(EmberPhysicalCodec::default()),
    );
    let (stop, _stopped) = tokio::sync::mpsc::channel(1);
    let shutdown = ShutdownNotifier::new();
    let client = connect_scheduler(scheduler, token).await?;
    let server = startup(
        client,
        config,
        executor,
        codec,
        stop,
        &shutdown,
        ExecutorHealth::new(),
    )
    .await?;
    let server_task = tokio::spawn(async move {
        if let Ok(Err(e)) = server.await {
            log::error!("embedded executor stopped: {e}");
        }
    });
    Ok((vec![flight_task, server_task], shutdown))
}

/// Connects to the in-process scheduler, which may need a moment to listen.
async fn connect_scheduler(
    scheduler: SocketAddr,
    token: &AuthToken,
) -> Result<SchedulerGrpcClient<tonic::transport::Channel>> {
    let url = format!("http://{scheduler}");
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .and_then(|e| e.user_agent(token.user_agent()))
        .map_err(|e| EmberError::Unreachable {
            address: url.clone(),
            reason: e.to_string(),
        })?;
    let mut last_error = String::new();
    for _ in 0..100 {
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(SchedulerGrpcClient::new(channel).max_decoding_message_size(usize::MAX));
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(EmberError::Unreachable {
        address: url,
        reason: last_error,
    })
}
