//! The `ember` command's own argument handling (no cluster needed).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ember");

#[test]
fn help_lists_the_sub_commands() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for word in ["sql", "cluster"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

#[test]
fn sql_needs_a_query_or_a_file() {
    let o = Command::new(BIN).arg("sql").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--file"));
}

#[test]
fn a_missing_sql_file_is_named() {
    let o = Command::new(BIN)
        .args(["sql", "-f", "/no/such/script.sql"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/no/such/script.sql"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn output_needs_exactly_one_query() {
    let o = Command::new(BIN)
        .args([
            "sql",
            "SELECT 1; SELECT 2",
            "--output",
            "/tmp/ember-never-written",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--output") && err.contains("has 2"), "{err}");
}
