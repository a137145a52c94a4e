//! Ember's session options and engine defaults.
//!
//! The `ember.*` namespace ([`EmberConfig`]) is defined in `ember-udfs`, next
//! to the functions that read it while they run; this module registers it and
//! chooses the DataFusion/Ballista defaults Ember runs with. Every role gets
//! its [`datafusion::prelude::SessionConfig`] from [`ember_session_config`], so
//! a key set on the client is understood by the scheduler and every executor.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::prelude::SessionConfig;

use crate::codec::{EmberLogicalCodec, EmberPhysicalCodec};

pub use ember_udfs::config::{EmberConfig, FeatureOptions, WriteOptions};

/// The session key of the Parquet compression of writes.
pub const PARQUET_COMPRESSION: &str = "datafusion.execution.parquet.compression";

/// Ember's default Parquet compression (see [`ember_session_config`]).
pub const DEFAULT_PARQUET_COMPRESSION: &str = "snappy";

/// Partitions a scan is split into when the session does not say otherwise.
///
/// Ballista's default (16) was chosen for large clusters; on a laptop or a
/// small cluster every partition is a task with a fixed scheduling cost, and
/// 16 tasks per stage on 2 cores costs more in scheduling than it gains. The
/// number of cores of the machine running the client is a better default; a
/// large cluster sets `datafusion.execution.target_partitions` explicitly.
pub fn default_target_partitions() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// The session config every Ember role starts from: Ballista's, with the
/// `ember.*` namespace registered, Ember's codecs, and Ember's defaults.
///
/// Ballista's adaptive query planner (AQE, `ballista.planner.adaptive.enabled`)
/// is off by default: in Ballista 55 it re-plans a stage of `SELECT 1 AS a
/// UNION ALL SELECT 2 ... ORDER BY a` into a plan its own sanity check
/// rejects (the exchange it inserts drops the per-branch constants but claims
/// to keep the order), and the scheduler only logs that error, so the job
/// never finishes. Users can turn it back on per session with `SET`.
///
/// Parquet is written with Snappy, as Spark does, not DataFusion's
/// `zstd(3)`: ML tables are mostly floats, which zstd barely shrinks (a
/// 10M-row × 20-feature scoring output: 1.6 GB either way) at about eight
/// times Snappy's CPU per byte. `SET datafusion.execution.parquet.compression
/// = 'zstd(3)'` (or `COPY ... OPTIONS ('format.compression' ...)`) chooses
/// otherwise.
pub fn ember_session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .set_str(PARQUET_COMPRESSION, DEFAULT_PARQUET_COMPRESSION)
        .with_ballista_adaptive_query_planner(false)
        .with_option_extension(EmberConfig::default())
        .with_information_schema(true)
        .with_target_partitions(default_target_partitions())
        .with_ballista_logical_extension_codec(Arc::new(EmberLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(EmberPhysicalCodec::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_planning_is_off_by_default() {
        assert!(!ember_session_config().ballista_adaptive_query_planner_enabled());
    }

    #[test]
    fn ember_and_ballista_options_are_both_registered() {
        let mut config = ember_session_config();
        config
            .options_mut()
            .set("ember.write.atomic", "false")
            .unwrap();
        config
            .options_mut()
            .set("ballista.job.name", "nightly")
            .unwrap();
        assert!(!EmberConfig::from_options(config.options()).write.atomic);
    }
}
