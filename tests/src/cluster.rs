//! Starting and stopping clusters of real processes for tests.

use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock};

use ember_core::access::ClusterAccess;
use ember_core::auth::AuthToken;
use ember_core::tls::TrustedCa;
use ember_jobs::cluster::launch::{
    ExecutorSpec, Lifetime, free_port, spawn_executor, spawn_scheduler, wait_for_executors,
    wait_for_scheduler,
};

/// Attempts at starting a cluster whose processes exit while starting.
const START_ATTEMPTS: usize = 3;

/// A scheduler and executors, stopped on drop.
pub struct TestCluster {
    /// The scheduler's port (gRPC and REST).
    pub port: u16,
    /// The executors' Arrow Flight ports, `executor-1` first.
    pub executor_flight_ports: Vec<u16>,
    /// The executors' gRPC ports (where the scheduler launches tasks), in the
    /// same order.
    pub executor_grpc_ports: Vec<u16>,
    /// Processes by name: `scheduler`, `executor-1`, `executor-2`, ...
    children: Mutex<Vec<(String, Child)>>,
    scheduler_args: Vec<String>,
    executor_args: Vec<String>,
    /// How clients reach it: its auth token and CA, if it was started with
    /// them.
    pub access: ClusterAccess,
    /// Logs and work directories.
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts a scheduler and `executors` single-vcore executors, passing
    /// `scheduler_args` and `executor_args` through. The processes die with
    /// the calling thread at the latest.
    pub async fn start(
        executors: usize,
        scheduler_args: &[String],
        executor_args: &[String],
    ) -> Result<Self, String> {
        Self::start_with_auth(executors, scheduler_args, executor_args, None).await
    }

    /// [`Self::start`], every process given `auth` (through a token file,
    /// `token` in the cluster's directory) when there is one.
    pub async fn start_with_auth(
        executors: usize,
        scheduler_args: &[String],
        executor_args: &[String],
        auth: Option<AuthToken>,
    ) -> Result<Self, String> {
        Self::start_secured(executors, scheduler_args, executor_args, auth, false).await
    }

