//! Which process recorded a run, and whether it is still alive.
//!
//! A run is identified with its process by host name, pid and, where
//! `/proc` exists, the process's start time, so that a pid reused by an
//! unrelated process after a crash does not keep a dead run `running`.

/// Identity of a process, as recorded with each run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessId {
    /// Host name (`gethostname(2)`).
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// where `/proc` can be read.
    pub start: Option<i64>,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        ProcessId {
            host: host_name(),
            pid: i64::from(pid),
            start: start_time(i64::from(pid)),
        }
    }
}

/// This machine's host name, or `unknown` if it cannot be read.
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname(2) writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Whether the process recorded as `pid` (started at `start`, if known) on
/// this host is still running.
///
/// Dead means: `kill(pid, 0)` fails with `ESRCH`, or `/proc` shows a zombie,
/// or a process with a different start time (the pid was reused). A pid that
/// is not positive is never a real process (`kill` would signal a process
/// group) and counts as dead. `EPERM` means the process exists under another
/// user: alive.
pub(crate) fn is_alive(pid: i64, start: Option<i64>) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    match stat(pid) {
        Some((state, now_start)) => {
            let zombie = matches!(state, 'Z' | 'X' | 'x');
            let reused = matches!((start, now_start), (Some(a), Some(b)) if a != b);
            !zombie && !reused
        }
        // No /proc (not Linux, or hidden): trust kill(2).
        None => true,
    }
}

/// Start time of `pid`, from `/proc/<pid>/stat`.
pub(crate) fn start_time(pid: i64) -> Option<i64> {
    stat(pid).and_then(|(_, start)| start)
}

/// State letter and start time of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: i64) -> Option<(char, Option<i64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so the
    // fields start after the last ')'. Field 3 is the state, field 22 the
    // start time.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18).and_then(|f| f.parse().ok());
    Some((state, start))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::history::testing::dead_pid;

    #[test]
    fn this_process_is_alive() {
        let me = ProcessId::current();
        assert!(is_alive(me.pid, me.start));
        assert!(!me.host.is_empty());
    }

    #[test]
    fn an_exited_process_is_dead() {
        assert!(!is_alive(dead_pid(), None));
    }

    #[test]
    fn non_positive_and_huge_pids_are_dead() {
        assert!(!is_alive(0, None));
        assert!(!is_alive(-1, None));
        assert!(!is_alive(i64::MAX, None));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reused_pid_is_dead() {
        let me = ProcessId::current();
        let start = me.start.expect("/proc/self/stat has a start time");
        assert!(is_alive(me.pid, Some(start)));
        assert!(!is_alive(me.pid, Some(start + 1)));
    }
}
