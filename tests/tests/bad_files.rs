//! Bad input files and full disks, through the `ember` command as a user runs
//! it: every case must fail with one line on stderr that names the file and
//! says what is wrong, never a panic, and must leave no partial output: the
//! `--output` target keeps what a previous run wrote, and no staging sibling
//! is left next to it.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ember_jobs::cluster::launch::find_binary;
use ember_tests::Mode;
use ember_tests::cluster::shared;
use ember_tests::command::{ember, stderr};
use ember_tests::data::write_parquet;
use rstest::rstest;

/// Writes `files` good Parquet files `part-N.parquet` of `rows` rows
/// `(n BIGINT, s VARCHAR)` under `dir`.
fn good_parquet_files(dir: &Path, files: usize, rows: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    for part in 0..files as i64 {
        let n: Vec<i64> = (part * rows..(part + 1) * rows).collect();
        let s: Vec<String> = n.iter().map(|v| format!("value-{v}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(n)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .unwrap();
        write_parquet(&dir.join(format!("part-{part}.parquet")), &batch);
    }
}

/// An output written by an earlier, successful run, and its files' contents.
struct PreviousOutput {
    path: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl PreviousOutput {
    fn write(parent: &Path) -> Self {
        let path = parent.join("out");
        let o = ember(
            Mode::Embedded,
            &[
                "sql",
                "SELECT 7 AS kept",
                "--output",
                path.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let files = Self::read(&path);
        assert!(!files.is_empty(), "the previous run wrote nothing");
        Self { path, files }
    }

    fn read(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The target holds exactly what the earlier run wrote, and nothing
    /// staged is left beside it.
    fn assert_unchanged(&self) {
        assert!(
            Self::read(&self.path) == self.files,
            "the previous output under {} changed",
            self.path.display()
        );
        assert_no_staging(self.path.parent().unwrap());
    }
}

fn assert_no_staging(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".ember-staging-") || n.contains(".ember-previous-"))
        .collect();
    assert!(
        left.is_empty(),
        "partial output left in {}: {left:?}",
        dir.display()
    );
}

/// Asserts a failure with one line on stderr, no panic, naming `path` and
/// containing every needle.
fn assert_names_file(o: &Output, path: &Path, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let path = path.display().to_string();
    assert!(err.contains(&path), "'{path}' not named in: {err}");
    for needle in needles {
        assert!(err.contains(needle), "'{needle}' not in: {err}");
    }
}

/// Runs `SELECT ... FROM t` over `ddl`'s table with `--output` over a
/// previous output, and returns what the command printed.
fn query_to_output(mode: Mode, ddl: &str, previous: &PreviousOutput) -> Output {
    let sql = format!("{ddl} SELECT * FROM t WHERE n >= 0");
    ember(
        mode,
        &["sql", &sql, "--output", previous.path.to_str().unwrap()],
    )
}

/// Damages a good Parquet file in place.
#[derive(Debug, Clone, Copy)]
enum ParquetDamage {
    /// Keeps the first half: the footer is gone.
    Truncated,
    /// Not Parquet at all.
    Garbage,
    /// Both magic numbers intact, the footer's metadata scrambled.
    CorruptFooter,
    /// Footer intact, the first page's header scrambled: fails only when
    /// read. (Scrambling an uncompressed page's values instead goes unnoticed:
    /// Parquet has no checksums unless the writer adds them.)
    CorruptPage,
}

fn damage(path: &Path, how: ParquetDamage) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    match how {
        ParquetDamage::Truncated => bytes.truncate(len / 2),
        ParquetDamage::Garbage => {
            bytes = (0..len).map(|i| (i * 131 % 251) as u8).collect();
        }
        ParquetDamage::CorruptFooter => {
            let footer = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
            let start = len - 8 - footer;
            for b in &mut bytes[start..start + 40] {
                *b ^= 0xff;
            }
        }
        ParquetDamage::CorruptPage => {
            for b in &mut bytes[4..40] {
                *b ^= 0xff;
            }
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[rstest]
#[case::truncated(ParquetDamage::Truncated, "truncated Parquet file: it has no footer")]
#[case::garbage(ParquetDamage::Garbage, "not a Parquet file")]
#[case::corrupt_footer(ParquetDamage::CorruptFooter, "corrupt Parquet file")]
#[case::corrupt_page(ParquetDamage::CorruptPage, "corrupt Parquet file")]
fn a_damaged_parquet_file_is_named_and_nothing_is_written(
    #[case] how: ParquetDamage,
    #[case] problem: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events");
    good_parquet_files(&input, 4, 2000);
    let bad = input.join("part-2.parquet");
    damage(&bad, how);
    let previous = PreviousOutput::write(dir.path());

    let ddl = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/';",
        input.display()
    );
    let o = query_to_output(Mode::Embedded, &ddl, &previous);
    assert_names_file(&o, &bad, &["cannot read", problem]);
    previous.assert_unchanged();
}

#[test]
fn a_corrupt_parquet_page_is_named_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events");
    good_parquet_files(&input, 4, 2000);
    let bad = input.join("part-1.parquet");
    damage(&bad, ParquetDamage::CorruptPage);
    let previous = PreviousOutput::write(dir.path());

    let ddl = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/';",
        input.display()
    );
    let o = query_to_output(Mode::Cluster, &ddl, &previous);
    assert_names_file(&o, &bad, &["cannot read", "corrupt Parquet file"]);
    previous.assert_unchanged();
}

#[rstest]
#[case::wrong_arity("n,s\n1,a\n2,b\n3,c,extra\n4,d\n", "line 4")]
#[case::unparsable_value("n,s\n1,a\nnot-a-number,b\n", "'not-a-number' as type 'Int64'")]
fn a_bad_csv_row_is_named_with_its_line(#[case] content: &str, #[case] problem: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("csv");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.csv"), "n,s\n10,x\n11,y\n").unwrap();
    let bad = input.join("b.csv");
    std::fs::write(&bad, content).unwrap();
    let previous = PreviousOutput::write(dir.path());

    let ddl = format!(
        "CREATE EXTERNAL TABLE t (n BIGINT, s VARCHAR) STORED AS CSV LOCATION '{}/' \
         OPTIONS ('format.has_header' 'true');",
        input.display()
    );
    let o = query_to_output(Mode::Embedded, &ddl, &previous);
    assert_names_file(&o, &bad, &["cannot read", "invalid CSV", problem]);
    previous.assert_unchanged();
}

#[rstest]
#[case::declared_schema(true)]
#[case::inferred_schema(false)]
fn a_broken_ndjson_line_is_named(#[case] declared: bool) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("json");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.json"), "{\"n\":1,\"s\":\"a\"}\n").unwrap();
    let bad = input.join("b.json");
    std::fs::write(
        &bad,
        "{\"n\":2,\"s\":\"b\"}\n{\"n\":3,\"s\":\n{\"n\":4,\"s\":\"d\"}\n",
    )
    .unwrap();
    let previous = PreviousOutput::write(dir.path());

    let schema = if declared {
        "(n BIGINT, s VARCHAR)"
    } else {
        ""
    };
    let ddl = format!(
        "CREATE EXTERNAL TABLE t {schema} STORED AS JSON LOCATION '{}/';",
        input.display()
    );
    let o = query_to_output(Mode::Embedded, &ddl, &previous);
    assert_names_file(&o, &bad, &["cannot read", "invalid JSON at line 2"]);
    previous.assert_unchanged();
}

/// The scheduler lists the files when it plans a job; a file deleted after
/// that is missing when a later stage reads it. The job reads the directory
/// only after a slow first stage, the test deletes a file once the scheduler
/// reports the job running, and the error must name that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_deleted_mid_job_is_named() {
    let cluster = shared();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events");
    good_parquet_files(&input, 8, 200);
    let previous = PreviousOutput::write(dir.path());
    let victim = input.join("part-5.parquet");

    let name = format!("bad-files-deleted-{}", std::process::id());
    let sql = format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/';
         SET ballista.job.name = '{name}';
         SELECT t.n + slow.c AS v, t.s FROM
           (SELECT count(*) AS c FROM generate_series(1, 20000) a(x)
              CROSS JOIN generate_series(1, 20000) b(y) WHERE (x * y) % 7 = 3) slow
           CROSS JOIN t",
        input.display()
    );
    let child = Command::new(find_binary("ember").unwrap())
        .args(["sql", &sql, "--output", previous.path.to_str().unwrap()])
        .args(["--cluster", &cluster.address()])
        .env_remove("EMBER_CLUSTER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job {name} never ran"
        );
        let jobs: Vec<serde_json::Value> = client
            .get(format!("{}/api/jobs", cluster.http()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = jobs
            .iter()
            .find(|j| j["job_name"] == name.as_str())
            .map(|j| j["status"].as_str().unwrap_or_default().to_string());
        match status.as_deref() {
            Some("Running") => break,
            Some("Queued") | None => {}
            Some(other) => panic!("job {name} is {other} before the file was deleted"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_file(&victim).unwrap();

    let o = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_names_file(&o, &victim, &["cannot read", "does not exist", "deleted"]);
    previous.assert_unchanged();
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`256k`) at `path`, or `None` where this
    /// process may not mount.
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

const BIG_QUERY: &str =
    "SELECT x, md5(CAST(x AS VARCHAR)) AS h FROM generate_series(1, 200000) g(x)";

/// A write that fills its disk fails saying so, names the target, and leaves
/// neither a partial output nor staging files. It needs a small file system:
/// a tmpfs, mounted directly where the tests run as root, else inside a user
/// and mount namespace (`unshare -rm`) for an embedded run.
#[test]
fn a_full_disk_is_reported_against_the_output_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("small-disk");
    let target = disk.join("out");
    if let Some(_tmpfs) = Tmpfs::mount(&disk, "256k") {
        // A previous output that fits, then one that does not.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("previous.parquet"), b"previous").unwrap();
        for mode in [Mode::Embedded, Mode::Cluster] {
            let o = ember(
                mode,
                &["sql", BIG_QUERY, "--output", target.to_str().unwrap()],
            );
            assert_names_file(&o, &target, &["no space left on device"]);
            assert_eq!(
                std::fs::read(target.join("previous.parquet")).unwrap(),
                b"previous",
                "{mode:?}"
            );
            assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1, "{mode:?}");
            assert_no_staging(&disk);
        }
        return;
    }
    // No mount rights: the same embedded run inside its own namespaces,
    // listing what the disk holds afterwards into a file outside it.
    let listing = dir.path().join("left-on-disk.txt");
    let script = "mount -t tmpfs -o size=256k tmpfs \"$1\" || exit 99; shift; \
                  out=\"$1\"; shift; \"$@\"; rc=$?; ls -A \"$(dirname \"$out\")\" > \"$LISTING\"; exit $rc";
    let o = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&disk)
        .arg(&target)
        .arg(find_binary("ember").unwrap())
        .args(["sql", BIG_QUERY, "--output", target.to_str().unwrap()])
        .env("LISTING", &listing)
        .env_remove("EMBER_CLUSTER")
        .output()
        .unwrap();
    assert_ne!(
        o.status.code(),
        Some(99),
        "cannot mount a tmpfs here, directly or in a user namespace: {}",
        stderr(&o)
    );
    assert_names_file(&o, &target, &["no space left on device"]);
    let left = std::fs::read_to_string(&listing).unwrap();
    assert_eq!(left.trim(), "", "left on the full disk: {left}");
}
