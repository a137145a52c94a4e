//! The `ember` command as a user runs it: output formats, writes, bad input.
//! Every case runs embedded and against the shared two-executor cluster.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;
use std::time::{Duration, Instant};

use ember_jobs::cluster::launch::free_port;
use ember_tests::Mode;
use ember_tests::command::{ember, stderr, stdout};
use ember_tests::data::nums_table;
use rstest::rstest;

/// Asserts a failure with exactly one line on stderr containing every needle.
fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "'{needle}' not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn csv_output_has_a_header_then_rows_and_ddl_prints_nothing(#[case] mode: Mode) {
    let dir = tempfile::tempdir().expect("dir");
    let ddl = nums_table(dir.path());
    let sql = format!(
        "{ddl} SELECT n, s FROM nums WHERE n <= 3 ORDER BY n; SELECT count(*) AS c FROM nums;"
    );
    let o = ember(mode, &["sql", &sql, "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n,s\n1,s1\n2,s2\n3,s3\nc\n300\n");
    assert_eq!(stderr(&o), "", "piped output shows no progress or chatter");
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn json_output_is_one_object_per_row(#[case] mode: Mode) {
    let o = ember(
        mode,
        &[
            "sql",
            "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY a",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"y\"}\n");
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn table_output_is_readable(#[case] mode: Mode) {
    let o = ember(mode, &["sql", "SELECT 42 AS answer"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("| answer |") && out.contains("| 42     |"),
        "{out}"
    );
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn output_writes_parquet_that_reads_back(#[case] mode: Mode) {
    let dir = tempfile::tempdir().expect("dir");
    let ddl = nums_table(dir.path());
    let out = dir.path().join("evens");
    let sql = format!("{ddl} SELECT n FROM nums WHERE n % 2 = 0");
    let o = ember(
        mode,
        &["sql", &sql, "--output", out.to_str().expect("path")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote 150 row(s)"), "{}", stderr(&o));
    let check = format!(
        "CREATE EXTERNAL TABLE evens STORED AS PARQUET LOCATION '{}/'; SELECT count(*), sum(n) FROM evens",
        out.display()
    );
    let o = ember(Mode::Embedded, &["sql", &check, "--format", "csv"]);
    assert_eq!(
        stdout(&o),
        "count(*),sum(evens.n)\n150,22650\n",
        "{}",
        stderr(&o)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ember-staging"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn a_failed_copy_leaves_the_previous_output_and_nothing_partial(#[case] mode: Mode) {
    let dir = tempfile::tempdir().expect("dir");
    let ddl = nums_table(dir.path());
    let out = dir.path().join("copied");
    let good = format!(
        "{ddl} COPY (SELECT n FROM nums) TO '{}' STORED AS PARQUET",
        out.display()
    );
    let o = ember(mode, &["sql", &good]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before: Vec<_> = std::fs::read_dir(&out)
        .expect("output")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(!before.is_empty());

    // Fails at run time on the row n = 250, after other partitions have written.
    let bad = format!(
        "{ddl} COPY (SELECT n / (n - 250) AS q FROM nums) TO '{}' STORED AS PARQUET",
        out.display()
    );
    let o = ember(mode, &["sql", &bad]);
    assert_one_line_error(&o, &["DivideByZero"]);
    let after: Vec<_> = std::fs::read_dir(&out)
        .expect("output")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "the previous output must be left as it was");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("ember-staging")),
        "partial output left: {names:?}"
    );
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn an_unknown_table_is_named(#[case] mode: Mode) {
    let o = ember(mode, &["sql", "SELECT * FROM no_such_table"]);
    assert_one_line_error(&o, &["no_such_table"]);
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn an_unknown_column_is_named(#[case] mode: Mode) {
    let o = ember(mode, &["sql", "SELECT no_such_column FROM (SELECT 1 AS a)"]);
    assert_one_line_error(&o, &["no_such_column"]);
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn malformed_sql_reports_the_position(#[case] mode: Mode) {
    let o = ember(mode, &["sql", "SELECT 1;\nSELEC 2"]);
    assert_one_line_error(&o, &["Line: 2", "Column"]);
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn a_missing_input_file_is_named(#[case] mode: Mode) {
    let o = ember(
        mode,
        &[
            "sql",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/no/such/dir/data.parquet'; SELECT * FROM t",
        ],
    );
    assert_one_line_error(&o, &["/no/such/dir/data.parquet"]);
}

#[test]
fn an_unreachable_cluster_fails_fast_naming_the_address() {
    let port = free_port().expect("port");
    let address = format!("df://127.0.0.1:{port}");
    let started = Instant::now();
    let o = ember(Mode::Embedded, &["sql", "SELECT 1", "--cluster", &address]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_one_line_error(&o, &[&address]);
}

#[test]
fn a_malformed_cluster_address_is_named() {
    let o = ember(
        Mode::Embedded,
        &["sql", "SELECT 1", "--cluster", "localhost:50050"],
    );
    assert_one_line_error(&o, &["localhost:50050", "df://"]);
}

/// `ember cluster up` with `args`, its state in `state_dir`.
fn cluster_up(state_dir: &str, args: &[&str]) -> Output {
    let mut all = vec!["cluster", "up", "--state-dir", state_dir];
    all.extend_from_slice(args);
    ember(Mode::Embedded, &all)
}

#[test]
fn cluster_up_runs_queries_and_down_stops_it() {
    let state = tempfile::tempdir().expect("dir");
    let state_dir = state.path().to_str().expect("path");
    let o = cluster_up(state_dir, &["--executors", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let address = stdout(&o).trim().to_string();
    assert!(address.starts_with("df://127.0.0.1:"), "{address}");

    let result = std::panic::catch_unwind(|| {
        let o = ember(
            Mode::Embedded,
            &["cluster", "status", "--state-dir", state_dir],
        );
        assert_eq!(stdout(&o).trim(), address);
        let o = ember(
            Mode::Embedded,
            &[
                "sql",
                "SELECT sum(v) FROM unnest(range(1, 11)) t(v)",
                "--format",
                "csv",
                "--cluster",
                &address,
            ],
        );
        assert_eq!(stdout(&o), "sum(t.v)\n55\n", "{}", stderr(&o));
        let o = ember(Mode::Embedded, &["cluster", "up", "--state-dir", state_dir]);
        assert_one_line_error(&o, &["already running", &address]);
    });

    let o = ember(
        Mode::Embedded,
        &["cluster", "down", "--state-dir", state_dir],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stopped 3 process(es)"),
        "{}",
        stderr(&o)
    );
    let o = ember(
        Mode::Embedded,
        &["cluster", "status", "--state-dir", state_dir],
    );
    assert!(!o.status.success());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn cluster_up_passes_training_rows_memory_to_its_executors_and_names_a_bad_size() {
    let state = tempfile::tempdir().expect("dir");
    let state_dir = state.path().to_str().expect("path");
    let o = cluster_up(
        state_dir,
        &["--executors", "1", "--training-rows-memory", "half"],
    );
    // The executor refuses the size at start-up; `up` fails with its reason
    // and leaves nothing running.
    assert_one_line_error(&o, &["--training-rows-memory", "half"]);
    let o = ember(
        Mode::Embedded,
        &["cluster", "status", "--state-dir", state_dir],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
}

/// The compression of every column chunk of every Parquet file in `dir`.
fn compressions_in(dir: &std::path::Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("output dir") {
        let path = entry.expect("entry").path();
        let file = std::fs::File::open(&path).expect("open");
        let reader = SerializedFileReader::new(file).expect("a Parquet file");
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                found.push(format!("{:?}", column.compression()));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[rstest]
#[case::embedded(Mode::Embedded)]
#[case::cluster(Mode::Cluster)]
fn write_options_reach_the_files_written(#[case] mode: Mode) {
    let dir = tempfile::tempdir().expect("dir");
    let ddl = nums_table(dir.path());
    let run = |name: &str, setup: &str, options: &str| {
        let out = dir.path().join(name);
        let sql = format!(
            "{ddl} {setup} COPY (SELECT n, s FROM nums) TO '{}/' STORED AS PARQUET {options}",
            out.display()
        );
        let o = ember(mode, &["sql", &sql]);
        assert!(o.status.success(), "{}", stderr(&o));
        compressions_in(&out)
    };
    assert_eq!(run("default", "", ""), ["SNAPPY"], "Ember's default");
    assert_eq!(
        run("statement", "", "OPTIONS ('format.compression' 'gzip(6)')"),
        ["GZIP(GzipLevel(6))"]
    );
    assert_eq!(
        run(
            "session",
            "SET datafusion.execution.parquet.compression = 'lz4_raw';",
            ""
        ),
        ["LZ4_RAW"]
    );

    let csv = dir.path().join("semicolons");
    let sql = format!(
        "{ddl} COPY (SELECT n, s FROM nums WHERE n <= 2 ORDER BY n) TO '{}' STORED AS CSV \
         OPTIONS ('format.delimiter' ';', 'format.has_header' 'false')",
        csv.join("out.csv").display()
    );
    let o = ember(mode, &["sql", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(csv.join("out.csv")).expect("csv"),
        "1;s1\n2;s2\n"
    );

    let sql = format!(
        "{ddl} COPY (SELECT n FROM nums) TO '{}/' STORED AS PARQUET OPTIONS ('execution.keep_partition_by_columns' 'true')",
        dir.path().join("refused").display()
    );
    let o = ember(mode, &["sql", &sql]);
    assert_one_line_error(
        &o,
        &[
            "'execution.keep_partition_by_columns'",
            "SET datafusion.execution",
        ],
    );
}
