//! A cluster with TLS: every port the scheduler and executors open serves
//! TLS only, with the cluster's certificate; a caller speaking plain HTTP/2,
//! or trusting another CA, gets nowhere; the processes (the scheduler
//! launching tasks, executors registering and reading each other's shuffle
//! output) and a client trusting the cluster's CA work as usual, with the
//! auth token still required.
//!
//! The certificates are the committed fixtures of `tests/fixtures/tls`
//! (made by its `make_certs.sh`, valid for `localhost` and `127.0.0.1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error as _;
use std::process::Command;
use std::time::Duration;

use arrow_flight::Criteria;
use arrow_flight::flight_service_client::FlightServiceClient;
use ballista_core::serde::protobuf::executor_grpc_client::ExecutorGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelTasksParams, GetJobStatusParams};
use ember_core::access::ClusterAccess;
use ember_core::auth::AuthToken;
use ember_core::tls::TrustedCa;
use ember_core::{ClusterTarget, EmberContext, EmberError};
use ember_jobs::cluster::launch::{ExecutorSpec, Lifetime, find_binary, free_port, spawn_executor};
use ember_tests::cluster::{TestCluster, tls_fixture, wait_for_exit};
use ember_tests::sql::assert_shuffling_query_runs;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// How a probe connects.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// Plain HTTP/2, no TLS.
    Plain,
    /// TLS trusting `other-ca.pem`, which did not sign the cluster's certificate.
    OtherCa,
    /// TLS trusting the cluster's CA.
    ClusterCa,
}

fn ca(name: &str) -> TrustedCa {
    TrustedCa::from_file(&tls_fixture(name)).expect("CA fixture")
}

