//! `ember-executor`: Ballista's executor with Ember's functions, options,
//! codecs and object stores.
//!
//! It registers with a scheduler, runs the tasks it is given (push
//! scheduling, the default: the scheduler calls the executor's gRPC port) and
//! serves its shuffle output to other executors and clients over Arrow
//! Flight. With `--memory-limit`, every task runs under a share of that limit
//! and spills to the work directory instead of growing past it.

mod args;
mod error;

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;
use ember_core::access::ClusterAccess;
use ember_core::auth::AuthToken;
use ember_core::codec::{EmberLogicalCodec, EmberPhysicalCodec};
use ember_core::data_roots::DataRoots;
use ember_core::registry::{executor_function_registry, set_training_rows_memory};
use ember_core::session::{ember_config_producer, executor_runtime_producer, limit_to_data_roots};
use ember_core::tls::ServerIdentity;

use crate::args::Args;
use crate::error::{ExecutorError, Result};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => Err(ExecutorError::Runtime(e)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ember-executor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

async fn run(args: Args) -> Result<()> {
    let (scheduler_host, scheduler_port) = args.scheduler_host_port()?;
    let work_dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| ExecutorError::WorkDir {
                path: dir.display().to_string(),
                source,
            })?;
            dir.to_string_lossy().to_string()
        }
        None => std::env::temp_dir()
            .join(format!("ember-executor-{}", std::process::id()))
            .to_string_lossy()
            .to_string(),
    };
    std::fs::create_dir_all(&work_dir).map_err(|source| ExecutorError::WorkDir {
        path: work_dir.clone(),
        source,
    })?;
    let memory_limit = args.memory_limit_bytes()?;
    set_training_rows_memory(args.training_rows_memory_bytes()?);
    let auth = AuthToken::resolve(args.auth_token_file.as_deref())?;
    let tls = args.tls.load()?;
    let access = ClusterAccess {
        auth: auth.clone(),
        tls: tls.ca.clone(),
    };
    if !args.data_roots.is_empty() {
        let roots = DataRoots::parse(&args.data_roots)?;
        tracing::info!("reading and writing only under: {}", roots.describe());
        limit_to_data_roots(roots)?;
    }
    let vcores = args.vcores.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });

    wait_for_scheduler(
        &scheduler_host,
        scheduler_port,
        args.scheduler_connect_timeout_seconds,
    )
    .await?;

    let config = ExecutorProcessConfig {
        bind_host: args.bind_host.clone(),
        external_host: args.external_host.clone(),
        port: args.flight_port,
        grpc_port: args.grpc_port,
        scheduler_host,
        scheduler_port,
        // Reachability was checked above; Ballista's own retry loop never
        // times out, so it is not used.
        scheduler_connect_timeout_seconds: 0,
        vcores,
        task_scheduling_policy: args.scheduling.into(),
        work_dir: Some(work_dir.clone()),
        special_mod_log_level: args.log_level.clone(),
        executor_heartbeat_interval_seconds: args.heartbeat_interval_seconds,
        memory_pool_size: memory_limit,
        override_function_registry: Some(Arc::new(executor_function_registry())),
        override_config_producer: Some(ember_config_producer(&access)),
        override_grpc_request_check: auth.as_ref().map(AuthToken::grpc_request_check),
        override_create_grpc_client_endpoint: access.endpoint_override(),
        override_server_tls: tls.identity.as_ref().map(ServerIdentity::tonic_config),
        override_runtime_producer: Some(executor_runtime_producer(work_dir)),
        override_logical_codec: Some(Arc::new(EmberLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(EmberPhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(
        "ember-executor {} starting: scheduler {}:{}, Flight port {}, gRPC port {}, {} vcores, memory limit {}",
        ember_core::EMBER_VERSION,
        config.scheduler_host,
        config.scheduler_port,
        config.port,
        config.grpc_port,
        vcores,
        memory_limit.map_or("none".to_string(), |b| format!("{b} bytes")),
    );
    if let Some(identity) = &tls.identity {
        tracing::info!(
            "TLS on: Flight and gRPC ports present {}",
            identity.cert_path().display()
        );
    }
    if auth.is_none() {
        tracing::warn!(
            "no auth token (--auth-token-file, EMBER_AUTH_TOKEN_FILE or EMBER_AUTH_TOKEN): anyone who reaches the Flight and gRPC ports can read shuffle data and launch tasks"
        );
    }
    let scheduler = format!("df://{}:{}", config.scheduler_host, config.scheduler_port);
    match start_executor_process(Arc::new(config)).await {
        Err(source) if tls.identity.is_none() && source.to_string().contains("transport") => {
            Err(ExecutorError::PlainToTls {
                address: scheduler,
                source,
            })
        }
        result => Ok(result?),
    }
}

/// Waits until the scheduler accepts connections, for at most `timeout_seconds`.
async fn wait_for_scheduler(host: &str, port: u16, timeout_seconds: u16) -> Result<()> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(u64::from(timeout_seconds));
    loop {
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(ExecutorError::SchedulerUnreachable {
                    address: format!("df://{host}:{port}"),
                    seconds: timeout_seconds,
                    reason: e.to_string(),
                });
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
