//! [`TreeJobTable`]: the table a driver scans to run a tree job.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use ember_udfs::training::distributed::gbdt_row_key::is_row_key_type;
use ember_udfs::training::distributed::gbdt_tree_step::TreeJobPlan;
use serde::{Deserialize, Serialize};

use super::exec::{TreeJob, TreeJobExec};
use super::message_schema;

/// The row-key column of the binned table (see `gbdt_row_key`).
pub const ROW_KEY: &str = "__key";

/// One tree of a training run over the binned table at `location` (a
/// directory of Parquet files every executor can read). Scanning it runs
/// the tree job; its rows are the job's messages ([`super::job_result`]
/// reads the tree from them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeJobTable {
    /// The driver's [`TreeJobPlan`] as JSON.
    pub plan: String,
    /// The binned table's directory, as registered for the level queries.
    pub location: String,
}

impl TreeJobTable {
    /// A tree job; the plan is checked here, so that a bad one fails on the
    /// driver with its reason.
    pub fn try_new(plan: String, location: String) -> Result<Self> {
        TreeJobPlan::parse(&plan).map_err(|e| DataFusionError::Plan(e.to_string()))?;
        Ok(Self { plan, location })
    }

    /// The binned table's row keys, listed as `CREATE EXTERNAL TABLE ...
    /// STORED AS PARQUET LOCATION` lists them for the level queries (the
    /// same files and batches).
    async fn row_keys(&self, state: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(session) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("a tree job is planned in a DataFusion SessionState");
        };
        let Some(parquet) = session.get_file_format_factory("parquet") else {
            return plan_err!("a tree job needs the Parquet file format");
        };
        let format = parquet.create(session, &HashMap::new())?;
        let mut url = ListingTableUrl::parse(&self.location)?;
        let extension = if url.is_collection() {
            String::new()
        } else {
            format.get_ext()
        };
        if url.is_folder() && url.get_glob().is_none() {
            url = url.with_glob("*.parquet")?;
        }
        let options = ListingOptions::new(format).with_file_extension(extension);
        let written = options.infer_schema(state, &url).await?;
        let Ok(key) = written.field_with_name(ROW_KEY) else {
            return plan_err!(
                "the binned table at {} has no {ROW_KEY} column",
                self.location
            );
        };
        if !is_row_key_type(key.data_type()) {
            return plan_err!("the binned table's {ROW_KEY} column is not a row key");
        }
        let schema = Arc::new(Schema::new(vec![key.clone()]));
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config)?;
        table.scan(state, None, &[], None).await
    }
}

#[async_trait]
impl TableProvider for TreeJobTable {
    fn schema(&self) -> SchemaRef {
        message_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if projection.is_some_and(|p| *p != [0, 1]) {
            return plan_err!("a tree job's result is read whole");
        }
        let job = TreeJob::parse(self.plan.clone())?;
        let keys = self.row_keys(state).await?;
        Ok(Arc::new(TreeJobExec::new(Arc::new(job), keys)))
    }
}
