//! The process-wide model cache.
//!
//! Every process that plans or runs a scoring query (client, scheduler,
//! executor) keeps each model it has parsed, keyed by location *and* content
//! identity (the SHA-256 of the file). Planning reads the file, so a nightly
//! job always scores with the model file as it is when the query is planned;
//! the plan then carries the location and the identity, and an executor parses
//! the model the first time a task needs it and reuses it for every later batch
//! and task. If the file changed between planning and execution, the executor
//! refuses to score with the new content rather than mixing models in one job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use sha2::{Digest, Sha256};

use super::model::{Model, ModelError};
use super::model_ref::ModelLocation;
use super::model_store;

type Key = (ModelLocation, String);

static CACHE: LazyLock<Mutex<HashMap<Key, Arc<Model>>>> = LazyLock::new(Default::default);
/// Serialises loads so concurrent tasks that need the same model parse it once.
static LOADING: Mutex<()> = Mutex::new(());
static PARSES: AtomicU64 = AtomicU64::new(0);

/// How many model files this process has parsed (for tests and metrics).
pub fn parse_count() -> u64 {
    PARSES.load(Ordering::Relaxed)
}

/// The content identity of model bytes: `sha256:<hex>`.
pub fn content_id(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut id = String::with_capacity(7 + 64);
    id.push_str("sha256:");
    for byte in digest {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

fn cached(key: &Key) -> Option<Arc<Model>> {
    CACHE.lock().ok()?.get(key).cloned()
}

fn parse_and_insert(key: Key, bytes: &[u8]) -> Result<Arc<Model>, ModelError> {
    let model = Arc::new(Model::from_bytes(&display_name(&key.0), bytes)?);
    PARSES.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key, Arc::clone(&model));
    }
    Ok(model)
}

/// The name used in messages: the path for local files, the URI otherwise.
fn display_name(location: &ModelLocation) -> String {
    location
        .0
        .strip_prefix("file://")
        .unwrap_or(&location.0)
        .to_string()
}

/// Loads the model as it is now (used while planning): reads the file, and
/// parses it unless this content was parsed before.
pub fn load_current(location: &ModelLocation) -> Result<(Arc<Model>, String), ModelError> {
    let bytes = model_store::read(location)?;
    let id = content_id(&bytes);
    let key = (location.clone(), id.clone());
    if let Some(model) = cached(&key) {
        return Ok((model, id));
    }
    let _loading = LOADING.lock();
    if let Some(model) = cached(&key) {
        return Ok((model, id));
    }
    Ok((parse_and_insert(key, &bytes)?, id))
}

/// Loads the model a plan was made with (used by executors): from the cache,
/// or from storage, checking the content is still the one planned.
pub fn load_pinned(location: &ModelLocation, id: &str) -> Result<Arc<Model>, ModelError> {
    let key = (location.clone(), id.to_string());
    if let Some(model) = cached(&key) {
        return Ok(model);
    }
    let _loading = LOADING.lock();
    if let Some(model) = cached(&key) {
        return Ok(model);
    }
    let bytes = model_store::read(location)?;
    let found = content_id(&bytes);
    if found != id {
        return Err(ModelError::Read {
            file: display_name(location),
            reason: format!(
                "the file changed after the query was planned (planned with {id}, found {found}); re-run the query"
            ),
        });
    }
    parse_and_insert(key, &bytes)
}