    /// [`Self::start_with_auth`], and with `tls` every process serving TLS
    /// with the committed test certificate (see [`tls_fixture`]) and
    /// trusting the test CA.
    ///
    /// Ports are chosen free but not held until the processes bind them, so
    /// a test starting a cluster in parallel can take one in between; a
    /// process that exits while starting makes a fresh attempt with new
    /// ports, up to [`START_ATTEMPTS`] in all.
    pub async fn start_secured(
        executors: usize,
        scheduler_args: &[String],
        executor_args: &[String],
        auth: Option<AuthToken>,
        tls: bool,
    ) -> Result<Self, String> {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(executors, scheduler_args, executor_args, auth.clone(), tls)
                .await
            {
                Ok(cluster) => return Ok(cluster),
                Err(error) if error.contains("while starting") => failures.push(error),
                Err(error) => return Err(error),
            }
        }
        Err(failures.join("; then "))
    }

    async fn start_once(
        executors: usize,
        scheduler_args: &[String],
        executor_args: &[String],
        auth: Option<AuthToken>,
        tls: bool,
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("ember-test-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut scheduler_args = scheduler_args.to_vec();
        let mut executor_args = executor_args.to_vec();
        if let Some(token) = &auth {
            let file = dir.path().join("token");
            std::fs::write(&file, token.expose_secret()).map_err(|e| e.to_string())?;
            for args in [&mut scheduler_args, &mut executor_args] {
                args.push("--auth-token-file".to_string());
                args.push(file.display().to_string());
            }
        }
        let mut access = ClusterAccess::with_auth(auth);
        if tls {
            for args in [&mut scheduler_args, &mut executor_args] {
                for (flag, file) in [
                    ("--tls-cert", "server.pem"),
                    ("--tls-key", "server.key"),
                    ("--tls-ca", "ca.pem"),
                ] {
                    args.push(flag.to_string());
                    args.push(tls_fixture(file).display().to_string());
                }
            }
            access.tls =
                Some(TrustedCa::from_file(&tls_fixture("ca.pem")).map_err(|e| e.to_string())?);
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let log = dir.path().join("scheduler.log");
        let mut scheduler = spawn_scheduler(port, &log, Lifetime::DiesWithSpawner, &scheduler_args)
            .map_err(|e| e.to_string())?;
        let mut cluster = TestCluster {
            port,
            executor_flight_ports: vec![],
            executor_grpc_ports: vec![],
            children: Mutex::new(vec![]),
            scheduler_args: scheduler_args.clone(),
            executor_args: executor_args.clone(),
            access,
            dir,
        };
        let ready = wait_for_scheduler(port, &mut scheduler, &log, &cluster.access).await;
        cluster.adopt("scheduler", scheduler);
        ready.map_err(|e| e.to_string())?;

        let mut started = Vec::new();
        for i in 1..=executors {
            let spec = ExecutorSpec {
                flight_port: free_port().map_err(|e| e.to_string())?,
                grpc_port: free_port().map_err(|e| e.to_string())?,
                work_dir: cluster.dir.path().join(format!("executor-{i}")),
                vcores: 1,
                memory_limit: None,
            };
            let log = cluster.dir.path().join(format!("executor-{i}.log"));
            let child =
                spawn_executor(port, &spec, &log, Lifetime::DiesWithSpawner, &executor_args)
                    .map_err(|e| e.to_string())?;
            cluster.executor_flight_ports.push(spec.flight_port);
            cluster.executor_grpc_ports.push(spec.grpc_port);
            started.push((child, log));
        }
        let ready = wait_for_executors(port, executors, &mut started, &cluster.access).await;
        for (i, (child, _)) in started.into_iter().enumerate() {
            cluster.adopt(&format!("executor-{}", i + 1), child);
        }
        ready.map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    /// Starts one more single-vcore executor (named `executor-N`, N one past
    /// the last) and waits until the scheduler lists `expect_registered`
    /// executors in all.
    pub async fn add_executor(
        &mut self,
        expect_registered: usize,
        executor_args: &[String],
    ) -> Result<String, String> {
        let n = self.executor_flight_ports.len() + 1;
        let name = format!("executor-{n}");
        let spec = ExecutorSpec {
            flight_port: free_port().map_err(|e| e.to_string())?,
            grpc_port: free_port().map_err(|e| e.to_string())?,
            work_dir: self.dir.path().join(&name),
            vcores: 1,
            memory_limit: None,
        };
        let log = self.dir.path().join(format!("{name}.log"));
        let args: Vec<String> = self
            .executor_args
            .iter()
            .chain(executor_args)
            .cloned()
            .collect();
        let child = spawn_executor(self.port, &spec, &log, Lifetime::DiesWithSpawner, &args)
            .map_err(|e| e.to_string())?;
        self.executor_flight_ports.push(spec.flight_port);
        self.executor_grpc_ports.push(spec.grpc_port);
        let mut started = vec![(child, log)];
        let ready =
            wait_for_executors(self.port, expect_registered, &mut started, &self.access).await;
        for (child, _) in started {
            self.adopt(&name, child);
        }
        ready.map_err(|e| e.to_string())?;
        Ok(name)
    }

    /// Starts the scheduler again on the same port, after [`Self::kill`]ed
    /// it, and waits until it answers. Its log goes to `scheduler-2.log`, ...
    pub async fn restart_scheduler(&self) -> Result<(), String> {
        if let Ok(mut children) = self.children.lock() {
            children.retain(|(name, _)| name != "scheduler");
        }
        let n = (2..)
            .find(|n| !self.dir.path().join(format!("scheduler-{n}.log")).exists())
            .unwrap_or(2);
        let log = self.dir.path().join(format!("scheduler-{n}.log"));
        let mut scheduler = spawn_scheduler(
            self.port,
            &log,
            Lifetime::DiesWithSpawner,
            &self.scheduler_args,
        )
        .map_err(|e| e.to_string())?;
        let ready = wait_for_scheduler(self.port, &mut scheduler, &log, &self.access).await;
        self.adopt("scheduler", scheduler);
        ready.map_err(|e| e.to_string())
    }

    fn adopt(&self, name: &str, child: Child) {
        if let Ok(mut children) = self.children.lock() {
            children.push((name.to_string(), child));
        }
    }

    /// Kills the process `name` (`scheduler`, `executor-2`, ...) with SIGKILL
    /// and waits for it to be gone: the fault a crashed or OOM-killed node is.
    pub fn kill(&self, name: &str) {
        let mut children = self.children.lock().expect("children lock");
        let (_, child) = children
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process named {name}"));
        child.kill().unwrap_or_else(|e| panic!("kill {name}: {e}"));
        child
            .wait()
            .unwrap_or_else(|e| panic!("wait for {name}: {e}"));
    }

    /// Whether the process `name` is still running.
    pub fn is_running(&self, name: &str) -> bool {
        let mut children = self.children.lock().expect("children lock");
        children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, child)| matches!(child.try_wait(), Ok(None)))
    }

    /// The name (`executor-N`) of the executor serving Flight on `port`.
    pub fn executor_named_by_port(&self, port: u16) -> Option<String> {
        self.executor_flight_ports
            .iter()
            .position(|p| *p == port)
            .map(|i| format!("executor-{}", i + 1))
    }

    /// The address clients use.
    pub fn address(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// GETs `path` (e.g. `/api/jobs`) from the scheduler's REST API, with
    /// the cluster's token when it has one; `None` on any failure, as
    /// pollers retry.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        let client = self.access.rest_client().ok()?;
        let response = client
            .get(format!("{}{path}", self.http()))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// The scheduler's HTTP base address.
    pub fn http(&self) -> String {
        self.access.scheduler_http("127.0.0.1", self.port)
    }

    /// A log file of the cluster (`scheduler.log`, `executor-1.log`, ...).
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Waits at most `bound` for `child` to exit; `None` if it still runs.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    bound: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + bound;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// A file of the committed TLS test fixtures (`tests/fixtures/tls`, made by
/// its `make_certs.sh`): `ca.pem`, `server.pem` and `server.key` (for
/// `localhost` and `127.0.0.1`), `other-ca.pem`.
pub fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("tls")
        .join(name)
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Ok(mut children) = self.children.lock() {
            for (_, child) in children.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The two-executor cluster every test of this test binary shares. It is
/// started by a thread that lives as long as the test binary, so the
/// parent-death signal stops the processes when the binary exits.
pub fn shared() -> &'static TestCluster {
    static SHARED: OnceLock<TestCluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(TestCluster::start(2, &[], &[])));
            let _ = send.send(started);
            loop {
                std::thread::park();
            }
        });
        match receive.recv() {
            Ok(Ok(cluster)) => cluster,
            Ok(Err(e)) => panic!("cannot start the shared test cluster: {e}"),
            Err(e) => panic!("cannot start the shared test cluster: {e}"),
        }
    })
}
