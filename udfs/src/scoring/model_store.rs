//! Reading model bytes from local files and S3.
//!
//! Scoring functions run inside synchronous UDF calls, on whatever runtime the
//! caller uses; an S3 read therefore runs on a short-lived thread with its own
//! single-threaded Tokio runtime, which works whether or not the caller is
//! inside a runtime. This happens once per model per process (see
//! [`super::model_cache`]). S3 credentials and region come from the standard
//! `AWS_*` environment variables, as for Ember's table storage.

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;

use super::model::ModelError;
use super::model_ref::ModelLocation;

/// The largest model file Ember reads (2 GiB): a bound on what a mistaken path
/// (a device, a huge data file) can make the planner read.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

fn read_local(path: &str) -> std::io::Result<Result<Vec<u8>, String>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_MODEL_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Ok(Err(format!(
            "larger than {} GiB; not a model file?",
            MAX_MODEL_BYTES >> 30
        )));
    }
    Ok(Ok(bytes))
}

/// A check every model read passes first: the URI, or why it may not be read.
pub type ModelReadGuard = dyn Fn(&str) -> Result<(), String> + Send + Sync;

static READ_GUARD: std::sync::OnceLock<Box<ModelReadGuard>> = std::sync::OnceLock::new();

/// Makes every model read of this process pass `guard` first (a cluster
/// process limited to data roots installs one). Only the first call counts.
pub fn guard_model_reads(guard: Box<ModelReadGuard>) -> bool {
    READ_GUARD.set(guard).is_ok()
}

/// Reads the whole model file at `location`.
pub fn read(location: &ModelLocation) -> Result<Vec<u8>, ModelError> {
    let uri = location.0.as_str();
    let failed = |reason: String| ModelError::Read {
        file: uri.to_string(),
        reason,
    };
    if let Some(guard) = READ_GUARD.get() {
        guard(uri).map_err(failed)?;
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return read_local(path)
            .map_err(|e| failed(e.to_string()))?
            .map_err(failed);
    }
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| {
                failed("an S3 URI needs a bucket and a key: s3://bucket/key".to_string())
            })?;
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let fetch = move || -> Result<Vec<u8>, String> {
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let result = store
                    .get(&ObjectPath::from(key))
                    .await
                    .map_err(|e| e.to_string())?;
                if result.meta.size > MAX_MODEL_BYTES {
                    return Err(format!(
                        "larger than {} GiB; not a model file?",
                        MAX_MODEL_BYTES >> 30
                    ));
                }
                let bytes = result.bytes().await.map_err(|e| e.to_string())?;
                Ok(bytes.to_vec())
            })
        };
        return std::thread::scope(|scope| scope.spawn(fetch).join())
            .map_err(|_| failed("the S3 reader thread failed".to_string()))?
            .map_err(failed);
    }
    Err(failed(
        "unsupported location (expected file:// or s3://)".to_string(),
    ))
}
