//! Reports on disk: the JSON, the Markdown table and the SVG chart side by
//! side (`tpch-sf1.json`, `tpch-sf1.md`, `tpch-sf1.svg`), each written to a
//! temporary file and renamed into place, so a reader never sees half a
//! report and a failed run leaves the previous one whole.

use std::path::{Path, PathBuf};

use super::{TpchReport, markdown_table, svg_chart};
use crate::error::{BenchError, Result};

/// Reads a JSON report (`ember-bench tpch --output` or the Spark runner's).
pub fn load_report(path: &Path) -> Result<TpchReport> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| BenchError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `report` as JSON to `json_path`, and its table and chart beside it
/// (same name, `.md` and `.svg`). Returns the three paths.
pub fn write_report_files(report: &TpchReport, json_path: &Path) -> Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::Invalid(format!("serialising the report: {e}")))?;
    let chart = svg_chart(report).map_err(BenchError::Chart)?;
    let md_path = json_path.with_extension("md");
    let svg_path = json_path.with_extension("svg");
    if md_path == json_path {
        return Err(BenchError::Invalid(format!(
            "{}: name the report with a .json extension",
            json_path.display()
        )));
    }
    let mut md = markdown_table(report);
    if let Some(name) = svg_path.file_name() {
        md.push_str(&format!("\n![chart]({})\n", name.to_string_lossy()));
    }
    for (path, text) in [(json_path, json), (&md_path, md), (&svg_path, chart)] {
        write_atomically(path, &text)?;
    }
    Ok(vec![json_path.to_path_buf(), md_path, svg_path])
}

/// Writes `text` to `path` through a temporary file renamed into place.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| BenchError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| BenchError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, QueryReport};

    #[test]
    fn writes_three_files_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = EngineReport::new("embedded".into());
        e.queries
            .push(QueryReport::new(1, vec![0.5], 4, Some(true)));
        let report = TpchReport::new(0.01, 2, 1, vec![e]);
        let paths = write_report_files(&report, &dir.path().join("out/tpch.json")).unwrap();
        assert_eq!(paths.len(), 3);
        for p in &paths {
            assert!(p.is_file(), "{}", p.display());
        }
        let back = load_report(&paths[0]).unwrap();
        assert_eq!(back.engines[0].queries[0].best_s, 0.5);
        let err = load_report(&paths[1]).unwrap_err().to_string();
        assert!(err.contains("tpch.md: not a benchmark report"), "{err}");
    }
}
