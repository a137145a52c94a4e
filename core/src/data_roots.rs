//! Data roots: the only places a scheduler or executor reads or writes
//! user data.
//!
//! A cluster runs SQL from its users, and SQL names paths: without a limit,
//! `CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'` reads any
//! file the executor's user can read, and `COPY ... TO` writes anywhere it
//! can write. Started with `--data-root DIR` (or `s3://bucket/prefix`, any
//! number of times), a process serves only paths under those roots; anything
//! else is refused with an error naming the path and the roots.
//!
//! The check sits in the object store every role reads and writes through
//! ([`RootedStore`] wraps each store the registry hands out), so it holds for
//! listings, scans, writes, copies and renames alike, on the scheduler (which
//! lists files while planning) and on executors. Local paths are resolved
//! first: `..` segments and symbolic links are followed to where they really
//! lead, so neither can step outside a root. Shuffle files and spills live in
//! the executor's work directory and do not go through object stores.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use url::Url;

use crate::error::{EmberError, Result};

/// Where a process may read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoots {
    /// Local directories, resolved (absolute, no links).
    local: Vec<PathBuf>,
    /// Object-store prefixes: scheme, bucket and key prefix.
    remote: Vec<Url>,
}

impl DataRoots {
    /// Parses roots as given on the command line: local directories (which
    /// must exist) or `s3://bucket[/prefix]`.
    pub fn parse(values: &[String]) -> Result<Self> {
        let mut roots = DataRoots {
            local: vec![],
            remote: vec![],
        };
        for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            match Url::parse(value) {
                Ok(url) if url.scheme() != "file" && url.scheme().len() > 1 => {
                    if url.host_str().is_none_or(str::is_empty) {
                        return Err(EmberError::Config(format!(
                            "--data-root {value}: an object-store root names a bucket, e.g. s3://bucket/prefix"
                        )));
                    }
                    roots.remote.push(url);
                }
                _ => {
                    let path = value.strip_prefix("file://").unwrap_or(value);
                    let resolved = std::fs::canonicalize(path).map_err(|e| {
                        EmberError::Config(format!(
                            "--data-root {value}: {e} (a local root must be an existing directory)"
                        ))
                    })?;
                    roots.local.push(resolved);
                }
            }
        }
        if roots.local.is_empty() && roots.remote.is_empty() {
            return Err(EmberError::Config("--data-root: no root given".to_string()));
        }
        Ok(roots)
    }

    /// Whether `location` in the store at `store` (scheme and bucket) lies
    /// under a root; the error says why not.
    pub fn check(&self, store: &Url, location: &Path) -> std::result::Result<(), String> {
        if store.scheme() == "file" {
            let wanted = local_path(location);
            let resolved = resolve(&wanted);
            if self.local.iter().any(|root| resolved.starts_with(root)) {
                return Ok(());
            }
            let through = if resolved != wanted {
                format!(" (it resolves to {})", resolved.display())
            } else {
                String::new()
            };
            return Err(format!(
                "{}{through} is outside this cluster's data roots ({}); ask its operator to add a --data-root",
                wanted.display(),
                self.describe()
            ));
        }
        let key = location.as_ref();
        let allowed = self.remote.iter().any(|root| {
            root.scheme() == store.scheme()
                && root.host_str() == store.host_str()
                && under_prefix(key, root.path().trim_matches('/'))
        });
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "{}://{}/{key} is outside this cluster's data roots ({}); ask its operator to add a --data-root",
                store.scheme(),
                store.host_str().unwrap_or_default(),
                self.describe()
            ))
        }
    }

    /// Whether the model file at `uri` (`file:///...` or `s3://bucket/key`)
    /// lies under a root and, when local, is a regular file (not a device).
    pub fn check_model_uri(&self, uri: &str) -> std::result::Result<(), String> {
        if let Some(path) = uri.strip_prefix("file://") {
            let resolved = resolve(FsPath::new(path));
            if !self.local.iter().any(|root| resolved.starts_with(root)) {
                return Err(format!(
                    "{path} is outside this cluster's data roots ({}); ask its operator to add a --data-root",
                    self.describe()
                ));
            }
            return match std::fs::metadata(&resolved) {
                Ok(meta) if !meta.is_file() => Err(format!("{path} is not a regular file")),
                _ => Ok(()),
            };
        }
        let url = Url::parse(uri).map_err(|e| format!("{uri}: {e}"))?;
        let mut store = url.clone();
        store.set_path("");
        self.check(&store, &Path::from(url.path().trim_start_matches('/')))
    }

    /// The roots as a user would list them.
    pub fn describe(&self) -> String {
        self.local
            .iter()
            .map(|p| p.display().to_string())
            .chain(self.remote.iter().map(Url::to_string))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The file a local store's `location` names, computed exactly as the local
/// store computes it (a URL parser would read a `%2E%2E` segment as `..`,
/// which the store writes as a literal directory name).
fn local_path(location: &Path) -> PathBuf {
    object_store::local::LocalFileSystem::new()
        .path_to_filesystem(location)
        .unwrap_or_else(|_| PathBuf::from(format!("/{location}")))
}

/// Where `path` really leads: its longest existing ancestor with links and
/// `..` resolved, then the rest (which does not exist yet, as when writing).
fn resolve(path: &FsPath) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = vec![];
    loop {
        if let Ok(resolved) = std::fs::canonicalize(&existing) {
            let mut out = resolved;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalise(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return normalise(path),
        }
    }
}

/// Removes `.` and `..` lexically (for the part of a path that does not exist).
fn normalise(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn under_prefix(key: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An object store that serves only paths under the data roots.
#[derive(Debug)]
pub struct RootedStore {
    inner: Arc<dyn ObjectStore>,
    store: Url,
    roots: Arc<DataRoots>,
}

impl RootedStore {
    /// Wraps `inner`, the store for `store` (scheme and bucket).
    pub fn new(inner: Arc<dyn ObjectStore>, store: &Url, roots: Arc<DataRoots>) -> Self {
        let mut store = store.clone();
        store.set_path("");
        Self {
            inner,
            store,
            roots,
        }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        self.roots.check(&self.store, location).map_err(|reason| {
            object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: reason.into(),
            }
        })
    }

    fn check_prefix(&self, prefix: Option<&Path>) -> object_store::Result<()> {
        self.check(prefix.unwrap_or(&Path::from("")))
    }
}

impl fmt::Display for RootedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (limited to {})", self.inner, self.roots.describe())
    }
}

