//! TPC-H data as Parquet, generated in-process with `tpchgen`.
//!
//! Each table is a directory of Parquet files (`lineitem/part-1.parquet`,
//! ...), several per table, so that a scan has several partitions to split
//! across executors. `nation` and `region` are one file each. Strings are
//! written as `Utf8` rather than `tpchgen-arrow`'s `Utf8View`: Ballista
//! disables view types for Arrow Flight, and a file's embedded Arrow schema
//! would bring them back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The eight TPC-H tables.
pub const TPCH_TABLES: [&str; 8] = [
    "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
];

const BATCH_ROWS: usize = 8192;
const COMPLETE_MARK: &str = "_EMBER_TPCH_COMPLETE";

/// Why data could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Arrow or Parquet failed.
    #[error("{path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Bad parameters.
    #[error("{0}")]
    Invalid(String),
}

/// Generates TPC-H at `scale_factor` into `dir/<table>/part-N.parquet`, with
/// `files` files for each table except `nation` and `region`.
pub fn generate(scale_factor: f64, dir: &Path, files: usize) -> Result<(), GenerateError> {
    if scale_factor.is_nan() || scale_factor <= 0.0 || files == 0 {
        return Err(GenerateError::Invalid(format!(
            "scale factor must be > 0 and files >= 1 (got {scale_factor}, {files})"
        )));
    }
    let parts = i32::try_from(files)
        .map_err(|_| GenerateError::Invalid(format!("too many files: {files}")))?;
    for table in TPCH_TABLES {
        let table_dir = dir.join(table);
        std::fs::create_dir_all(&table_dir).map_err(|source| GenerateError::Io {
            path: table_dir.clone(),
            source,
        })?;
        let table_parts = if matches!(table, "nation" | "region") {
            1
        } else {
            parts
        };
        for part in 1..=table_parts {
            let path = table_dir.join(format!("part-{part}.parquet"));
            let batches = table_batches(table, scale_factor, part, table_parts);
            write_parquet(&path, batches)?;
        }
    }
    Ok(())
}

/// Like [`generate`], but reuses `dir` when a previous call completed it, so
/// repeated test runs generate once. Safe when several threads or processes
/// ask at once: each generates into a private sibling directory and renames
/// it into place; a loser of the race discards its copy and uses the winner's.
/// `dir` is therefore never seen half-written.
pub fn generate_cached(
    scale_factor: f64,
    dir: &Path,
    files: usize,
) -> Result<PathBuf, GenerateError> {
    let expected = format!("sf={scale_factor} files={files}");
    let is_complete =
        |d: &Path| std::fs::read_to_string(d.join(COMPLETE_MARK)).is_ok_and(|m| m == expected);
    if is_complete(dir) {
        return Ok(dir.to_path_buf());
    }
    let io = |path: &Path, source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parent = dir.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let thread = format!("{:?}", std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let private = parent.join(format!(
        ".{name}.generating-{}-{thread}",
        std::process::id()
    ));
    if private.exists() {
        std::fs::remove_dir_all(&private).map_err(|e| io(&private, e))?;
    }
    generate(scale_factor, &private, files)?;
    std::fs::write(private.join(COMPLETE_MARK), &expected).map_err(|e| io(&private, e))?;
    if dir.exists() && !is_complete(dir) {
        // An incomplete or different data set: replace it.
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    match std::fs::rename(&private, dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(_) if is_complete(dir) => {
            // Another generator finished first; use its data.
            std::fs::remove_dir_all(&private).map_err(|e| io(&private, e))?;
            Ok(dir.to_path_buf())
        }
        Err(e) => Err(io(dir, e)),
    }
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>;

fn table_batches(table: &str, sf: f64, part: i32, parts: i32) -> Batches {
    fn boxed<I: Iterator<Item = Result<RecordBatch, ArrowError>> + 'static>(iter: I) -> Batches {
        Box::new(iter)
    }
    match table {
        "customer" => boxed(
            CustomerArrow::new(CustomerGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "lineitem" => boxed(
            LineItemArrow::new(LineItemGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "nation" => boxed(
            NationArrow::new(NationGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "orders" => {
            boxed(OrderArrow::new(OrderGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS))
        }
        "part" => {
            boxed(PartArrow::new(PartGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS))
        }
        "partsupp" => boxed(
            PartSuppArrow::new(PartSuppGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "region" => boxed(
            RegionArrow::new(RegionGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "supplier" => boxed(
            SupplierArrow::new(SupplierGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        other => Box::new(std::iter::once(Err(ArrowError::InvalidArgumentError(
            format!("unknown TPC-H table {other}"),
        )))),
    }
}

/// The schema with every `Utf8View` field as `Utf8`.
fn without_views(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn to_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

fn write_parquet(path: &Path, batches: Batches) -> Result<(), GenerateError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| GenerateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut schema: Option<SchemaRef> = None;
    for batch in batches {
        let batch = batch.map_err(|e| err(Box::new(e)))?;
        let target = schema
            .get_or_insert_with(|| without_views(&batch.schema()))
            .clone();
        let batch = to_schema(&batch, &target).map_err(|e| err(Box::new(e)))?;
        if writer.is_none() {
            let file = File::create(path).map_err(|source| GenerateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            writer = Some(
                ArrowWriter::try_new(file, target, Some(props)).map_err(|e| err(Box::new(e)))?,
            );
        }
        if let Some(w) = writer.as_mut() {
            w.write(&batch).map_err(|e| err(Box::new(e)))?;
        }
    }
    match writer {
        Some(w) => w.close().map(|_| ()).map_err(|e| err(Box::new(e))),
        None => Err(GenerateError::Invalid(format!(
            "{}: no rows generated",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_table_in_several_files() {
        let dir = tempfile::tempdir().unwrap();
        generate(0.001, dir.path(), 3).unwrap();
        for table in TPCH_TABLES {
            let files = std::fs::read_dir(dir.path().join(table)).unwrap().count();
            let expected = if matches!(table, "nation" | "region") {
                1
            } else {
                3
            };
            assert_eq!(files, expected, "{table}");
        }
    }

    #[test]
    fn cached_generation_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sf");
        generate_cached(0.001, &data, 2).unwrap();
        let stamp = std::fs::metadata(data.join("lineitem/part-1.parquet"))
            .unwrap()
            .modified()
            .unwrap();
        generate_cached(0.001, &data, 2).unwrap();
        let again = std::fs::metadata(data.join("lineitem/part-1.parquet"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(stamp, again);
    }

    #[test]
    fn concurrent_generation_never_exposes_partial_data() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sf");
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let data = data.clone();
                std::thread::spawn(move || generate_cached(0.001, &data, 2).unwrap())
            })
            .collect();
        for t in threads {
            let dir = t.join().unwrap();
            assert_eq!(std::fs::read_dir(dir.join("lineitem")).unwrap().count(), 2);
        }
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "private copies must be removed");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(generate(0.0, dir.path(), 2).is_err());
        assert!(generate(0.01, dir.path(), 0).is_err());
    }
}
