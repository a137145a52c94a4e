//! Starting and stopping clusters of real processes for tests.

use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock};

use ember_jobs::cluster::launch::{
    ExecutorSpec, Lifetime, free_port, spawn_executor, spawn_scheduler, wait_for_executors,
    wait_for_scheduler,
};

/// A scheduler and executors, stopped on drop.
pub struct TestCluster {
    /// The scheduler's port (gRPC and REST).
    pub port: u16,
    children: Mutex<Vec<Child>>,
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
        let dir = tempfile::Builder::new()
            .prefix("ember-test-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let log = dir.path().join("scheduler.log");
        let mut scheduler = spawn_scheduler(port, &log, Lifetime::DiesWithSpawner, scheduler_args)
            .map_err(|e| e.to_string())?;
        let cluster = TestCluster {
            port,
            children: Mutex::new(vec![]),
            dir,
        };
        let ready = wait_for_scheduler(port, &mut scheduler, &log).await;
        cluster.adopt(scheduler);
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
            let child = spawn_executor(port, &spec, &log, Lifetime::DiesWithSpawner, executor_args)
                .map_err(|e| e.to_string())?;
            started.push((child, log));
        }
        let ready = wait_for_executors(port, executors, &mut started).await;
        for (child, _) in started {
            cluster.adopt(child);
        }
        ready.map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    fn adopt(&self, child: Child) {
        if let Ok(mut children) = self.children.lock() {
            children.push(child);
        }
    }

    /// The address clients use.
    pub fn address(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// The scheduler's HTTP base address.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A log file of the cluster (`scheduler.log`, `executor-1.log`, ...).
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Ok(mut children) = self.children.lock() {
            for child in children.iter_mut() {
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
