//! An authenticated cluster: every port the scheduler and executors open
//! refuses a caller without the cluster's token, or with a wrong one, with a
//! message that says so; the processes and a client holding the token work
//! as usual, shuffles between executors included.
//!
//! Each port is probed directly (raw gRPC, Flight and HTTP clients, so the
//! refusal is the server's and not a client-side check), and through the
//! `ember` command and the library as a user meets them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use arrow_flight::Criteria;
use arrow_flight::flight_service_client::FlightServiceClient;
use ballista_core::serde::protobuf::executor_grpc_client::ExecutorGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelTasksParams, GetJobStatusParams};
use ember_core::auth::AuthToken;
use ember_core::{ClusterTarget, EmberContext, EmberError};
use ember_jobs::cluster::launch::{ExecutorSpec, Lifetime, find_binary, free_port, spawn_executor};
use ember_tests::cluster::{TestCluster, wait_for_exit};
use ember_tests::sql::assert_shuffling_query_runs;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// How a probe presents itself.
#[derive(Debug, Clone, Copy)]
enum Caller<'a> {
    /// No token at all.
    Anonymous,
    /// A token that is not the cluster's.
    Wrong,
    /// The cluster's token.
    Holder(&'a AuthToken),
}

fn wrong_token() -> AuthToken {
    AuthToken::parse("not-the-cluster-token-0000", "test").expect("token")
}

async fn channel(port: u16, caller: Caller<'_>) -> Channel {
    let mut endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(10));
    let agent = match caller {
        Caller::Anonymous => None,
        Caller::Wrong => Some(wrong_token().user_agent()),
        Caller::Holder(token) => Some(token.user_agent()),
    };
    if let Some(agent) = agent {
        endpoint = endpoint.user_agent(agent).expect("user agent");
    }
    endpoint.connect().await.expect("TCP connection")
}

/// Asserts the status is the refusal `caller` should get.
fn assert_refused(port_name: &str, caller: Caller<'_>, status: &tonic::Status) {
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "{port_name}, {caller:?}: {status:?}"
    );
    let expected = match caller {
        Caller::Anonymous => "requires an auth token and none was sent",
        Caller::Wrong => "auth token sent was refused",
        Caller::Holder(_) => unreachable!("the holder is not refused"),
    };
    assert!(
        status.message().contains(expected),
        "{port_name}, {caller:?}: {}",
        status.message()
    );
}

async fn probe_scheduler_grpc(port: u16, caller: Caller<'_>) -> Result<(), tonic::Status> {
    let mut client = SchedulerGrpcClient::new(channel(port, caller).await);
    client
        .get_job_status(GetJobStatusParams {
            job_id: "no-such-job".to_string(),
        })
        .await
        .map(|_| ())
}

async fn probe_executor_grpc(port: u16, caller: Caller<'_>) -> Result<(), tonic::Status> {
    let mut client = ExecutorGrpcClient::new(channel(port, caller).await);
    client
        .cancel_tasks(CancelTasksParams { task_infos: vec![] })
        .await
        .map(|_| ())
}

async fn probe_executor_flight(port: u16, caller: Caller<'_>) -> Result<(), tonic::Status> {
    let mut client = FlightServiceClient::new(channel(port, caller).await);
    client.list_flights(Criteria::default()).await.map(|_| ())
}

