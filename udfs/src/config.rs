//! The `ember.*` session options.
//!
//! They live next to the functions because functions read them while they
//! run, on whichever executor runs the task (`ScalarFunctionArgs::config_options`).
//! `ember-core` registers [`EmberConfig`] on the client, the scheduler and every
//! executor: Ballista forwards a session's options to each task as key/value
//! pairs and silently drops keys whose namespace a process has not registered,
//! so an option that is not registered everywhere would quietly take its default
//! on the executors.

use std::any::Any;
use std::fmt::Display;

use datafusion::common::config_namespace;
use datafusion::config::{
    ConfigEntry, ConfigExtension, ConfigField, ConfigOptions, ExtensionOptions, Visit,
};
use datafusion::error::Result;

config_namespace! {
    /// Options of the feature-engineering functions (`ember.features.*`).
    pub struct FeatureOptions {
        /// Buckets used by `feature_hash(value)` when no bucket count is given.
        /// The default, 2^20, is scikit-learn's `FeatureHasher` default.
        pub hash_buckets: usize, default = 1 << 20
    }
}

config_namespace! {
    /// Options of writes made by `COPY ... TO` and `ember sql --output` (`ember.write.*`).
    pub struct WriteOptions {
        /// Write to a temporary sibling of the target and rename it into place when the
        /// job succeeds, so the target appears complete or not at all.
        pub atomic: bool, default = true
        /// Write a directory target from the tasks that compute the rows, one file or more
        /// per partition, instead of gathering every row into one writer (an extra stage
        /// that shuffles the whole output). Single-file targets and `ORDER BY` writes always
        /// use one writer.
        pub parallel: bool, default = true
        /// Write a Parquet column without a dictionary when the first rows a writer sees
        /// are nearly all distinct (at least 63/64 of at least 1,024 values), instead of
        /// interning every value until the dictionary overflows. Applies to parallel
        /// writes; columns with their own `dictionary_enabled::col` option keep it.
        pub adaptive_dictionary: bool, default = true
    }
}

config_namespace! {
    /// Ember's session options, set with `SET ember.<group>.<key> = value`.
    pub struct EmberConfig {
        /// Feature-engineering options.
        pub features: FeatureOptions, default = FeatureOptions::default()
        /// Output options.
        pub write: WriteOptions, default = WriteOptions::default()
        /// Models registered by name: `SET ember.models.churn = 's3://models/churn.json'`
        /// lets queries call `predict('churn', ...)`.
        pub models: ModelNames, default = ModelNames::default()
    }
}

/// Model names registered in a session (`ember.models.<name> = <uri>`).
///
/// Names are case-insensitive (stored lower-case) and made of letters, digits,
/// `_` and `-`. The map travels with the session's options to the scheduler and
/// every executor, like any other `ember.*` option.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelNames(pub std::collections::BTreeMap<String, String>);

impl ModelNames {
    /// The URI registered under `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// Whether `name` can be registered as a model name.
    pub fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }
}

impl ConfigField for ModelNames {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, _description: &'static str) {
        for (name, uri) in &self.0 {
            v.some(&format!("{key}.{name}"), uri, "a model registered by name");
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if !Self::is_valid_name(key) {
            return Err(datafusion::error::DataFusionError::Configuration(format!(
                "ember.models.<name>: '{key}' is not a valid model name (use letters, digits, '_' and '-'), e.g. SET ember.models.churn = 's3://bucket/churn.json'"
            )));
        }
        let value = value.trim();
        if value.is_empty() {
            self.0.remove(&key.to_ascii_lowercase());
        } else {
            self.0.insert(key.to_ascii_lowercase(), value.to_string());
        }
        Ok(())
    }
}

/// Written by hand rather than with `extensions_options!`, whose `entries()`
/// leave out the `ember.` prefix: Ballista ships a session's options to the
/// scheduler and executors as the keys `entries()` returns, and a key without
/// its prefix would be dropped there.
impl ExtensionOptions for EmberConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        ConfigField::set(self, key, value)
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        struct Entries(Vec<ConfigEntry>);
        impl Visit for Entries {
            fn some<V: Display>(&mut self, key: &str, value: V, description: &'static str) {
                self.0.push(ConfigEntry {
                    key: key.to_string(),
                    value: Some(value.to_string()),
                    description,
                });
            }

            fn none(&mut self, key: &str, description: &'static str) {
                self.0.push(ConfigEntry {
                    key: key.to_string(),
                    value: None,
                    description,
                });
            }
        }
        let mut entries = Entries(Vec::new());
        self.visit(&mut entries, Self::PREFIX, "");
        entries.0
    }
}

impl ConfigExtension for EmberConfig {
    const PREFIX: &'static str = "ember";
}

impl EmberConfig {
    /// The Ember options in `options`, or the defaults when the session has none.
    pub fn from_options(options: &ConfigOptions) -> EmberConfig {
        options
            .extensions
            .get::<EmberConfig>()
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionConfig;

    #[test]
    fn options_are_set_by_their_full_key() {
        let mut config = SessionConfig::new().with_option_extension(EmberConfig::default());
        config
            .options_mut()
            .set("ember.features.hash_buckets", "16")
            .unwrap();
        config
            .options_mut()
            .set("ember.write.atomic", "false")
            .unwrap();
        let ember = EmberConfig::from_options(config.options());
        assert_eq!(ember.features.hash_buckets, 16);
        assert!(!ember.write.atomic);
    }

    #[test]
    fn models_are_registered_by_name_and_listed_with_their_full_key() {
        let mut config = SessionConfig::new().with_option_extension(EmberConfig::default());
        config
            .options_mut()
            .set("ember.models.Churn", "s3://models/churn.json")
            .unwrap();
        let ember = EmberConfig::from_options(config.options());
        assert_eq!(ember.models.get("churn"), Some("s3://models/churn.json"));
        let keys: Vec<String> = config
            .options()
            .entries()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert!(keys.contains(&"ember.models.churn".to_string()), "{keys:?}");
        let err = config
            .options_mut()
            .set("ember.models.bad name", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad name"), "{err}");
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let mut config = SessionConfig::new().with_option_extension(EmberConfig::default());
        let err = config
            .options_mut()
            .set("ember.features.hash_bukets", "16")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hash_bukets"), "{err}");
    }

    #[test]
    fn every_option_is_listed_with_its_full_key() {
        let config = SessionConfig::new().with_option_extension(EmberConfig::default());
        let keys: Vec<String> = config
            .options()
            .entries()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert!(
            keys.contains(&"ember.features.hash_buckets".to_string()),
            "{keys:?}"
        );
        assert!(keys.contains(&"ember.write.atomic".to_string()), "{keys:?}");
    }
}
