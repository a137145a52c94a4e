//! Running the `ember` command as a user would, embedded or against the
//! shared cluster, and reading what it printed.

use std::process::{Command, Output};

use ember_jobs::cluster::launch::find_binary;

use crate::Mode;
use crate::cluster::shared;

/// Runs `ember ARGS` (with `--cluster` for [`Mode::Cluster`]) and waits for it.
pub fn ember(mode: Mode, args: &[&str]) -> Output {
    let mut command = Command::new(find_binary("ember").expect("ember binary"));
    command
        .args(args)
        .env_remove("EMBER_CLUSTER")
        .env_remove("EMBER_AUTH_TOKEN")
        .env_remove("EMBER_AUTH_TOKEN_FILE")
        .env_remove("EMBER_TLS_CA");
    if mode == Mode::Cluster {
        command.args(["--cluster", &shared().address()]);
    }
    command.output().expect("run ember")
}

/// What the command printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// What the command printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
