//! Turning what a query writes as the model (`'churn'`, `'models/churn.json'`,
//! `'s3://bucket/churn.ubj'`) into a location every process can read.
//!
//! A registered name (`SET ember.models.churn = '...'`) wins; otherwise a
//! string with a scheme (`s3://`, `file://`) is used as is, and anything else is
//! a local path, made absolute on the client so executors started in other
//! directories read the same file.

use std::path::Path;

use datafusion::common::{Result, plan_err};

use crate::config::{EmberConfig, ModelNames};

/// Where a model is read from: a URI with a scheme (`file:///abs/path`, `s3://b/k`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelLocation(pub String);

impl std::fmt::Display for ModelLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves the model argument of `function` against the session's options.
pub fn resolve(function: &str, reference: &str, config: &EmberConfig) -> Result<ModelLocation> {
    let reference = reference.trim();
    if reference.is_empty() {
        return plan_err!(
            "{function}: the model argument is empty; give a path, a URI or a registered model name"
        );
    }
    if let Some(uri) = config.models.get(reference) {
        return location_of(function, uri, Some(reference));
    }
    if ModelNames::is_valid_name(reference) && !Path::new(reference).exists() {
        let known: Vec<&str> = config.models.0.keys().map(String::as_str).collect();
        return plan_err!(
            "{function}: model '{reference}' is neither a file nor a registered model name (registered: {}); register it with SET ember.models.{reference} = '<path or s3:// URI>'",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    location_of(function, reference, None)
}

fn location_of(function: &str, uri: &str, name: Option<&str>) -> Result<ModelLocation> {
    if let Some((scheme, _)) = uri.split_once("://") {
        return match scheme {
            "s3" | "file" => Ok(ModelLocation(uri.to_string())),
            other => plan_err!(
                "{function}: model URI '{uri}' has scheme '{other}'; Ember reads models from local paths, file:// and s3://"
            ),
        };
    }
    let path = Path::new(uri);
    match std::path::absolute(path) {
        Ok(absolute) => Ok(ModelLocation(format!("file://{}", absolute.display()))),
        Err(e) => match name {
            Some(name) => plan_err!(
                "{function}: model '{name}' points to '{uri}', which is not a usable path: {e}"
            ),
            None => plan_err!("{function}: model path '{uri}' is not usable: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_name_wins_and_relative_paths_become_absolute() {
        let mut config = EmberConfig::default();
        config
            .models
            .0
            .insert("churn".into(), "s3://models/churn.json".into());
        assert_eq!(
            resolve("predict", "CHURN", &config).unwrap().0,
            "s3://models/churn.json"
        );
        let local = resolve("predict", "models/m.json", &config).unwrap().0;
        assert!(
            local.starts_with("file:///") && local.ends_with("/models/m.json"),
            "{local}"
        );
    }

    #[test]
    fn an_unknown_name_says_how_to_register_it() {
        let err = resolve("predict", "churn_v2", &EmberConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("SET ember.models.churn_v2"), "{err}");
    }

    #[test]
    fn an_unsupported_scheme_is_named() {
        let err = resolve("predict", "gs://b/m.json", &EmberConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'gs'"), "{err}");
    }
}
