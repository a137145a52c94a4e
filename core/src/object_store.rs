//! Where Ember reads and writes data: local files, and S3 from the standard
//! AWS environment.
//!
//! Every role resolves `s3://bucket/...` the same way, from
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`/`AWS_DEFAULT_REGION` and `AWS_ENDPOINT` (for S3-compatible
//! stores), as read by `object_store`'s `AmazonS3Builder::from_env`. So a
//! cluster is configured for S3 the way every AWS tool is, with no key in a
//! query or a config file. A store is built once per bucket and reused.
//!
//! With data roots (see [`crate::data_roots`]), every store handed out only
//! serves paths under them.

use std::sync::Arc;

use datafusion::common::exec_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use url::Url;

use crate::data_roots::{DataRoots, RootedStore};

/// The object-store registry every Ember role uses.
#[derive(Debug, Default)]
pub struct EmberObjectStoreRegistry {
    known: DefaultObjectStoreRegistry,
    roots: Option<Arc<DataRoots>>,
}

impl EmberObjectStoreRegistry {
    /// A registry with the local file system registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry whose stores serve only paths under `roots`.
    pub fn with_roots(roots: Arc<DataRoots>) -> Self {
        Self {
            known: DefaultObjectStoreRegistry::default(),
            roots: Some(roots),
        }
    }

    fn limited(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        match &self.roots {
            Some(roots) => Arc::new(RootedStore::new(store, url, Arc::clone(roots))),
            None => store,
        }
    }

    fn s3_from_env(url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let store = AmazonS3Builder::from_env()
            .with_url(url.as_str())
            .build()
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "cannot open {}://{}: {e} (S3 is configured from the AWS_* environment variables)",
                    url.scheme(),
                    url.host_str().unwrap_or_default()
                ))
            })?;
        Ok(Arc::new(store))
    }
}

impl ObjectStoreRegistry for EmberObjectStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(self.limited(url, store));
        }
        match url.scheme() {
            "s3" | "s3a" => {
                let store = Self::s3_from_env(url)?;
                self.known.register_store(url, Arc::clone(&store));
                Ok(self.limited(url, store))
            }
            other => exec_err!(
                "no object store for '{url}': scheme '{other}' is not supported \
                 (Ember reads local paths, file:// and s3://)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_are_known() {
        let registry = EmberObjectStoreRegistry::new();
        assert!(
            registry
                .get_store(&Url::parse("file:///tmp/x").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn s3_buckets_get_a_store_from_the_environment() {
        let registry = EmberObjectStoreRegistry::new();
        let store = registry.get_store(&Url::parse("s3://some-bucket/data/x.parquet").unwrap());
        assert!(store.is_ok(), "{store:?}");
        assert!(format!("{:?}", store.unwrap()).contains("some-bucket"));
    }

    #[test]
    fn unknown_schemes_are_named_in_the_error() {
        let registry = EmberObjectStoreRegistry::new();
        let err = registry
            .get_store(&Url::parse("hdfs://nn/data").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("hdfs"), "{err}");
    }
}