async fn probe_rest(port: u16, path: &str, caller: Caller<'_>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10));
    match caller {
        Caller::Anonymous => {}
        Caller::Wrong => request = request.bearer_auth(wrong_token().expose_secret()),
        Caller::Holder(token) => request = request.bearer_auth(token.expose_secret()),
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn authenticated_cluster(executors: usize) -> (TestCluster, AuthToken) {
    let token = AuthToken::random();
    let cluster = TestCluster::start_with_auth(executors, &[], &[], Some(token.clone()))
        .await
        .expect("authenticated cluster starts (executors register with the token)");
    (cluster, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_refuses_callers_without_the_token() {
    let (cluster, token) = authenticated_cluster(2).await;
    let mut refusals = 0;

    for caller in [Caller::Anonymous, Caller::Wrong] {
        let status = probe_scheduler_grpc(cluster.port, caller)
            .await
            .unwrap_err();
        assert_refused("scheduler gRPC", caller, &status);
        refusals += 1;
        for (i, (&flight, &grpc)) in cluster
            .executor_flight_ports
            .iter()
            .zip(&cluster.executor_grpc_ports)
            .enumerate()
        {
            let status = probe_executor_flight(flight, caller).await.unwrap_err();
            assert_refused(&format!("executor-{} Flight", i + 1), caller, &status);
            let status = probe_executor_grpc(grpc, caller).await.unwrap_err();
            assert_refused(&format!("executor-{} gRPC", i + 1), caller, &status);
            refusals += 2;
        }
        for path in ["/api/jobs", "/api/executors", "/api/metrics", "/readyz"] {
            let (status, body) = probe_rest(cluster.port, path, caller).await;
            assert_eq!(status, 401, "REST {path}, {caller:?}: {body}");
            assert!(body.contains("auth token"), "REST {path}: {body}");
            refusals += 1;
        }
    }

    // The token holder gets past the gate on every port: what it then gets
    // is the service's own answer, never UNAUTHENTICATED.
    let holder = Caller::Holder(&token);
    if let Err(status) = probe_scheduler_grpc(cluster.port, holder).await {
        assert_ne!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    for (&flight, &grpc) in cluster
        .executor_flight_ports
        .iter()
        .zip(&cluster.executor_grpc_ports)
    {
        if let Err(status) = probe_executor_flight(flight, holder).await {
            assert_ne!(status.code(), Code::Unauthenticated, "{status:?}");
        }
        probe_executor_grpc(grpc, holder)
            .await
            .expect("an empty cancel with the token is accepted");
    }
    let (status, body) = probe_rest(cluster.port, "/api/executors", holder).await;
    assert_eq!(status, 200, "{body}");
    // Liveness probes carry no secrets and need no token.
    let (status, _) = probe_rest(cluster.port, "/healthz", Caller::Anonymous).await;
    assert_eq!(status, 200);
    eprintln!("ports probed: {refusals} refusals, as expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_token_runs_shuffling_queries_and_others_are_refused() {
    let (cluster, token) = authenticated_cluster(2).await;
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");

    for (auth, expected) in [
        (None, "requires an auth token and none was sent"),
        (Some(wrong_token()), "auth token sent was refused"),
    ] {
        match EmberContext::connect_with_auth(target.clone(), auth).await {
            Err(EmberError::Unauthenticated { reason, .. }) => {
                assert!(reason.contains(expected), "{reason}")
            }
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("a client without the cluster's token was let in"),
        }
    }

    let ember = EmberContext::connect_with_auth(target, Some(token))
        .await
        .expect("the token holder connects");
    assert_shuffling_query_runs(&ember).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reads_the_token_from_the_environment() {
    let (cluster, token) = authenticated_cluster(1).await;
    let address = cluster.address();
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(find_binary("ember").expect("ember binary"));
        command
            .args(["sql", "--cluster", &address, "SELECT 41 + 1 AS answer"])
            .env_remove("EMBER_AUTH_TOKEN")
            .env_remove("EMBER_AUTH_TOKEN_FILE");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("run ember")
    };

    let refused = run(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("refused this client") && stderr.contains("EMBER_AUTH_TOKEN"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let token_file = cluster.dir.path().join("token");
    let accepted = run(&[("EMBER_AUTH_TOKEN_FILE", &token_file.display().to_string())]);
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(stdout.contains("42"), "{stdout}");

    let accepted = run(&[("EMBER_AUTH_TOKEN", token.expose_secret())]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );

    let short = run(&[("EMBER_AUTH_TOKEN", "abc")]);
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(!short.status.success());
    assert!(
        stderr.contains("EMBER_AUTH_TOKEN") && stderr.contains("at least 16"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_with_the_wrong_token_cannot_join() {
    let (cluster, token) = authenticated_cluster(1).await;
    let wrong_file = cluster.dir.path().join("wrong-token");
    std::fs::write(&wrong_file, wrong_token().expose_secret()).expect("write token");
    let spec = ExecutorSpec {
        flight_port: free_port().expect("port"),
        grpc_port: free_port().expect("port"),
        work_dir: cluster.dir.path().join("intruder"),
        vcores: 1,
        memory_limit: None,
    };
    let log = cluster.dir.path().join("intruder.log");
    let args = [
        "--auth-token-file".to_string(),
        wrong_file.display().to_string(),
    ];
    let mut child = spawn_executor(cluster.port, &spec, &log, Lifetime::DiesWithSpawner, &args)
        .expect("spawn executor");
    let status = wait_for_exit(&mut child, Duration::from_secs(30));
    let log_text = read(&log);
    assert!(
        matches!(status, Some(s) if !s.success()),
        "an executor with a wrong token should exit with an error: {status:?}\n{log_text}"
    );
    assert!(
        log_text.contains("auth token sent was refused"),
        "{log_text}"
    );

    let (status, body) = probe_rest(cluster.port, "/api/executors", Caller::Holder(&token)).await;
    assert_eq!(status, 200);
    let executors: Vec<serde_json::Value> = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        executors.len(),
        1,
        "only the cluster's own executor is registered: {body}"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
