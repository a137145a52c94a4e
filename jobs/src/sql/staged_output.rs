//! Outputs that appear complete or not at all.
//!
//! Executors write a job's files one partition at a time, and a job can fail
//! (or be killed) half-way. Readers must never see that half. So Ember points
//! every write (`COPY ... TO`, `ember sql --output`, pipeline outputs) at a
//! hidden staging sibling of the target, and only when the job has succeeded
//! moves the staging output over the target: a directory `rename`, atomic on
//! one file system, after moving any previous output aside. A failed job's
//! staging output is deleted, and the previous target is left as it was.
//!
//! The staging name keeps the target's shape, because DataFusion decides from
//! the path whether a `COPY` writes one file (`out.parquet`) or a directory of
//! part files (`out/`, `out`).
//!
//! Local paths only: the target must be on a file system shared by the client
//! and the executors (the same machine, or a network mount). Object-store URLs
//! (`s3://`) are written in place, since object stores have no atomic rename.

use std::path::{Path, PathBuf};

use crate::error::{JobsError, Result};

const STAGING_MARK: &str = ".ember-staging-";
const PREVIOUS_MARK: &str = ".ember-previous-";

/// A write target and its staging sibling.
#[derive(Debug)]
pub struct StagedOutput {
    target: PathBuf,
    staging: PathBuf,
    single_file: bool,
}

impl StagedOutput {
    /// Stages a write to `target` (a path or `file://` URL), or returns `None`
    /// for targets that cannot be staged (object-store URLs). Relative paths
    /// are resolved against the current directory, as the user meant them,
    /// not against an executor's.
    pub fn new(target: &str) -> Result<Option<Self>> {
        let Some(path) = local_path(target) else {
            return Ok(None);
        };
        let single_file = !target.ends_with('/') && path.extension().is_some();
        let absolute = std::path::absolute(&path).map_err(|e| JobsError::io(&path, e))?;
        let name = absolute
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| JobsError::Usage(format!("'{target}' names no file or directory")))?;
        let parent = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&parent).map_err(|e| JobsError::io(&parent, e))?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let staging_name = match (single_file, absolute.extension()) {
            (true, Some(ext)) => format!(".{name}{STAGING_MARK}{token}.{}", ext.to_string_lossy()),
            _ => format!(".{name}{STAGING_MARK}{token}"),
        };
        Ok(Some(Self {
            staging: parent.join(staging_name),
            target: absolute,
            single_file,
        }))
    }

    /// Where the job should write: a file path, or a directory path ending in `/`.
    pub fn staging_location(&self) -> String {
        let path = self.staging.to_string_lossy().to_string();
        if self.single_file {
            path
        } else {
            format!("{path}/")
        }
    }

    /// Creates the staging directory if the job wrote nothing (a query with
    /// no rows may write no file), so it can be read as an empty table.
    pub fn ensure_exists(&self) -> Result<()> {
        if !self.single_file && !self.staging.exists() {
            std::fs::create_dir_all(&self.staging).map_err(|e| JobsError::io(&self.staging, e))?;
        }
        Ok(())
    }

    /// The final location.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the staged output over the target. The previous target, if
    /// any, is moved aside first and removed once the new output is in place;
    /// if the final rename fails, it is put back.
    pub fn commit(self) -> Result<()> {
        if !self.staging.exists() {
            // A job with no rows may write no file at all: the target then
            // becomes an empty directory (or is left absent for a single file).
            if self.single_file {
                return Ok(());
            }
            std::fs::create_dir_all(&self.staging).map_err(|e| JobsError::io(&self.staging, e))?;
        }
        let previous = self.target.exists().then(|| self.sibling(PREVIOUS_MARK));
        if let Some(previous) = &previous {
            std::fs::rename(&self.target, previous).map_err(|e| JobsError::io(&self.target, e))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            if let Some(previous) = &previous {
                // Best effort: restore what was there before.
                let _ = std::fs::rename(previous, &self.target);
            }
            return Err(JobsError::io(&self.target, e));
        }
        if let Some(previous) = previous {
            remove_any(&previous).map_err(|e| JobsError::io(&previous, e))?;
        }
        Ok(())
    }

    /// Deletes whatever the failed job staged.
    pub fn abort(self) {
        if self.staging.exists()
            && let Err(e) = remove_any(&self.staging)
        {
            tracing::warn!(
                "cannot remove staging output {}: {e}",
                self.staging.display()
            );
        }
    }

    fn sibling(&self, mark: &str) -> PathBuf {
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.target.with_file_name(format!(".{name}{mark}{token}"))
    }
}

/// The local path a target names, or `None` for an object-store URL.
fn local_path(target: &str) -> Option<PathBuf> {
    if let Some(rest) = target.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    match target.split_once("://") {
        Some(_) => None,
        None => Some(PathBuf::from(target)),
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_targets_stage_to_a_hidden_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("scores");
        let staged = StagedOutput::new(target.to_str().unwrap())
            .unwrap()
            .unwrap();
        let location = staged.staging_location();
        assert!(location.ends_with('/'), "{location}");
        assert!(location.contains("/.scores.ember-staging-"), "{location}");

        std::fs::create_dir_all(&location).unwrap();
        std::fs::write(format!("{location}part-0.parquet"), b"new").unwrap();
        staged.commit().unwrap();
        assert_eq!(
            std::fs::read(target.join("part-0.parquet")).unwrap(),
            b"new"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staging left"
        );
    }

    #[test]
    fn file_targets_keep_their_extension() {
        let staged = StagedOutput::new("/tmp/x/result.parquet").unwrap().unwrap();
        let location = staged.staging_location();
        assert!(
            location.ends_with(".parquet") && !location.ends_with('/'),
            "{location}"
        );
    }

    #[test]
    fn commit_replaces_previous_output_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old-0.parquet"), b"old").unwrap();
        std::fs::write(target.join("old-1.parquet"), b"old").unwrap();

        let staged = StagedOutput::new(target.to_str().unwrap())
            .unwrap()
            .unwrap();
        std::fs::create_dir_all(staged.staging_location()).unwrap();
        std::fs::write(
            format!("{}new-0.parquet", staged.staging_location()),
            b"new",
        )
        .unwrap();
        staged.commit().unwrap();

        let names: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["new-0.parquet"]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abort_leaves_the_previous_output_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("good.parquet"), b"good").unwrap();

        let staged = StagedOutput::new(target.to_str().unwrap())
            .unwrap()
            .unwrap();
        std::fs::create_dir_all(staged.staging_location()).unwrap();
        std::fs::write(
            format!("{}half.parquet", staged.staging_location()),
            b"half",
        )
        .unwrap();
        staged.abort();

        assert_eq!(std::fs::read(target.join("good.parquet")).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn object_store_urls_are_not_staged() {
        assert!(StagedOutput::new("s3://bucket/out/").unwrap().is_none());
        assert!(StagedOutput::new("file:///tmp/out/").unwrap().is_some());
    }
}
