//! The training fixtures of `udfs/tests/fixtures/training`, and copies of them
//! split into several Parquet files so a cluster reads them as several
//! partitions on several executors.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::data::write_parquet;
use crate::scoring_fixtures::read_parquet;

/// The training fixtures directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../udfs/tests/fixtures/training")
}

/// Writes fixture `name` (e.g. `gbdt_train`) as `parts` Parquet files under
/// `root/name/`; returns that directory.
pub fn split_input(name: &str, root: &Path, parts: usize) -> PathBuf {
    let batch: RecordBatch = read_parquet(&dir().join(format!("{name}.parquet")));
    let out = root.join(name);
    std::fs::create_dir_all(&out).expect("split dir");
    let rows = batch.num_rows();
    let per_part = rows.div_ceil(parts);
    for part in 0..parts {
        let start = part * per_part;
        let len = per_part.min(rows - start);
        write_parquet(
            &out.join(format!("part-{part}.parquet")),
            &batch.slice(start, len),
        );
    }
    out
}

/// A model file without the build's version stamp, for comparing models.
pub fn model_without_version(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut model: serde_json::Value = serde_json::from_str(&text).expect("model JSON");
    if let Some(attributes) = model["learner"]["attributes"].as_object_mut() {
        attributes.remove("ember_version");
    }
    model
}

/// [`model_without_version`] with every number that is not an integer as
/// the `f32` XGBoost reads from it: how to compare a model with the
/// committed `gbdt_ember.json`, which has each `f32` in 17 digits (Ember
/// wrote models that way before it wrote the shortest digits of the `f32`;
/// `udfs/tests/training.rs` compares the same way).
pub fn model_numbers_as_f32(path: &Path) -> serde_json::Value {
    fn as_f32(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Number(n) if n.is_f64() => n
                .as_f64()
                .map(|x| serde_json::json!(f64::from(x as f32)))
                .unwrap_or(Value::Number(n)),
            Value::Array(items) => Value::Array(items.into_iter().map(as_f32).collect()),
            Value::Object(fields) => {
                Value::Object(fields.into_iter().map(|(k, v)| (k, as_f32(v))).collect())
            }
            other => other,
        }
    }
    as_f32(model_without_version(path))
}
