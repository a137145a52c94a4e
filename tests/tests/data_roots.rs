//! A cluster limited to data roots reads and writes under them and refuses
//! every other path: an absolute path elsewhere, `..` out of a root, a link
//! out of a root, and writes outside. Refusals name the path, and nothing is
//! written outside.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ember_core::{ClusterTarget, EmberContext};
use ember_tests::cluster::TestCluster;

struct Fixture {
    _dir: tempfile::TempDir,
    allowed: std::path::PathBuf,
    secret: std::path::PathBuf,
    cluster: TestCluster,
    ember: EmberContext,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let allowed = dir.path().join("allowed");
    let secret = dir.path().join("secret");
    std::fs::create_dir_all(&allowed).expect("mkdir");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::write(allowed.join("ok.csv"), "a,b\n1,x\n2,y\n").expect("write");
    std::fs::write(secret.join("key.csv"), "a,b\n7,secret\n").expect("write");
    std::os::unix::fs::symlink(secret.join("key.csv"), allowed.join("link.csv")).expect("symlink");
    let roots = vec!["--data-root".to_string(), allowed.display().to_string()];
    let cluster = TestCluster::start(1, &roots, &roots)
        .await
        .expect("cluster with data roots");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = EmberContext::connect_with_auth(target, None)
        .await
        .expect("connect");
    Fixture {
        _dir: dir,
        allowed,
        secret,
        cluster,
        ember,
    }
}

/// Runs `sql` statements in order; the error of the first that fails.
async fn run(ember: &EmberContext, statements: &[String]) -> Result<usize, String> {
    let mut rows = 0;
    for sql in statements {
        let frame = ember.session().sql(sql).await.map_err(|e| e.to_string())?;
        let batches = frame.collect().await.map_err(|e| e.to_string())?;
        rows = batches.iter().map(|b| b.num_rows()).sum();
    }
    Ok(rows)
}

fn read_table(name: &str, location: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE EXTERNAL TABLE {name} (a BIGINT, b VARCHAR) STORED AS CSV LOCATION '{location}' \
             OPTIONS ('format.has_header' 'true')"
        ),
        format!("SELECT * FROM {name}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_data_roots_are_refused() {
    let f = fixture().await;
    let allowed = f.allowed.display().to_string();

    let rows = run(&f.ember, &read_table("ok", &format!("{allowed}/ok.csv")))
        .await
        .expect("a file under the root is read");
    assert_eq!(rows, 2);

    let outside = [
        ("passwd", "/etc/passwd".to_string(), "/etc/passwd"),
        (
            "dotted",
            format!("{allowed}/../secret/key.csv"),
            "secret/key.csv",
        ),
        ("linked", format!("{allowed}/link.csv"), "resolves to"),
    ];
    for (name, location, named) in outside {
        let err = run(&f.ember, &read_table(name, &location))
            .await
            .expect_err(&format!("{location} must be refused"));
        assert!(
            err.contains("outside this cluster's data roots") && err.contains(named),
            "{location}: {err}"
        );
        eprintln!("refused {location}: {err}");
        assert!(
            !err.contains("secret\n") && !err.contains("7,secret"),
            "{err}"
        );
    }

    let target = f.secret.join("out");
    let err = run(
        &f.ember,
        &[format!(
            "COPY (SELECT 1 AS a) TO '{}/' STORED AS PARQUET",
            target.display()
        )],
    )
    .await
    .expect_err("a write outside the roots must be refused");
    assert!(err.contains("outside this cluster's data roots"), "{err}");
    let written: Vec<_> = walk(&target);
    assert!(
        written.is_empty(),
        "files written outside the roots: {written:?}"
    );

    let inside = f.allowed.join("out");
    run(
        &f.ember,
        &[format!(
            "COPY (SELECT 1 AS a) TO '{}/' STORED AS PARQUET",
            inside.display()
        )],
    )
    .await
    .expect("a write under the root is allowed");
    assert!(
        !walk(&inside).is_empty(),
        "the write under the root produced no file"
    );
    drop(f.cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_files_outside_the_data_roots_are_refused() {
    let f = fixture().await;
    let fixture_model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../udfs/tests/fixtures/scoring/lgb_constant_model.txt"
    );
    let score = |model: &std::path::Path| {
        let mut statements = read_table("t", &format!("{}/ok.csv", f.allowed.display()));
        statements[1] = format!(
            "SELECT predict('{}', named_struct('age', x, 'tenure', x, 'income', x, \
             'balance', x, 'score', x, 'visits', x)) AS p \
             FROM (SELECT CAST(a AS DOUBLE) AS x FROM t)",
            model.display()
        );
        statements
    };
    let inside = f.allowed.join("model.txt");
    std::fs::copy(fixture_model, &inside).expect("copy model");
    let rows = run(&f.ember, &score(&inside))
        .await
        .expect("a model under the root scores");
    assert_eq!(rows, 2);

    // The client (the user's own process) can read it; the cluster may not.
    let outside = f.secret.join("model.txt");
    std::fs::copy(fixture_model, &outside).expect("copy model");
    let err = run(&f.ember, &score(&outside)[1..])
        .await
        .expect_err("a model outside the roots must be refused");
    eprintln!("refused model: {err}");
    assert!(
        err.contains("outside this cluster's data roots") && err.contains("model.txt"),
        "{err}"
    );
}

#[test]
fn a_missing_root_stops_the_executor_with_its_name() {
    let output = std::process::Command::new(
        ember_jobs::cluster::launch::find_binary("ember-executor").expect("ember-executor"),
    )
    .args([
        "--data-root",
        "/no/such/root-dir",
        "--scheduler",
        "df://127.0.0.1:1",
    ])
    .output()
    .expect("run ember-executor");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/no/such/root-dir"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}
