//! `ember-executor`'s flags and start-up errors.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ember-executor");

#[test]
fn help_lists_the_documented_flags() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--scheduler",
        "--flight-port",
        "--work-dir",
        "--vcores",
        "--memory-limit",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_bad_memory_limit_is_one_clear_line() {
    let o = Command::new(BIN)
        .args(["--memory-limit", "lots", "--log-level", "error"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--memory-limit") && err.contains("lots"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn an_unreachable_scheduler_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = Command::new(BIN)
        .args([
            "--scheduler",
            &format!("df://127.0.0.1:{port}"),
            "--scheduler-connect-timeout-seconds",
            "1",
            "--log-level",
            "error",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