async fn connect(port: u16, wire: Wire, token: Option<&AuthToken>) -> Result<Channel, String> {
    let scheme = if matches!(wire, Wire::Plain) {
        "http"
    } else {
        "https"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://127.0.0.1:{port}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10));
    match wire {
        Wire::Plain => {}
        Wire::OtherCa => {
            endpoint = endpoint
                .tls_config(ca("other-ca.pem").tonic_config())
                .unwrap()
        }
        Wire::ClusterCa => endpoint = endpoint.tls_config(ca("ca.pem").tonic_config()).unwrap(),
    }
    if let Some(token) = token {
        endpoint = endpoint.user_agent(token.user_agent()).unwrap();
    }
    endpoint.connect().await.map_err(|e| error_chain(&e))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The port kinds of a cluster, and a request that reaches the service.
#[derive(Debug, Clone, Copy)]
enum Port {
    Scheduler,
    ExecutorFlight,
    ExecutorGrpc,
}

async fn call(kind: Port, channel: Channel) -> Result<(), tonic::Status> {
    match kind {
        Port::Scheduler => SchedulerGrpcClient::new(channel)
            .get_job_status(GetJobStatusParams {
                job_id: "no-such-job".to_string(),
            })
            .await
            .map(|_| ()),
        Port::ExecutorFlight => FlightServiceClient::new(channel)
            .list_flights(Criteria::default())
            .await
            .map(|_| ()),
        Port::ExecutorGrpc => ExecutorGrpcClient::new(channel)
            .cancel_tasks(CancelTasksParams { task_infos: vec![] })
            .await
            .map(|_| ()),
    }
}

/// What a probe got: the service's own answer (a gRPC code, `Ok` for
/// success), or no service at all (the connection or the transport failed).
#[derive(Debug)]
enum Outcome {
    Answered(Code),
    NotServed(String),
}

async fn probe(port: u16, kind: Port, wire: Wire, token: Option<&AuthToken>) -> Outcome {
    let channel = match connect(port, wire, token).await {
        Ok(channel) => channel,
        Err(e) => return Outcome::NotServed(e),
    };
    match call(kind, channel).await {
        Ok(()) => Outcome::Answered(Code::Ok),
        // A failure of the transport carries tonic's transport error; an
        // answer from the service carries none.
        Err(status)
            if status
                .source()
                .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some()) =>
        {
            Outcome::NotServed(format!("{status:?}"))
        }
        Err(status) => Outcome::Answered(status.code()),
    }
}

/// A plain or wrongly trusting caller's attempt: it must fail before any
/// service answers.
async fn assert_not_served(port: u16, kind: Port, wire: Wire, token: &AuthToken) {
    let error = match probe(port, kind, wire, Some(token)).await {
        Outcome::NotServed(error) => error,
        answered => panic!("{kind:?} port {port} served a {wire:?} caller: {answered:?}"),
    };
    if matches!(wire, Wire::OtherCa) {
        assert!(
            error.contains("UnknownIssuer"),
            "{kind:?} port {port}, {wire:?}: {error}"
        );
    }
}

async fn tls_cluster(executors: usize) -> (TestCluster, AuthToken) {
    let token = AuthToken::random();
    let cluster = TestCluster::start_secured(executors, &[], &[], Some(token.clone()), true)
        .await
        .expect("a TLS cluster starts (executors register over TLS)");
    (cluster, token)
}

fn ports(cluster: &TestCluster) -> Vec<(u16, Port)> {
    let mut ports = vec![(cluster.port, Port::Scheduler)];
    for (&flight, &grpc) in cluster
        .executor_flight_ports
        .iter()
        .zip(&cluster.executor_grpc_ports)
    {
        ports.push((flight, Port::ExecutorFlight));
        ports.push((grpc, Port::ExecutorGrpc));
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_serves_tls_only_with_the_clusters_certificate() {
    let (cluster, token) = tls_cluster(2).await;
    let mut refusals = 0;
    for (port, kind) in ports(&cluster) {
        for wire in [Wire::Plain, Wire::OtherCa] {
            assert_not_served(port, kind, wire, &token).await;
            refusals += 1;
        }
        // Over TLS with the cluster's CA: the token is still required ...
        match probe(port, kind, Wire::ClusterCa, None).await {
            Outcome::Answered(Code::Unauthenticated) => {}
            other => panic!("{kind:?} port {port}, CA without the token: {other:?}"),
        }
        // ... and with it, the service answers.
        match probe(port, kind, Wire::ClusterCa, Some(&token)).await {
            Outcome::Answered(code) if code != Code::Unauthenticated => {
                if matches!(kind, Port::ExecutorGrpc) {
                    assert_eq!(code, Code::Ok, "an empty cancel is accepted");
                }
            }
            other => panic!("{kind:?} port {port}, CA and token: {other:?}"),
        }
    }

    // REST (HTTP/1.1 over TLS): refused in plain HTTP and to a client
    // trusting another CA; served to the holder of the CA and the token.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", cluster.port))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was served: {plain:?}");
    refusals += 1;
    let other = ClusterAccess {
        auth: Some(token.clone()),
        tls: Some(ca("other-ca.pem")),
    };
    let wrong_ca = other
        .rest_client()
        .unwrap()
        .get(format!("https://127.0.0.1:{}/healthz", cluster.port))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(wrong_ca.is_err(), "a client trusting another CA was served");
    refusals += 1;
    let executors: Vec<serde_json::Value> = cluster
        .get_json("/api/executors")
        .await
        .expect("the REST API answers over TLS");
    assert_eq!(executors.len(), 2);
    assert!(cluster.http().starts_with("https://"));
    eprintln!(
        "{} ports probed: {refusals} refusals of plain and wrongly trusting callers, as expected",
        ports(&cluster).len() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_ca_runs_shuffling_queries_and_others_are_told_why_not() {
    let (cluster, token) = tls_cluster(2).await;
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");

    let cases = [
        (None, "EMBER_TLS_CA"),
        (Some(ca("other-ca.pem")), "not trusted"),
    ];
    for (tls, expected) in cases {
        let access = ClusterAccess {
            auth: Some(token.clone()),
            tls,
        };
        match EmberContext::connect_with(target.clone(), access).await {
            Err(EmberError::Unreachable { reason, .. }) => {
                eprintln!("refused client: {reason}");
                assert!(reason.contains(expected), "{reason}")
            }
            Err(other) => panic!("expected an unreachable scheduler, got {other}"),
            Ok(_) => panic!("a client without the cluster's CA connected"),
        }
    }

    let access = ClusterAccess {
        auth: Some(token),
        tls: Some(ca("ca.pem")),
    };
    let ember = EmberContext::connect_with(target, access)
        .await
        .expect("a client trusting the CA connects");
    assert_shuffling_query_runs(&ember).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reads_the_ca_from_the_environment() {
    let (cluster, token) = tls_cluster(1).await;
    let address = cluster.address();
    let run = |ca_file: Option<&str>| {
        let mut command = Command::new(find_binary("ember").expect("ember binary"));
        command
            .args(["sql", "--cluster", &address, "SELECT 41 + 1 AS answer"])
            .env("EMBER_AUTH_TOKEN", token.expose_secret())
            .env_remove("EMBER_AUTH_TOKEN_FILE")
            .env_remove("EMBER_TLS_CA");
        if let Some(file) = ca_file {
            command.env("EMBER_TLS_CA", file);
        }
        command.output().expect("run ember")
    };

    let refused = run(None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    eprintln!("ember without EMBER_TLS_CA: {stderr}");
    assert!(!refused.status.success());
    assert!(stderr.contains("EMBER_TLS_CA"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let ca_file = tls_fixture("ca.pem").display().to_string();
    let accepted = run(Some(&ca_file));
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(String::from_utf8_lossy(&accepted.stdout).contains("42"));

    let garbage = cluster.dir.path().join("not-a-ca.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let bad = run(Some(&garbage.display().to_string()));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("not-a-ca.pem") && stderr.contains("no certificate"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_without_tls_or_with_half_of_it_do_not_join() {
    let (cluster, _token) = tls_cluster(1).await;
    let token_file = cluster.dir.path().join("token");
    let cert = tls_fixture("server.pem").display().to_string();
    let key = tls_fixture("server.key").display().to_string();
    let cases: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        // No TLS at all: it cannot register over a TLS port.
        ("plain", vec![], Some("if the scheduler serves TLS")),
        // A certificate but no CA: refused before it starts.
        (
            "no-ca",
            vec!["--tls-cert".into(), cert.clone(), "--tls-key".into(), key],
            Some("without --tls-ca"),
        ),
    ];
    for (name, tls_args, expected) in cases {
        let spec = ExecutorSpec {
            flight_port: free_port().unwrap(),
            grpc_port: free_port().unwrap(),
            work_dir: cluster.dir.path().join(name),
            vcores: 1,
            memory_limit: None,
        };
        let log = cluster.dir.path().join(format!("{name}.log"));
        let mut args = vec![
            "--auth-token-file".to_string(),
            token_file.display().to_string(),
        ];
        args.extend(tls_args);
        let mut child = spawn_executor(cluster.port, &spec, &log, Lifetime::DiesWithSpawner, &args)
            .expect("spawn executor");
        let status = wait_for_exit(&mut child, Duration::from_secs(40));
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        if status.is_none() {
            let _ = child.kill();
        }
        assert!(
            matches!(status, Some(s) if !s.success()),
            "executor '{name}' should exit with an error: {status:?}\n{log_text}"
        );
        if let Some(expected) = expected {
            assert!(log_text.contains(expected), "{name}: {log_text}");
        }
        assert!(!log_text.contains("panicked"), "{name}: {log_text}");
        eprintln!(
            "executor '{name}' exited: {}",
            log_text.lines().last().unwrap_or_default()
        );
    }
    let executors: Vec<serde_json::Value> = cluster.get_json("/api/executors").await.unwrap();
    assert_eq!(executors.len(), 1, "only the cluster's own executor joined");
}
