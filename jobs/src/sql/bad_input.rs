//! Naming the input file behind a reader's error.
//!
//! DataFusion's readers say what is wrong ("Corrupt footer", "incorrect
//! number of fields for line 4") but not in which file, and on a cluster the
//! message reaches the client as the executor's debug rendering. With a
//! directory of hundreds of files the user cannot act on that. So when a
//! statement fails with a reader's error, Ember reads the statement's input
//! files again on the client, one at a time, with the table's own format,
//! options and schema, and reports the first one that fails, by path.
//!
//! This runs only after a failure, and only for local files (the inputs must
//! be on a file system the client shares anyway, see the README): object-store
//! inputs are not downloaded again, and at most [`PROBE_BUDGET`] bytes are
//! read. When no file fails on its own (a file deleted since, a bug elsewhere)
//! the original error stands.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::source_as_provider;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{CreateExternalTable, DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use crate::error::{JobsError, describe_datafusion_error, one_line};

/// The most bytes re-read to find the bad file.
const PROBE_BUDGET: u64 = 1 << 30;

/// What the statement reads: listing tables of queries, or the location of a
/// `CREATE EXTERNAL TABLE` whose schema inference failed.
enum Input {
    Table(Box<ListingTable>),
    Ddl(Box<CreateExternalTable>),
}

/// Whether `error` comes from reading a file's contents.
pub fn is_reader_error(text: &str) -> bool {
    const MARKS: &[&str] = &[
        "Parquet error",
        "ParquetError",
        "Csv error",
        "CsvError",
        "Json error",
        "JsonError",
        "ParseError",
        "Error while parsing value",
        "Invalid Parquet file",
    ];
    MARKS.iter().any(|m| text.contains(m))
}

/// If `error` is a reader's error and one of `plan`'s local input files
/// fails to read on its own, an error naming that file; else `error`.
pub async fn name_bad_file(plan: &LogicalPlan, error: JobsError) -> JobsError {
    let text = error.to_string();
    if !is_reader_error(&text) {
        return error;
    }
    match find_bad_file(plan).await {
        Some((path, problem)) => JobsError::BadInput { path, problem },
        None => error,
    }
}

/// The first input file of `plan` that fails to read, and why.
async fn find_bad_file(plan: &LogicalPlan) -> Option<(PathBuf, String)> {
    let ctx = SessionContext::new();
    let mut budget = PROBE_BUDGET;
    for input in inputs(plan) {
        let files = match &input {
            Input::Table(table) => {
                let mut files = Vec::new();
                for url in table.table_paths() {
                    files.extend(local_files(&ctx, url, &table.options().file_extension).await);
                }
                files
            }
            Input::Ddl(cmd) => {
                let ext = ddl_extension(&ctx, cmd);
                let mut files = Vec::new();
                for location in &cmd.locations {
                    if let Ok(url) = ListingTableUrl::parse(location) {
                        files.extend(local_files(&ctx, &url, &ext).await);
                    }
                }
                files
            }
        };
        for (path, size) in files {
            if size > budget {
                return None;
            }
            budget -= size;
            let read = match &input {
                Input::Table(table) => read_one_file(&ctx, table, &path).await,
                Input::Ddl(cmd) => read_one_file_as(&ctx, cmd, &path).await,
            };
            if let Err(e) = read {
                let problem = describe_problem(&path, &e);
                return Some((path, problem));
            }
        }
    }
    None
}

/// The listing tables a plan scans, or the DDL it runs.
fn inputs(plan: &LogicalPlan) -> Vec<Input> {
    if let LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) = plan {
        return vec![Input::Ddl(cmd.clone())];
    }
    let mut tables = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<ListingTable>()
        {
            tables.push(Input::Table(Box::new(table.clone())));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    tables
}