#[async_trait]
impl ObjectStore for RootedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let roots = Arc::clone(&self.roots);
        let store = self.store.clone();
        let checked = locations
            .map(move |location| {
                let location = location?;
                roots.check(&store, &location).map_err(|reason| {
                    object_store::Error::PermissionDenied {
                        path: location.to_string(),
                        source: reason.into(),
                    }
                })?;
                Ok(location)
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.check_prefix(prefix) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.check_prefix(prefix) {
            Ok(()) => self.inner.list_with_offset(prefix, offset),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check_prefix(prefix)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_store() -> Url {
        Url::parse("file:///").unwrap()
    }

    fn location(path: &FsPath) -> Path {
        // As DataFusion names a local file: not resolved.
        Path::from(path.to_string_lossy().trim_start_matches('/'))
    }

    #[test]
    fn local_paths_must_lie_under_a_root_after_resolving_links_and_dots() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        let secret = dir.path().join("secret");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("key.csv"), "a\n1\n").unwrap();
        std::fs::write(allowed.join("ok.csv"), "a\n1\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(secret.join("key.csv"), allowed.join("link.csv")).unwrap();
        let roots = DataRoots::parse(&[allowed.display().to_string()]).unwrap();

        assert!(
            roots
                .check(&file_store(), &location(&allowed.join("ok.csv")))
                .is_ok()
        );
        assert!(
            roots
                .check(&file_store(), &location(&allowed.join("new/out.parquet")))
                .is_ok()
        );
        let err = roots
            .check(&file_store(), &Path::from("etc/passwd"))
            .unwrap_err();
        assert!(
            err.contains("/etc/passwd") && err.contains("outside"),
            "{err}"
        );
        // A segment spelled `%2E%2E` is a literal directory name to the local
        // store: the check must see the same path the store writes.
        let encoded = Path::parse(format!(
            "{}/%2E%2E/out.csv",
            secret.display().to_string().trim_start_matches('/')
        ))
        .unwrap();
        assert!(roots.check(&file_store(), &encoded).is_err(), "{encoded}");
        let sneaky = Path::parse(format!(
            "tmp/%2E%2E/{}/x.csv",
            allowed.display().to_string().trim_start_matches('/')
        ))
        .unwrap();
        assert!(roots.check(&file_store(), &sneaky).is_err(), "{sneaky}");
        assert!(roots.check_model_uri("file:///etc/passwd").is_err());
        assert!(
            roots
                .check_model_uri(&format!("file://{}/ok.csv", allowed.display()))
                .is_ok()
        );
        let dotted = Path::from(format!(
            "{}/../secret/key.csv",
            allowed.display().to_string().trim_start_matches('/')
        ));
        // `Path::from` escapes `..` into a literal `%2E%2E` directory name,
        // which lies inside the root; a real `..` is resolved before it gets
        // here (tests/tests/data_roots.rs checks that end to end).
        assert!(roots.check(&file_store(), &dotted).is_ok(), "{dotted}");
        #[cfg(unix)]
        {
            let err = roots
                .check(&file_store(), &location(&allowed.join("link.csv")))
                .unwrap_err();
            assert!(err.contains("resolves to"), "{err}");
        }
    }

    #[test]
    fn bucket_roots_match_whole_segments() {
        let roots = DataRoots::parse(&["s3://lake/features".to_string()]).unwrap();
        let lake = Url::parse("s3://lake").unwrap();
        assert!(
            roots
                .check(&lake, &Path::from("features/day=1/x.parquet"))
                .is_ok()
        );
        assert!(
            roots
                .check(&lake, &Path::from("features-private/x.parquet"))
                .is_err()
        );
        assert!(
            roots
                .check(
                    &Url::parse("s3://other").unwrap(),
                    &Path::from("features/x")
                )
                .is_err()
        );
    }

    #[test]
    fn bad_roots_are_named() {
        let err = DataRoots::parse(&["/no/such/dir/anywhere".to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/dir/anywhere"), "{err}");
        assert!(DataRoots::parse(&[]).is_err());
    }
}
