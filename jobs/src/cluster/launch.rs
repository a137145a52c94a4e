//! Starting `ember-scheduler` and `ember-executor` processes on this machine
//! and waiting until they are ready.
//!
//! Used by `ember cluster up` (processes that outlive the command) and by the
//! multi-process tests (processes killed when the test ends).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember_core::access::ClusterAccess;

use crate::error::{JobsError, Result};

/// How long a scheduler may take to answer `/healthz`.
pub const SCHEDULER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long executors may take to register.
pub const EXECUTORS_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to find Ember's binaries: `$EMBER_BIN_DIR`, then the directory of
/// the running executable (and its parent, for test binaries under
/// `target/debug/deps`), then `PATH`.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("EMBER_BIN_DIR") {
        candidates.push(PathBuf::from(dir).join(name));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(name));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(name));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        JobsError::Cluster(format!(
            "cannot find the '{name}' binary next to this program or on PATH \
             (build it with `cargo build --bins`, or set EMBER_BIN_DIR)"
        ))
    })
}

/// A free TCP port on loopback (the OS picks one; it is released for the
/// process that will bind it).
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| JobsError::io("127.0.0.1:0", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| JobsError::io("127.0.0.1:0", e))
}

/// The ports and directories of one executor.
#[derive(Debug, Clone)]
pub struct ExecutorSpec {
    /// Arrow Flight port.
    pub flight_port: u16,
    /// gRPC port (push scheduling).
    pub grpc_port: u16,
    /// Work directory.
    pub work_dir: PathBuf,
    /// Task slots.
    pub vcores: usize,
    /// `--memory-limit`, if any.
    pub memory_limit: Option<String>,
}

/// How a launched process is attached to the launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// In its own process group, so it outlives the launcher and ignores the
    /// launcher's Ctrl-C.
    Detached,
    /// Killed by the kernel when the thread that spawned it ends (Linux's
    /// parent-death signal), so a test run that dies leaves no process behind.
    DiesWithSpawner,
}

/// Spawns `ember-scheduler` on `port`, logging to `log`.
pub fn spawn_scheduler(
    port: u16,
    log: &Path,
    lifetime: Lifetime,
    extra_args: &[String],
) -> Result<Child> {
    let mut command = Command::new(find_binary("ember-scheduler")?);
    command
        .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(extra_args);
    spawn(command, log, lifetime)
}

/// Spawns `ember-executor` joining the scheduler on `scheduler_port`.
pub fn spawn_executor(
    scheduler_port: u16,
    spec: &ExecutorSpec,
    log: &Path,
    lifetime: Lifetime,
    extra_args: &[String],
) -> Result<Child> {
    let mut command = Command::new(find_binary("ember-executor")?);
    command
        .args(["--scheduler", &format!("df://127.0.0.1:{scheduler_port}")])
        .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
        .args(["--flight-port", &spec.flight_port.to_string()])
        .args(["--grpc-port", &spec.grpc_port.to_string()])
        .arg("--work-dir")
        .arg(&spec.work_dir)
        .args(["--vcores", &spec.vcores.to_string()])
        .args(extra_args);
    if let Some(limit) = &spec.memory_limit {
        command.args(["--memory-limit", limit]);
    }
    spawn(command, log, lifetime)
}

fn spawn(mut command: Command, log: &Path, lifetime: Lifetime) -> Result<Child> {
    let out = std::fs::File::create(log).map_err(|e| JobsError::io(log, e))?;
    let err = out.try_clone().map_err(|e| JobsError::io(log, e))?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    use std::os::unix::process::CommandExt;
    match lifetime {
        Lifetime::Detached => {
            command.process_group(0);
        }
        Lifetime::DiesWithSpawner => {
            // SAFETY: prctl is async-signal-safe and touches no memory of the
            // parent; it only sets this child's parent-death signal.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    let program = command.get_program().to_string_lossy().to_string();
    command
        .spawn()
        .map_err(|e| JobsError::Cluster(format!("cannot start {program}: {e}")))
}

/// Waits until the scheduler on `port` answers `/healthz`, failing early
/// (with the end of its log) if the process exits. `access` says whether it
/// serves TLS, and the CA to trust.
pub async fn wait_for_scheduler(
    port: u16,
    child: &mut Child,
    log: &Path,
    access: &ClusterAccess,
) -> Result<()> {
    let client = access.rest_client()?;
    let url = format!("{}/healthz", access.scheduler_http("127.0.0.1", port));
    let deadline = Instant::now() + SCHEDULER_START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(JobsError::Cluster(format!(
                "ember-scheduler exited ({status}) while starting: {}",
                log_tail(log)
            )));
        }
        if let Ok(r) = client
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(JobsError::Cluster(format!(
        "ember-scheduler did not answer on port {port} within {} s: {}",
        SCHEDULER_START_TIMEOUT.as_secs(),
        log_tail(log)
    )))
}

/// Waits until `expected` executors are registered with the scheduler on
/// `port`, failing early if one of `children` exits. `access` carries the
/// cluster's token and CA, if it has them.
pub async fn wait_for_executors(
    port: u16,
    expected: usize,
    children: &mut [(Child, PathBuf)],
    access: &ClusterAccess,
) -> Result<()> {
    let client = access.rest_client()?;
    let url = format!("{}/api/executors", access.scheduler_http("127.0.0.1", port));
    let deadline = Instant::now() + EXECUTORS_START_TIMEOUT;
    let mut registered = 0;
    while Instant::now() < deadline {
        for (child, log) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(JobsError::Cluster(format!(
                    "ember-executor exited ({status}) while starting: {}",
                    log_tail(log)
                )));
            }
        }
        if let Ok(r) = client
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            && let Ok(list) = r.json::<Vec<serde_json::Value>>().await
        {
            registered = list.len();
            if registered >= expected {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(JobsError::Cluster(format!(
        "only {registered} of {expected} executors registered within {} s",
        EXECUTORS_START_TIMEOUT.as_secs()
    )))
}

/// The last lines of a log file, on one line, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(3)..];
    // Why a process stopped is often logged before its shutdown messages:
    // Ballista's executor logs "services stopped with reason Err(..)" (a port
    // already in use, say) and then three lines of stopping.
    // The last such line: an early error may have been retried and passed.
    let reason = lines
        .iter()
        .rev()
        .find(|l| l.contains("stopped with reason"))
        .or_else(|| lines.iter().rev().find(|l| l.contains("ERROR")))
        .filter(|l| !last.contains(l));
    let tail = reason
        .into_iter()
        .chain(last)
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    if tail.is_empty() {
        format!("(no output; log at {})", log.display())
    } else {
        format!("{tail} (log at {})", log.display())
    }
}

#[cfg(test)]
mod tests {
    use super::log_tail;

    #[test]
    fn the_tail_of_a_log_keeps_the_reason_a_process_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("executor-1.log");
        std::fs::write(
            &log,
            "INFO starting\nINFO executor services stopped with reason Err(Address already in use)\n\
             INFO setting executor to TERMINATING status\nINFO Stop the task runner pool\n\
             INFO Stop heartbeater\nINFO Executor stopped.\n",
        )
        .unwrap();
        let tail = log_tail(&log);
        assert!(tail.starts_with("INFO executor services stopped with reason Err(Address already in use) | INFO Stop the task runner pool"), "{tail}");
        assert!(tail.contains("Executor stopped."), "{tail}");
        assert!(!tail.contains("starting"), "{tail}");
    }
}
