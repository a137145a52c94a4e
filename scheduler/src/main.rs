//! `ember-scheduler`: Ballista's scheduler with Ember's functions, options,
//! codecs and REST routes.
//!
//! One port serves gRPC (clients submit jobs, executors register), the REST
//! API (`/api/jobs`, `/api/job/{id}/stages`, `/api/metrics` in Prometheus
//! format, Ember's `/api/ember/job/{id}`) and the probes `/healthz` and
//! `/readyz`.

mod args;
mod error;

use ballista_scheduler::config::SchedulerConfig;
use clap::Parser;
use ember_core::access::ClusterAccess;
use ember_core::auth::AuthToken;
use ember_core::data_roots::DataRoots;
use ember_core::scheduler_service::{create_ember_scheduler, ember_scheduler_config, serve};
use ember_core::session::limit_to_data_roots;
use tokio::net::TcpListener;

use crate::args::Args;
use crate::error::{Result, SchedulerError};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => Err(SchedulerError::Runtime(e)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ember-scheduler: {e}");
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
    let bind = format!("{}:{}", args.bind_host, args.port);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|source| SchedulerError::Bind {
            address: bind.clone(),
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);

    let mut config = SchedulerConfig {
        bind_host: args.bind_host.clone(),
        bind_port: port,
        external_host: args.external_host.clone(),
        scheduling_policy: args.scheduling.into(),
        event_log_dir: args
            .event_log_dir
            .as_ref()
            .map(|d| d.to_string_lossy().to_string()),
        executor_timeout_seconds: args.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: args.expire_dead_executor_interval_seconds,
        no_executors_grace_period_seconds: args.executor_timeout_seconds,
        min_ready_executors: args.min_ready_executors,
        ..SchedulerConfig::default()
    };
    if let Some(dir) = &args.event_log_dir {
        std::fs::create_dir_all(dir).map_err(|source| SchedulerError::EventLogDir {
            path: dir.display().to_string(),
            source,
        })?;
        config.event_log_dir = Some(dir.to_string_lossy().to_string());
    }
    let auth = AuthToken::resolve(args.auth_token_file.as_deref())?;
    let tls = args.tls.load()?;
    if !args.data_roots.is_empty() {
        let roots = DataRoots::parse(&args.data_roots)?;
        tracing::info!("reading and writing only under: {}", roots.describe());
        limit_to_data_roots(roots)?;
    }
    let access = ClusterAccess {
        auth: auth.clone(),
        tls: tls.ca.clone(),
    };
    let config = ember_scheduler_config(config, &access)?;
    tracing::info!(
        "ember-scheduler {} listening on {bind} (clients and executors use df://{}:{port}; REST at {}/api)",
        ember_core::EMBER_VERSION,
        args.external_host,
        access.scheduler_http(&args.external_host, port),
    );
    match &tls.identity {
        Some(identity) => tracing::info!(
            "TLS on: presenting {}, trusting {}",
            identity.cert_path().display(),
            tls.ca
                .as_ref()
                .map_or_else(String::new, |ca| ca.path().display().to_string()),
        ),
        None => tracing::info!(
            "TLS off (--tls-cert, --tls-key, --tls-ca): traffic, the token included, is not encrypted"
        ),
    }
    if auth.is_some() {
        tracing::info!(
            "auth token set: requests without it are refused on every route but /healthz"
        );
    } else {
        tracing::warn!(
            "no auth token (--auth-token-file, EMBER_AUTH_TOKEN_FILE or EMBER_AUTH_TOKEN): anyone who reaches port {port} can run jobs"
        );
    }
    let started = create_ember_scheduler(config).await?;
    serve(listener, started, auth, tls.identity.as_ref()).await?;
    Ok(())
}