/// The extension a `CREATE EXTERNAL TABLE` reads (`.parquet`, `.csv`, ...).
fn ddl_extension(ctx: &SessionContext, cmd: &CreateExternalTable) -> String {
    ctx.state()
        .get_file_format_factory(&cmd.file_type)
        .map(|f| f.default().get_ext())
        .map(|ext| format!(".{ext}"))
        .unwrap_or_default()
}

/// The local files under `url` ending in `ext`, with their sizes, in path order.
async fn local_files(
    ctx: &SessionContext,
    url: &ListingTableUrl,
    ext: &str,
) -> Vec<(PathBuf, u64)> {
    if url.scheme() != "file" {
        return vec![];
    }
    let Ok(store) = ctx.runtime_env().object_store(url) else {
        return vec![];
    };
    let state = ctx.state();
    let Ok(listing) = url.list_all_files(&state, store.as_ref(), ext).await else {
        return vec![];
    };
    let mut files: Vec<(PathBuf, u64)> = listing
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|meta| (PathBuf::from(format!("/{}", meta.location)), meta.size))
        .collect();
    files.sort();
    files
}

/// Reads all of `path` as one file of `table`.
async fn read_one_file(
    ctx: &SessionContext,
    table: &ListingTable,
    path: &Path,
) -> datafusion::error::Result<()> {
    let partition_cols: Vec<&str> = table
        .options()
        .table_partition_cols
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let table_schema = table.schema();
    let file_schema = Schema::new(
        table_schema
            .fields()
            .iter()
            .filter(|f| !partition_cols.contains(&f.name().as_str()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let options = table.options().clone().with_table_partition_cols(vec![]);
    let url = ListingTableUrl::parse(path.to_string_lossy())?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::new(file_schema));
    let one = ListingTable::try_new(config)?;
    drain(ctx.read_table(Arc::new(one))?).await
}

/// Creates `cmd`'s table over `path` alone and reads all of it.
async fn read_one_file_as(
    ctx: &SessionContext,
    cmd: &CreateExternalTable,
    path: &Path,
) -> datafusion::error::Result<()> {
    let mut one = cmd.clone();
    one.locations = vec![path.to_string_lossy().to_string()];
    one.name = "ember_bad_input_probe".into();
    one.or_replace = true;
    one.if_not_exists = false;
    ctx.execute_logical_plan(LogicalPlan::Ddl(DdlStatement::CreateExternalTable(
        Box::new(one),
    )))
    .await?
    .collect()
    .await?;
    let result = drain(ctx.table("ember_bad_input_probe").await?).await;
    let _ = ctx.deregister_table("ember_bad_input_probe");
    result
}

/// Runs `df`, dropping its rows as they come.
async fn drain(df: datafusion::dataframe::DataFrame) -> datafusion::error::Result<()> {
    let mut stream = df.execute_stream().await?;
    while stream.try_next().await?.is_some() {}
    Ok(())
}

/// What is wrong with `path`, from the reader's error and, for Parquet, the
/// file's magic bytes.
fn describe_problem(path: &Path, error: &DataFusionError) -> String {
    let message = strip_layers(&describe_datafusion_error(error));
    let name = path.to_string_lossy().to_lowercase();
    if name.ends_with(".parquet") {
        return describe_parquet_problem(path, &message);
    }
    if name.ends_with(".csv") || name.ends_with(".tsv") {
        return format!("invalid CSV: {message}");
    }
    if name.ends_with(".json") || name.ends_with(".ndjson") {
        return match first_invalid_json_line(path) {
            Some((line, reason)) => format!("invalid JSON at line {line}, {reason}"),
            None => format!("invalid JSON: {message}"),
        };
    }
    message
}

/// A truncated file starts with Parquet's magic but does not end with it;
/// another format has neither.
fn describe_parquet_problem(path: &Path, message: &str) -> String {
    let Ok((size, head, tail)) = magic_bytes(path) else {
        return format!("corrupt Parquet file: {message}");
    };
    const MAGIC: &[u8; 4] = b"PAR1";
    match (size >= 8 && &head == MAGIC, size >= 8 && &tail == MAGIC) {
        (false, false) => format!("not a Parquet file ({size} bytes without Parquet's PAR1 magic)"),
        (true, false) => format!(
            "truncated Parquet file: it has no footer ({size} bytes; was it cut short while \
             being written or copied?)"
        ),
        _ => format!("corrupt Parquet file: {message}"),
    }
}

/// The size and first and last four bytes of a file.
fn magic_bytes(path: &Path) -> std::io::Result<(u64, [u8; 4], [u8; 4])> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let (mut head, mut tail) = ([0; 4], [0; 4]);
    if size >= 8 {
        file.read_exact(&mut head)?;
        file.seek(SeekFrom::End(-4))?;
        file.read_exact(&mut tail)?;
    }
    Ok((size, head, tail))
}

/// The first line of a newline-delimited JSON file that is not valid JSON.
fn first_invalid_json_line(path: &Path) -> Option<(usize, String)> {
    use std::io::BufRead;
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    file.lines()
        .enumerate()
        .map_while(|(i, line)| line.ok().map(|line| (i, line)))
        .filter(|(_, line)| !line.trim().is_empty())
        .find_map(|(i, line)| {
            serde_json::from_str::<serde_json::Value>(&line)
                .err()
                .map(|e| {
                    // serde_json counts lines within the one line it was given.
                    let text = e.to_string();
                    let reason = text.split(" at line ").next().unwrap_or(&text);
                    (i + 1, format!("column {}: {reason}", e.column()))
                })
        })
}

/// The reader's message without the `Arrow error: Csv error:` layers.
fn strip_layers(text: &str) -> String {
    const LAYERS: &[&str] = &[
        "External error: ",
        "Arrow error: ",
        "Parquet error: ",
        "Csv error: ",
        "Json error: ",
        "Parser error: ",
        "Parquet argument error: ",
        "External: ",
    ];
    let mut rest = one_line(text);
    while let Some(layer) = LAYERS.iter().find(|l| rest.starts_with(**l)) {
        rest = rest[layer.len()..].to_string();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_errors_are_recognised_locally_and_from_a_cluster() {
        assert!(is_reader_error(
            "Parquet error: Parquet error: Invalid Parquet file. Corrupt footer"
        ));
        assert!(is_reader_error(
            "Job 1 failed: DataFusionError(Shared(External(ArrowError(CsvError(\"incorrect number of fields\")))))"
        ));
        assert!(!is_reader_error("table 'x' not found"));
    }

    #[test]
    fn layers_are_stripped() {
        assert_eq!(
            strip_layers("Arrow error: Csv error: Encountered unequal lengths"),
            "Encountered unequal lengths"
        );
    }

    #[test]
    fn parquet_problems_are_told_apart_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("g.parquet");
        std::fs::write(&garbage, b"hello, not parquet").unwrap();
        assert!(describe_parquet_problem(&garbage, "x").starts_with("not a Parquet file"));
        let cut = dir.path().join("c.parquet");
        std::fs::write(&cut, b"PAR1 some pages and no footer").unwrap();
        assert!(describe_parquet_problem(&cut, "x").starts_with("truncated Parquet file"));
        let whole = dir.path().join("w.parquet");
        std::fs::write(&whole, b"PAR1 bad footer PAR1").unwrap();
        assert_eq!(
            describe_parquet_problem(&whole, "bad thrift"),
            "corrupt Parquet file: bad thrift"
        );
    }

    #[test]
    fn the_first_broken_json_line_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, "{\"a\":1}\n\n{\"a\":\n{\"a\":3}\n").unwrap();
        let (line, reason) = first_invalid_json_line(&path).unwrap();
        assert_eq!(line, 3);
        assert_eq!(reason, "column 5: EOF while parsing a value");
    }
}
