//! The benchmark harness end to end, at TPC-H scale factor 0.01: the one
//! command of `benchmarks/vs-spark.sh` (with the debug binaries of this
//! build) starts a local cluster, times the 22 queries on DataFusion, Ember
//! embedded and Ember on the cluster with every answer verified, and writes
//! the JSON report, the Markdown table and the SVG chart. Spark joins when
//! the benchmark virtualenv has pyspark and `EMBER_BENCH_SPARK` is not `0`
//! (CI sets it to `0`); otherwise the test says why Spark was left out.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ember_benchmarks::report::load_report;
use quick_xml::Reader;
use quick_xml::events::Event;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn ember_bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ember-bench"))
}

/// The Python of the benchmark virtualenv, when it has pyspark and Spark is wanted.
fn spark_python() -> Result<PathBuf, String> {
    if std::env::var("EMBER_BENCH_SPARK").as_deref() == Ok("0") {
        return Err("EMBER_BENCH_SPARK=0".into());
    }
    let venv = std::env::var_os("EMBER_BENCH_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/ember-bench-venv")))
        .ok_or("no EMBER_BENCH_VENV and no HOME")?;
    let python = venv.join("bin/python");
    let found = Command::new(&python)
        .args(["-c", "import pyspark"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        return Err(format!("{} cannot import pyspark", python.display()));
    }
    if Command::new("java").arg("-version").output().is_err() {
        return Err("no java on the PATH".into());
    }
    Ok(python)
}

type Element = (String, Vec<(String, String)>);

fn element(e: &quick_xml::events::BytesStart) -> Element {
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            (
                String::from_utf8_lossy(a.key.as_ref()).to_string(),
                String::from_utf8_lossy(&a.value).to_string(),
            )
        })
        .collect();
    (
        String::from_utf8_lossy(e.name().as_ref()).to_string(),
        attrs,
    )
}

/// Every element of the document, checking that it is well-formed XML.
fn svg_elements(svg: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(svg);
    let mut elements = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                elements.push(element(&e));
                depth += 1;
            }
            Ok(Event::Empty(e)) => elements.push(element(&e)),
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("the chart is not well-formed XML: {e}"),
        }
    }
    assert_eq!(depth, 0, "unclosed elements in the chart");
    elements
}

#[test]
fn vs_spark_runs_end_to_end_at_sf_0_01() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("results");
    let bin_dir = ember_bench().parent().unwrap().to_path_buf();
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("benchmarks/vs-spark.sh"))
        .args(["--sf", "0.01", "--runs", "1", "--partitions", "2"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(work.path().join("data"))
        .env_remove("EMBER_CLUSTER");
    let spark = match spark_python() {
        Ok(python) => {
            command.env(
                "EMBER_BENCH_VENV",
                python.parent().unwrap().parent().unwrap(),
            );
            true
        }
        Err(reason) => {
            eprintln!("vs_spark: running without the Spark engine: {reason}");
            command.arg("--no-spark");
            false
        }
    };
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "vs-spark.sh failed:\n{stderr}");

    // The JSON report: every engine, every query, every Ember answer verified.
    let report = load_report(&out.join("tpch-sf0.01.json")).unwrap();
    let names: Vec<&str> = report.engines.iter().map(|e| e.engine.as_str()).collect();
    let mut expected = vec!["datafusion", "embedded", "cluster"];
    if spark {
        expected.push("spark");
    }
    assert_eq!(names, expected);
    let datafusion = report.engine("datafusion").unwrap();
    for engine in &report.engines {
        assert_eq!(engine.queries.len(), 22, "{}", engine.engine);
        for q in &engine.queries {
            assert!(
                q.best_s > 0.0 && q.best_s <= q.median_s,
                "{} q{}",
                engine.engine,
                q.query
            );
            assert_eq!(q.runs_s.len(), 1);
            let want = if engine.engine == "spark" {
                None
            } else {
                Some(true)
            };
            assert_eq!(q.verified, want, "{} q{}", engine.engine, q.query);
            assert_eq!(
                q.rows,
                datafusion.query(q.query).unwrap().rows,
                "{} q{}",
                engine.engine,
                q.query
            );
        }
    }

    // The table: a row per query with the JSON's best times, totals, targets.
    let md = std::fs::read_to_string(out.join("tpch-sf0.01.md")).unwrap();
    for n in 1..=22 {
        let cells: Vec<String> = report
            .engines
            .iter()
            .map(|e| format!("{:.3}", e.query(n).unwrap().best_s))
            .collect();
        let row = format!("| Q{n} | {} |", cells.join(" | "));
        assert!(md.contains(&row), "no row {row:?} in\n{md}");
    }
    let total = format!("| **Total** | **{:.3}** |", datafusion.total_best_s());
    assert!(md.contains(&total), "no {total:?} in\n{md}");
    assert!(md.contains("Geometric mean of ratios"));
    assert!(md.contains("Ember embedded within 1.2x of single-process DataFusion"));
    assert_eq!(md.contains("at least 10x faster than Spark"), spark, "{md}");

    // The chart: well-formed SVG, one bar per query and engine plus its legend swatch.
    let svg = std::fs::read_to_string(out.join("tpch-sf0.01.svg")).unwrap();
    let elements = svg_elements(&svg);
    assert_eq!(elements.first().map(|e| e.0.as_str()), Some("svg"));
    for colour in ["#787878", "#2962FF", "#00ACC1"] {
        let bars = elements
            .iter()
            .filter(|(name, attrs)| {
                name == "rect" && attrs.iter().any(|(k, v)| k == "fill" && v == colour)
            })
            .count();
        assert_eq!(bars, 23, "bars of colour {colour}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("# TPC-H SF0.01"),
        "the script prints the table:\n{stdout}"
    );
}

#[test]
fn bad_arguments_and_reports_are_named() {
    let run = |args: &[&str]| {
        let o = Command::new(ember_bench()).args(args).output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let err = run(&["tpch", "--sf", "0.01", "--queries", "23"]);
    assert!(
        err.contains("--queries: there is no TPC-H query 23"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("notes.json");
    std::fs::write(&not_json, "not a report").unwrap();
    let out = dir.path().join("merged.json");
    let err = run(&[
        "report",
        "--input",
        not_json.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("notes.json: not a benchmark report"), "{err}");
    assert!(!out.exists(), "a failed merge writes nothing");

    let err = run(&[
        "tpch",
        "--sf",
        "0.01",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--engines",
        "spark",
        "--spark-python",
        "/nonexistent/python",
    ]);
    assert!(
        err.contains("spark: cannot run /nonexistent/python (--spark-python)"),
        "{err}"
    );
}
