//! One page for a results directory (`benchmarks/results/<date>-<host>/README.md`):
//! the TPC-H totals and targets of every `tpch-sf*.json`, linked to their
//! tables and charts, then every other benchmark's JSON (scoring and
//! training, written by the side-by-side scripts) as a table of its results,
//! with the command that produced it.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::table::{TARGETS, display_name, geometric_mean_ratio, total_ratio};
use super::{TpchReport, load_report};
use crate::error::{BenchError, Result};

/// The summary page of the reports in `dir`.
pub fn summary_page(dir: &Path) -> Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| BenchError::io(dir, e))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(BenchError::Invalid(format!(
            "{}: no JSON report here",
            dir.display()
        )));
    }
    let title = std::path::absolute(dir)
        .map_err(|e| BenchError::io(dir, e))?
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut md = format!("# Benchmark results: {title}\n\n");
    let _ = writeln!(
        md,
        "Written by `ember-bench summary --dir {}` from the JSON reports here.\n",
        dir.display()
    );
    let (tpch, others): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.starts_with("tpch-sf"));
    if !tpch.is_empty() {
        let _ = writeln!(md, "## TPC-H\n");
        for name in tpch {
            tpch_section(&mut md, name, &load_report(&dir.join(name))?);
        }
    }
    for name in others {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|source| BenchError::Json { path, source })?;
        other_section(&mut md, name, &value);
    }
    Ok(md)
}

fn tpch_section(md: &mut String, name: &str, report: &TpchReport) {
    let stem = name.trim_end_matches(".json");
    let _ = writeln!(
        md,
        "### `{stem}`: SF{}, best of {} runs, {} partitions ([table]({stem}.md), [chart]({stem}.svg))\n",
        report.scale_factor, report.runs, report.partitions
    );
    let _ = writeln!(md, "| Engine | Total (s) |\n| --- | ---: |");
    for e in &report.engines {
        let _ = writeln!(
            md,
            "| {} | {:.2} |",
            display_name(&e.engine),
            e.total_best_s()
        );
    }
    let _ = writeln!(md);
    for t in &TARGETS {
        let (Some(r), Some(g)) = (
            total_ratio(report, t.slower, t.faster),
            geometric_mean_ratio(report, t.slower, t.faster),
        ) else {
            continue;
        };
        let met = if t.at_most {
            r <= t.ratio
        } else {
            r >= t.ratio
        };
        let _ = writeln!(
            md,
            "- {}: {r:.2}x on totals, {g:.2}x geometric mean (target {}{:.1}x): **{}**",
            t.text,
            if t.at_most { "at most " } else { "at least " },
            t.ratio,
            if met { "met" } else { "missed" }
        );
    }
    let _ = writeln!(md);
}

fn cell(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.4}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn other_section(md: &mut String, name: &str, value: &Value) {
    let title = value
        .get("benchmark")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let _ = writeln!(md, "## {title} (`{name}`)\n");
    if let Some(command) = value.get("command").and_then(Value::as_str) {
        let _ = writeln!(md, "`{command}`\n");
    }
    for key in ["rows", "model", "groups", "rows_per_group", "features"] {
        if let Some(v) = value.get(key) {
            let _ = writeln!(md, "- {key}: {}", cell(v));
        }
    }
    match value.get("results") {
        Some(Value::Object(results)) => {
            let _ = writeln!(md, "\n| Result | Value |\n| --- | ---: |");
            for (k, v) in results {
                let _ = writeln!(md, "| {k} | {} |", cell(v));
            }
        }
        Some(Value::Array(rows)) => {
            let mut columns: Vec<&String> = Vec::new();
            for row in rows.iter().filter_map(Value::as_object) {
                for k in row.keys() {
                    if !columns.contains(&k) {
                        columns.push(k);
                    }
                }
            }
            let header: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                md,
                "\n| {} |\n|{}",
                header.join(" | "),
                " ---: |".repeat(header.len())
            );
            for row in rows.iter().filter_map(Value::as_object) {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| row.get(*c).map(cell).unwrap_or_default())
                    .collect();
                let _ = writeln!(md, "| {} |", cells.join(" | "));
            }
        }
        _ => {}
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, QueryReport, write_report_files};

    #[test]
    fn summarises_tpch_and_other_reports() {
        let dir = tempfile::tempdir().unwrap();
        let mut engines = Vec::new();
        for (name, t) in [("spark", 20.0), ("embedded", 1.0)] {
            let mut e = EngineReport::new(name.into());
            e.queries.push(QueryReport::new(1, vec![t], 4, None));
            engines.push(e);
        }
        write_report_files(
            &TpchReport::new(1.0, 2, 1, engines),
            &dir.path().join("tpch-sf1.json"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("scoring.json"),
            r#"{"benchmark": "scoring", "command": "python x.py", "rows": 10,
                "results": {"ember_seconds": 1.5, "spark_seconds": 6}}"#,
        )
        .unwrap();
        let md = summary_page(dir.path()).unwrap();
        assert!(md.contains("| Spark | 20.00 |"), "{md}");
        assert!(md.contains("at least 15x faster than Spark: 20.00x on totals, 20.00x geometric mean (target at least 15.0x): **met**"), "{md}");
        assert!(md.contains("## scoring (`scoring.json`)"), "{md}");
        assert!(
            md.contains("| ember_seconds | 1.5000 |") && md.contains("| spark_seconds | 6 |"),
            "{md}"
        );

        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        let err = summary_page(dir.path()).unwrap_err().to_string();
        assert!(err.contains("broken.json: not a benchmark report"), "{err}");
    }
}
