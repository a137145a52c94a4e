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
    }
}

config_namespace! {
    /// Ember's session options, set with `SET ember.<group>.<key> = value`.
    pub struct EmberConfig {
        /// Feature-engineering options.
        pub features: FeatureOptions, default = FeatureOptions::default()
        /// Output options.
        pub write: WriteOptions, default = WriteOptions::default()
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
