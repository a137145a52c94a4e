//! Where the driver's queries run, and where the binned training table lives.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use ember_core::EmberContext;
use ember_core::config::ember_session_config;
use ember_core::session::{ember_runtime_env, ember_session_state};
use ember_core::tree_job::{TreeJobTable, job_result};
use ember_udfs::training::gbdt::tree::Tree;

use crate::error::{JobsError, Result};
use crate::train::{quote_ident, quote_literal};

/// The engine a training run queries.
pub enum TrainEngine {
    /// In this process: DataFusion with Ember's functions; tables in memory.
    Local(SessionContext),
    /// A Ballista cluster; intermediate tables are Parquet under `work_dir`.
    Cluster {
        /// The cluster session (boxed: it is much larger than a local one).
        ember: Box<EmberContext>,
        /// Where intermediate tables are written (shared by the executors).
        work_dir: PathBuf,
    },
}

impl TrainEngine {
    /// An in-process engine with Ember's session config and functions.
    pub fn local() -> Result<Self> {
        let state = ember_session_state(ember_session_config(), ember_runtime_env(None)?)?;
        Ok(TrainEngine::Local(SessionContext::new_with_state(state)))
    }

    /// The session queries are planned in.
    pub fn session(&self) -> &SessionContext {
        match self {
            TrainEngine::Local(ctx) => ctx,
            TrainEngine::Cluster { ember, .. } => ember.session(),
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            TrainEngine::Local(_) => "embedded".to_string(),
            TrainEngine::Cluster { ember, .. } => ember.target().describe(),
        }
    }

    /// Registers a Parquet file or directory as table `name`.
    pub async fn register_parquet(&self, name: &str, location: &str) -> Result<()> {
        let sql = format!(
            "CREATE EXTERNAL TABLE {} STORED AS PARQUET LOCATION {}",
            quote_ident(name),
            quote_literal(location)
        );
        self.session().sql(&sql).await?.collect().await?;
        Ok(())
    }

    /// Runs a query returning one row of one column and returns that value.
    pub async fn single_value(&self, sql: &str) -> Result<ScalarValue> {
        let batches = self.session().sql(sql).await?.collect().await?;
        let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| {
            JobsError::Usage("internal: a training query returned no rows".into())
        })?;
        Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
    }

    /// Runs `select` and registers its result as table `name` (in memory, or
    /// as Parquet under the work directory on a cluster).
    pub async fn materialize(&self, name: &str, select: &str) -> Result<()> {
        match self {
            TrainEngine::Local(ctx) => {
                let df = ctx.sql(select).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let partitions = df.collect_partitioned().await?;
                ctx.register_table(name, Arc::new(MemTable::try_new(schema, partitions)?))?;
            }
            TrainEngine::Cluster { ember, work_dir } => {
                let dir = work_dir.join(name);
                let location = format!("{}/", dir.display());
                // Read back by the training's level queries and then
                // deleted: no compression, dictionaries or statistics to
                // spend time on.
                let copy = format!(
                    "COPY ({select}) TO {} STORED AS PARQUET OPTIONS (\
                     'format.compression' 'uncompressed', \
                     'format.dictionary_enabled' 'false', \
                     'format.statistics_enabled' 'none')",
                    quote_literal(&location)
                );
                ember.session().sql(&copy).await?.collect().await?;
                self.register_parquet(name, &location).await?;
            }
        }
        Ok(())
    }

    /// Grows one tree in one Ballista job over the materialized table
    /// `binned` ([`ember_core::tree_job`]); `None` when some partition's
    /// rows were not kept where its task ran, or when this engine runs no
    /// tree jobs (embedded, a level query is cheap).
    pub async fn tree_job(&self, binned: &str, plan: String) -> Result<Option<Tree>> {
        let TrainEngine::Cluster { ember, work_dir } = self else {
            return Ok(None);
        };
        let location = format!("{}/", work_dir.join(binned).display());
        let table = TreeJobTable::try_new(plan, location)?;
        let batches = ember
            .session()
            .read_table(Arc::new(table))?
            .collect()
            .await?;
        Ok(job_result(&batches)?)
    }

    /// Whether [`Self::tree_job`] runs tree jobs.
    pub fn runs_tree_jobs(&self) -> bool {
        matches!(self, TrainEngine::Cluster { .. })
    }

    /// Drops a table made by [`Self::materialize`] and frees its storage.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        self.session().deregister_table(name)?;
        if let TrainEngine::Cluster { work_dir, .. } = self {
            let dir = work_dir.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| JobsError::io(&dir, e))?;
            }
        }
        Ok(())
    }
}
