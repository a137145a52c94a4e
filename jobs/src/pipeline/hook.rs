//! The `on_failure` hook: tell someone when a run fails after its retries.
//!
//! A command runs under `sh -c` with the run's details as JSON on stdin and
//! in `EMBER_*` environment variables; a URL receives the same JSON in a
//! POST. The hook is best effort: its own failure is reported on stderr and
//! in the log, but never changes the run's outcome. Both are bounded by
//! [`HOOK_TIMEOUT`], so a hanging alert cannot hold up a scheduler.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::display::RunDisplay;
use super::runner::RunResult;
use super::spec::HookSpec;

/// The longest a hook may take.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the hook for the failed run `result`.
pub async fn run_failure_hook(hook: &HookSpec, result: &RunResult, display: &RunDisplay) {
    let body = serde_json::to_string(result).unwrap_or_else(|_| "{}".to_string());
    let outcome = match (&hook.command, &hook.url) {
        (Some(command), _) => {
            tokio::time::timeout(HOOK_TIMEOUT, run_command(command, result, &body))
                .await
                .unwrap_or_else(|_| Err(format!("did not finish within {HOOK_TIMEOUT:?}")))
        }
        (None, Some(url)) => post(url, body).await,
        (None, None) => Ok(()),
    };
    match outcome {
        Ok(()) => display.note("ember run: on_failure hook ran"),
        Err(e) => {
            tracing::warn!("on_failure hook failed: {e}");
            display.note(&format!("ember run: on_failure hook failed: {e}"));
        }
    }
}

async fn run_command(command: &str, result: &RunResult, body: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("EMBER_RUN_ID", result.run_id.to_string())
        .env("EMBER_PIPELINE", &result.pipeline)
        .env("EMBER_DS", &result.ds)
        .env("EMBER_STATE", result.state.as_str())
        .env("EMBER_ERROR", result.error.clone().unwrap_or_default())
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `{command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin closes it early; that is not an error.
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("`{command}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{command}` exited with {status}"))
    }
}

async fn post(url: &str, body: String) -> Result<(), String> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(HOOK_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "POST {url}: the server answered {}",
            response.status()
        ))
    }
}
