//! `ember cluster up | down | status`: a scheduler and executors as separate
//! processes on this machine, for development.
//!
//! The processes outlive the command. What is needed to find and stop them
//! (pids, ports, log files) is kept in `cluster.json` in the state directory
//! (`$EMBER_HOME/cluster`, by default `~/.ember/cluster`), which also holds
//! their logs and the executors' work directories.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ember_core::access::ClusterAccess;
use serde::{Deserialize, Serialize};

use crate::cluster::launch::{
    ExecutorSpec, Lifetime, free_port, spawn_executor, spawn_scheduler, wait_for_executors,
    wait_for_scheduler,
};
use crate::error::{JobsError, Result};

/// How long `down` waits for a process to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What `ember cluster up` starts.
#[derive(Debug, Clone)]
pub struct LocalClusterSpec {
    /// Number of executors.
    pub executors: usize,
    /// Scheduler port (`None`: a free one).
    pub port: Option<u16>,
    /// Task slots per executor.
    pub vcores: usize,
    /// Memory limit per executor, e.g. `2GiB`.
    pub memory_limit: Option<String>,
    /// Memory each executor keeps for GBDT training rows between tree
    /// levels (the executor's `--training-rows-memory`; `None`: its default).
    pub training_rows_memory: Option<String>,
}

/// A running local cluster, as recorded in `cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalCluster {
    /// The address clients use, `df://127.0.0.1:PORT`.
    pub address: String,
    /// The scheduler's port.
    pub port: u16,
    /// The scheduler process.
    pub scheduler: ProcessRecord,
    /// The executor processes.
    pub executors: Vec<ProcessRecord>,
}

/// One process of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Its pid.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
}

/// The default state directory: `$EMBER_HOME/cluster`, or `~/.ember/cluster`.
pub fn default_state_dir() -> PathBuf {
    let home = std::env::var_os("EMBER_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ember")))
        .unwrap_or_else(|| PathBuf::from(".ember"));
    home.join("cluster")
}

fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("cluster.json")
}

/// The cluster recorded in `state_dir`, if its scheduler is still running.
pub fn running(state_dir: &Path) -> Result<Option<LocalCluster>> {
    let file = state_file(state_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JobsError::io(&file, e)),
    };
    let cluster: LocalCluster = serde_json::from_str(&text).map_err(|e| {
        JobsError::Cluster(format!(
            "{}: not a cluster record ({e}); remove it",
            file.display()
        ))
    })?;
    Ok(is_ember_process(cluster.scheduler.pid).then_some(cluster))
}

/// Starts a scheduler and `spec.executors` executors and waits until all
/// executors are registered.
pub async fn up(spec: &LocalClusterSpec, state_dir: &Path) -> Result<LocalCluster> {
    if let Some(existing) = running(state_dir)? {
        return Err(JobsError::Cluster(format!(
            "a local cluster is already running at {} (run `ember cluster down` first)",
            existing.address
        )));
    }
    if spec.executors == 0 {
        return Err(JobsError::Usage(
            "--executors must be at least 1".to_string(),
        ));
    }
    // The processes inherit this environment, token and TLS files included
    // (`EMBER_AUTH_TOKEN*`, `EMBER_TLS_*`): checked here so a bad token or
    // certificate fails before anything starts.
    let access = ClusterAccess::from_env()?;
    ember_core::tls::ServerIdentity::resolve(None, None)?;
    std::fs::create_dir_all(state_dir).map_err(|e| JobsError::io(state_dir, e))?;
    let port = match spec.port {
        Some(p) if p != 0 => p,
        _ => free_port()?,
    };
    let scheduler_log = state_dir.join("scheduler.log");
    let mut scheduler = spawn_scheduler(port, &scheduler_log, Lifetime::Detached, &[])?;
    if let Err(e) = wait_for_scheduler(port, &mut scheduler, &scheduler_log, &access).await {
        let _ = scheduler.kill();
        return Err(e);
    }
    let mut cluster = LocalCluster {
        address: format!("df://127.0.0.1:{port}"),
        port,
        scheduler: ProcessRecord {
            pid: scheduler.id(),
            log: scheduler_log,
        },
        executors: vec![],
    };

    let mut children = Vec::new();
    for i in 1..=spec.executors {
        let executor = ExecutorSpec {
            flight_port: free_port()?,
            grpc_port: free_port()?,
            work_dir: state_dir.join(format!("executor-{i}")),
            vcores: spec.vcores,
            memory_limit: spec.memory_limit.clone(),
        };
        let log = state_dir.join(format!("executor-{i}.log"));
        let extra_args: Vec<String> = match &spec.training_rows_memory {
            Some(size) => vec!["--training-rows-memory".to_string(), size.clone()],
            None => vec![],
        };
        let child = spawn_executor(port, &executor, &log, Lifetime::Detached, &extra_args)?;
        cluster.executors.push(ProcessRecord {
            pid: child.id(),
            log: log.clone(),
        });
        children.push((child, log));
    }
    // Recorded before waiting, so `ember cluster down` can clean up even if
    // start-up fails half-way.
    write_state(state_dir, &cluster)?;
    if let Err(e) = wait_for_executors(port, spec.executors, &mut children, &access).await {
        stop(&cluster);
        let _ = std::fs::remove_file(state_file(state_dir));
        return Err(e);
    }
    Ok(cluster)
}

/// Stops the recorded cluster (executors first) and forgets it. Returns how
/// many processes were running.
pub fn down(state_dir: &Path) -> Result<Option<usize>> {
    let file = state_file(state_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JobsError::io(&file, e)),
    };
    let cluster: LocalCluster = serde_json::from_str(&text).map_err(|e| {
        JobsError::Cluster(format!(
            "{}: not a cluster record ({e}); remove it",
            file.display()
        ))
    })?;
    let stopped = stop(&cluster);
    std::fs::remove_file(&file).map_err(|e| JobsError::io(&file, e))?;
    Ok(Some(stopped))
}

fn write_state(state_dir: &Path, cluster: &LocalCluster) -> Result<()> {
    let file = state_file(state_dir);
    let tmp = state_dir.join(".cluster.json.tmp");
    let text = serde_json::to_string_pretty(cluster)
        .map_err(|e| JobsError::Cluster(format!("cannot record the cluster: {e}")))?;
    std::fs::write(&tmp, text).map_err(|e| JobsError::io(&tmp, e))?;
    std::fs::rename(&tmp, &file).map_err(|e| JobsError::io(&file, e))
}

/// SIGTERM to every process, then SIGKILL to those still running after
/// [`STOP_GRACE`]. Returns how many were running.
fn stop(cluster: &LocalCluster) -> usize {
    let pids: Vec<u32> = cluster
        .executors
        .iter()
        .chain(std::iter::once(&cluster.scheduler))
        .map(|p| p.pid)
        .filter(|pid| is_ember_process(*pid))
        .collect();
    for pid in &pids {
        signal(*pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && pids.iter().any(|p| is_alive(*p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in pids.iter().filter(|p| is_alive(**p)) {
        signal(*pid, libc::SIGKILL);
    }
    pids.len()
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether `pid` is a live Ember process (and not a reused pid, nor a zombie).
fn is_ember_process(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    is_alive(pid) && String::from_utf8_lossy(&cmdline).contains("ember-")
}

/// Whether `pid` exists and has not exited (a zombie has exited).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X'))),
        Err(_) => false,
    }
}
