//! Session state, runtime and producers for each role.
//!
//! Ballista asks each process for a few factories: the scheduler for a
//! [`SessionBuilder`] (config to session state, used to plan each job) and a
//! [`ConfigProducer`]; an executor for a [`ConfigProducer`], a
//! [`RuntimeProducer`] and a function registry. Ember's versions all come from
//! here and all share [`ember_session_config`], Ember's function registry and
//! one object-store registry per process.

use std::sync::{Arc, OnceLock};

use ballista_core::extension::{
    ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_scheduler::SessionBuilder;
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

use crate::access::ClusterAccess;
use crate::config::ember_session_config;
use crate::cooperative::YieldingJoinsAndUnnests;
use crate::data_roots::DataRoots;
use crate::error::{EmberError, Result};
use crate::object_store::EmberObjectStoreRegistry;
use crate::parallel_write::ParallelFileWrites;
use crate::registry::register_ember_functions;
use crate::write_options::ResolveWriteOptions;

static STORES: OnceLock<Arc<EmberObjectStoreRegistry>> = OnceLock::new();

/// The process's object-store registry: one per process, so a bucket's
/// client (and its connection pool) is built once.
fn shared_object_stores() -> Arc<EmberObjectStoreRegistry> {
    Arc::clone(STORES.get_or_init(|| Arc::new(EmberObjectStoreRegistry::new())))
}

/// Limits every session of this process to `roots` (`--data-root`). Call it
/// at start-up, before any session is built: afterwards it is an error, as
/// sessions already built would not be limited.
pub fn limit_to_data_roots(roots: DataRoots) -> Result<()> {
    let roots = Arc::new(roots);
    let guarded = Arc::clone(&roots);
    // Model files are read by the scoring functions directly, not through
    // object stores: they get the same limit.
    ember_udfs::scoring::model_store::guard_model_reads(Box::new(move |uri: &str| {
        guarded.check_model_uri(uri)
    }));
    STORES
        .set(Arc::new(EmberObjectStoreRegistry::with_roots(roots)))
        .map_err(|_| {
            EmberError::Config(
                "data roots must be set before the first session is built".to_string(),
            )
        })
}

/// A runtime with Ember's object stores; spills go to `spill_dir` when given
/// (an executor's work directory), else to the system temp directory.
pub fn ember_runtime_env(spill_dir: Option<&str>) -> DfResult<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(shared_object_stores());
    if let Some(dir) = spill_dir {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}

/// A session state with DataFusion's defaults, Ballista's functions and
/// optimizer rules, and Ember's functions. Used by the scheduler (to plan
/// jobs) and as the starting point of the client's state.
pub fn ember_session_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> DfResult<SessionState> {
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(ballista_scalar_functions())
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        // Last: cross joins and unnests yield to tokio, so that a cancelled
        // task stops on its executor (see `crate::cooperative`).
        .with_physical_optimizer_rule(Arc::new(YieldingJoinsAndUnnests))
        // Writes run where the rows are computed (see `crate::parallel_write`).
        .with_physical_optimizer_rule(Arc::new(ParallelFileWrites))
        // After DataFusion's rules, which would move its repartitions: a
        // tree job becomes its stages (see `crate::tree_job`).
        .with_physical_optimizer_rule(Arc::new(crate::tree_job::ExpandTreeJobs))
        .build();
    // Appended to DataFusion's analyzer rules: a write's options must be in
    // the plan before the client serializes it (see `crate::write_options`).
    state.add_analyzer_rule(Arc::new(ResolveWriteOptions));
    register_ember_functions(&mut state)?;
    Ok(state)
}

/// The config producer of every role: [`ember_session_config`], plus
/// `access` (token, TLS) on every connection a task opens (an executor's
/// shuffle reads from other executors).
pub fn ember_config_producer(access: &ClusterAccess) -> ConfigProducer {
    let access = access.clone();
    Arc::new(move || access.apply_to(ember_session_config()))
}

/// The scheduler's session builder. Each job gets a fresh runtime (so file
/// listings are never served stale from another job) over the process's
/// shared object stores.
pub fn scheduler_session_builder() -> Result<SessionBuilder> {
    Ok(Arc::new(|config: SessionConfig| {
        ember_session_state(config, ember_runtime_env(None)?)
    }))
}

/// An executor's runtime producer: Ember's object stores, spilling into the
/// executor's work directory.
pub fn executor_runtime_producer(work_dir: String) -> RuntimeProducer {
    Arc::new(move |_config: &SessionConfig| ember_runtime_env(Some(&work_dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scheduler_sessions_know_ember_functions_and_options() {
        let builder = scheduler_session_builder().unwrap();
        let mut config = ember_session_config();
        config
            .options_mut()
            .set("ember.features.hash_buckets", "16")
            .unwrap();
        let state = builder(config).unwrap();
        assert!(state.scalar_functions().contains_key("feature_hash"));
        assert!(state.scalar_functions().contains_key("abs"));
        let ctx = datafusion::prelude::SessionContext::new_with_state(state);
        let batches = ctx
            .sql("SELECT feature_hash('hello') AS b")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let b = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .unwrap()
            .value(0);
        assert_eq!(b, 7, "scikit-learn's bucket for 'hello' with 16 buckets");
    }
}
