//! Naming tables in the run's session: inputs, and outputs as steps finish.
//!
//! Every table is registered as a listing table over files, so a plan that
//! reads it carries paths, not rows: on a cluster the executors read the
//! files themselves. An output is registered once its step has committed
//! it, so a downstream step always reads a complete output.

use std::path::{Path, PathBuf};

use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use super::error::{PipelineError, Result};

/// The file format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// Parses `parquet`, `json`, `csv` (validated when the pipeline loads).
    pub fn parse(name: Option<&str>) -> Format {
        match name {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => Format::Parquet,
        }
    }
}

/// Resolves `path` against the pipeline's directory unless it is absolute or a URL.
pub fn resolve(dir: &Path, path: &str) -> String {
    if path.contains("://") || Path::new(path).is_absolute() {
        path.to_string()
    } else {
        dir.join(path).to_string_lossy().to_string()
    }
}

/// The file extension to list in a directory of `format` files: the one the
/// files there have (`.ndjson`, `.jsonl`, `.json`), else the format's own.
fn extension(location: &str, format: Format) -> String {
    let candidates: &[&str] = match format {
        Format::Parquet => &[".parquet"],
        Format::Json => &[".ndjson", ".jsonl", ".json"],
        Format::Csv => &[".csv", ".tsv"],
    };
    let path = PathBuf::from(location);
    if path.is_file() {
        return path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
    }
    if let Ok(entries) = std::fs::read_dir(&path) {
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        for candidate in candidates {
            if names.iter().any(|n| n.ends_with(candidate)) {
                return (*candidate).to_string();
            }
        }
    }
    candidates[0].to_string()
}

/// Registers (or re-registers) table `name` over `location`.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    location: &str,
    format: Format,
) -> Result<()> {
    let local = !location.contains("://");
    if local && !Path::new(location).exists() {
        return Err(PipelineError::Contract(format!(
            "table '{name}': '{location}' does not exist"
        )));
    }
    let location = if local && Path::new(location).is_dir() && !location.ends_with('/') {
        format!("{location}/")
    } else {
        location.to_string()
    };
    let ext = extension(&location, format);
    ctx.deregister_table(name)?;
    match format {
        Format::Parquet => {
            ctx.register_parquet(
                name,
                &location,
                ParquetReadOptions::default().file_extension(&ext),
            )
            .await?
        }
        Format::Json => {
            ctx.register_json(
                name,
                &location,
                JsonReadOptions::default().file_extension(&ext),
            )
            .await?
        }
        Format::Csv => {
            ctx.register_csv(
                name,
                &location,
                CsvReadOptions::new().has_header(true).file_extension(&ext),
            )
            .await?
        }
    }
    Ok(())
}
