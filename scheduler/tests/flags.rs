//! `ember-scheduler`'s flags and start-up errors.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ember-scheduler");

#[test]
fn help_lists_the_documented_flags() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--bind-host",
        "--port",
        "--external-host",
        "--event-log-dir",
        "--log-level",
        "--scheduling",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_taken_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = Command::new(BIN)
        .args([
            "--bind-host",
            "127.0.0.1",
            "--port",
            &port,
            "--log-level",
            "error",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
