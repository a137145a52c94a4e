//! Tree jobs: one Ballista job grows one tree of `ember train` on a cluster.
//!
//! A level query per tree level (`__ember_gbdt_level`) costs a Ballista job
//! of two stages plus the driver's round trip, about 30 ms of fixed cost per
//! level on a small cluster — more than the level's arithmetic. A tree job
//! is one job with one stage per level: the tasks of a stage sum their
//! partitions' histograms and send them to *every* task of the next stage
//! through an ordinary hash shuffle (each message is addressed to one
//! partition: an all-reduce), and every task merges them and picks the same
//! splits ([`ember_udfs::training::distributed::gbdt_tree_step`] has the
//! arithmetic and why it is exact). The last stage returns the tree.
//!
//! The pieces, in the order a job meets them:
//! - [`TreeJobTable`]: what the driver scans. It travels to the scheduler
//!   in the logical plan (Ember's logical codec), and its scan is a
//!   [`TreeJobExec`] over the binned table's row keys.
//! - [`ExpandTreeJobs`]: a physical optimizer rule, run after DataFusion's,
//!   that replaces the [`TreeJobExec`] with the chain of
//!   [`TreeLevelExec`]s and hash `RepartitionExec`s that Ballista cuts into
//!   stages. After DataFusion's rules, because `EnforceDistribution` removes
//!   and re-adds repartitions by its own reckoning.
//! - [`TreeLevelExec`]: one level on one partition; travels to executors
//!   through Ember's physical codec. Ballista re-runs DataFusion's
//!   `EnsureRequirements` on every stage it cuts; a `TreeLevelExec` requires
//!   no distribution and does not benefit from more partitions, so nothing
//!   is added above its input (no round-robin repartition, no re-split scan).
//!
//! Ballista's adaptive planner (off in Ember, see `crate::config`) plans
//! stages with its own rules and would leave the placeholder unexpanded:
//! the job then fails, and the driver grows its trees with level queries.
//! So does a binned table of more than [`expand::MAX_PARTITIONS`]
//! partitions.

mod exec;
pub mod expand;
mod table;

pub use exec::{TreeJobExec, TreeLevel, TreeLevelExec, job_result};
pub use expand::ExpandTreeJobs;
pub use table::TreeJobTable;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Column of a tree job's messages naming the partition they go to.
pub const DEST: &str = "dest";
/// Column of a tree job's messages holding a `StepMessage`'s bytes.
pub const PAYLOAD: &str = "payload";

/// The schema of every stage's output and of the job's result.
pub fn message_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(DEST, DataType::UInt64, false),
        Field::new(PAYLOAD, DataType::LargeBinary, false),
    ]))
}
