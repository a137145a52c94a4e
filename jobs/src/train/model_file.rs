//! Writing a model file so that it appears complete or not at all.

use std::path::Path;

use crate::error::{JobsError, Result};

/// Writes `text` to `path` through a hidden sibling and a rename: a reader
/// (a nightly scoring job) sees the old model or the new one, never half.
pub fn write_model_file(path: &Path, text: &str) -> Result<()> {
    let absolute = std::path::absolute(path).map_err(|e| JobsError::io(path, e))?;
    let parent = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&parent).map_err(|e| JobsError::io(&parent, e))?;
    let name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| {
            JobsError::Usage(format!("--model-out '{}' names no file", path.display()))
        })?;
    let staging = parent.join(format!(
        ".{name}.ember-staging-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&staging, text).map_err(|e| JobsError::io(&staging, e))?;
    std::fs::rename(&staging, &absolute).map_err(|e| {
        let _ = std::fs::remove_file(&staging);
        JobsError::io(&absolute, e)
    })
}
