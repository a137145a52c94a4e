//! The plan nodes of a tree job: the placeholder a scan returns, and one
//! level of the tree.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, LargeBinaryArray, RecordBatch, UInt64Array};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{SchemaRef, UInt64Type};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, internal_err};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    ReplaceChildrenOptions,
};
use ember_udfs::training::distributed::gbdt_row_key::{key_at, row_keys};
use ember_udfs::training::distributed::gbdt_tree_step::{
    self, BatchKeys, StageInputs, StepMessage, TreeJobPlan,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::message_schema;

fn properties(partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(message_schema()),
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

fn one_child(name: &str, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
    match <[_; 1]>::try_from(children) {
        Ok([child]) => Ok(child),
        Err(children) => internal_err!("{name} has one child, got {}", children.len()),
    }
}

fn train_error(e: ember_udfs::training::error::TrainError) -> DataFusionError {
    DataFusionError::Execution(e.to_string())
}

/// A tree job before [`super::ExpandTreeJobs`] turns it into levels: the
/// driver's plan over the binned table's row keys. Never executed.
#[derive(Debug)]
pub struct TreeJobExec {
    job: Arc<TreeJob>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

/// What [`super::ExpandTreeJobs`] needs of the driver's plan, read once
/// when the job is planned.
#[derive(Debug)]
pub struct TreeJob {
    /// The driver's [`TreeJobPlan`] as JSON (the first stage's tasks read it).
    pub plan: String,
    /// The training run.
    pub run: String,
    /// The boosting round.
    pub round: u32,
    /// Stages of the job (the plan's depth + 1).
    pub stages: usize,
}

impl TreeJob {
    /// The job of the driver's plan `text`, checked.
    pub fn parse(text: String) -> Result<Self> {
        let plan = TreeJobPlan::parse(&text).map_err(|e| DataFusionError::Plan(e.to_string()))?;
        Ok(Self {
            run: plan.run.clone(),
            round: plan.round,
            stages: plan.stages(),
            plan: text,
        })
    }
}

impl TreeJobExec {
    /// A tree job over `input`, the row keys of the binned table.
    pub fn new(job: Arc<TreeJob>, input: Arc<dyn ExecutionPlan>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        Self {
            job,
            input,
            properties: properties(partitions),
        }
    }

    /// The job.
    pub fn job(&self) -> &TreeJob {
        &self.job
    }

    /// The binned table's scan.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for TreeJobExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TreeJobExec: stages={}", self.job.stages)
    }
}

impl ExecutionPlan for TreeJobExec {
    fn name(&self) -> &'static str {
        "TreeJobExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // As an aggregate does: the scan is then split as the level
        // queries' scans are (same session settings), so batches kept by
        // level queries are found; if not, the job finds them missing.
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = one_child("TreeJobExec", children)?;
        Ok(Arc::new(Self::new(Arc::clone(&self.job), input)))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = one_child("TreeJobExec", children)?;
        Ok(Arc::new(Self::new(Arc::clone(&self.job), input)))
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        internal_err!(
            "TreeJobExec runs only on a Ballista cluster, expanded by Ember's ExpandTreeJobs rule"
        )
    }
}

/// One level of a tree job, as it travels to executors (JSON in Ember's
/// physical codec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeLevel {
    /// The training run.
    pub run: String,
    /// The boosting round.
    pub round: u32,
    /// The level: 0 sums the root's histograms over the binned table's
    /// partitions; level `d` grows depth `d - 1` of the tree and sums the
    /// next one.
    pub depth: usize,
    /// Whether this is the job's last stage (it returns the tree).
    pub last: bool,
    /// Each partition's name ([`partition_name`] of its files), by the
    /// partition's index.
    pub names: Vec<String>,
    /// The `dest` value whose hash sends a message to each partition.
    pub dest_keys: Vec<u64>,
    /// The driver's plan as JSON (level 0 only).
    pub plan: Option<String>,
}

/// The name of a file scan's partition: its files and byte ranges. A
/// tree job's tasks find what the previous stage kept for their partition
/// under this name.
pub fn partition_name(config: &FileScanConfig, partition: usize) -> Option<String> {
    let group = config.file_groups.get(partition)?;
    let files: Vec<String> = group
        .files()
        .iter()
        .map(|f| match &f.range {
            Some(range) => format!("{}@{}-{}", f.object_meta.location, range.start, range.end),
            None => f.object_meta.location.to_string(),
        })
        .collect();
    Some(files.join(","))
}

/// The file scan under `plan`, a `DataSourceExec` reading files.
pub fn file_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    plan.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()
}

/// One level of a tree job on each partition (see the module docs).
#[derive(Debug)]
pub struct TreeLevelExec {
    level: Arc<TreeLevel>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl TreeLevelExec {
    /// The level over `input`: the binned table's row keys at level 0, the
    /// previous level's messages (hash-partitioned by `dest`) after it.
    pub fn new(level: TreeLevel, input: Arc<dyn ExecutionPlan>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        Self {
            level: Arc::new(level),
            input,
            properties: properties(partitions),
        }
    }

    /// What the level is.
    pub fn level(&self) -> &TreeLevel {
        &self.level
    }
}

impl DisplayAs for TreeLevelExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "TreeLevelExec: round={} depth={} partitions={}{}",
            self.level.round,
            self.level.depth,
            self.level.names.len(),
            if self.level.last { " last" } else { "" }
        )
    }
}

impl ExecutionPlan for TreeLevelExec {
    fn name(&self) -> &'static str {
        "TreeLevelExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // Each task must see exactly its partition's input.
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = one_child("TreeLevelExec", children)?;
        Ok(Arc::new(Self::new(self.level.as_ref().clone(), input)))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = one_child("TreeLevelExec", children)?;
        Ok(Arc::new(Self::new(self.level.as_ref().clone(), input)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let level = Arc::clone(&self.level);
        let input = Arc::clone(&self.input);
        let stream = futures::stream::once(async move {
            let (message, to) = if level.depth == 0 {
                (root(&level, &input, partition, context).await?, None)
            } else {
                let (message, q) = later(&level, &input, partition, context).await?;
                (message, Some(q))
            };
            messages(&level, &message, to)
        })
        .flat_map(|batches| {
            futures::stream::iter(match batches {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            })
        })
        .boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            message_schema(),
            stream,
        )))
    }
}

/// Level 0 on the binned table's partition `partition` (of this task's
/// restricted plan).
async fn root(
    level: &TreeLevel,
    input: &Arc<dyn ExecutionPlan>,
    partition: usize,
    context: Arc<TaskContext>,
) -> Result<StepMessage> {
    let Some(text) = &level.plan else {
        return internal_err!("TreeLevelExec: level 0 without the driver's plan");
    };
    let plan = TreeJobPlan::parse(text).map_err(train_error)?;
    let Some(name) = file_scan(input).and_then(|scan| partition_name(scan, partition)) else {
        return internal_err!("TreeLevelExec: level 0 reads no file partition {partition}");
    };
    let held = match gbdt_tree_step::held_partition(&plan.run, &name) {
        Some(held) => Some(held),
        None => {
            // First tree job of the run here: find the batches level
            // queries kept, by the row keys of the partition.
            let mut keys = Vec::new();
            let mut stream = input.execute(partition, context)?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let len = batch.num_rows();
                if len == 0 {
                    continue;
                }
                let Some(column) = row_keys(batch.column(0).as_ref()) else {
                    return exec_err!(
                        "TreeLevelExec: a null or mistyped row key in the binned table"
                    );
                };
                keys.push(BatchKeys {
                    first: key_at(column, 0),
                    last: key_at(column, len - 1),
                    len,
                });
            }
            let found = gbdt_tree_step::partition_from_keys(&plan.run, &name, &keys);
            if found.is_none() {
                let rows = keys.iter().map(|k| k.len as u64).sum();
                return Ok(StepMessage::Missing(rows));
            }
            found
        }
    };
    let Some(held) = held else {
        return Ok(StepMessage::Missing(0));
    };
    let message = gbdt_tree_step::start_tree(&plan, &held).map_err(train_error)?;
    if matches!(message, StepMessage::Missing(_)) {
        // Rows behind what the plan can bring up to date: the next job
        // makes the partition again from the batches level queries rebuild
        // (where those run; elsewhere it misses again, and after three
        // misses in a row the driver stops trying tree jobs).
        gbdt_tree_step::forget_partition(&plan.run, &name);
    }
    Ok(message)
}

/// A later level on the task's partition of the previous level's messages;
/// returns the message and the partition's index.
async fn later(
    level: &TreeLevel,
    input: &Arc<dyn ExecutionPlan>,
    partition: usize,
    context: Arc<TaskContext>,
) -> Result<(StepMessage, usize)> {
    let mut stream = input.execute(partition, context)?;
    let mut inputs = StageInputs::new(level.round, level.depth);
    let mut to: Option<u64> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let (Some(dest), Some(payload)) = (
            batch.column(0).as_primitive_opt::<UInt64Type>(),
            batch.column(1).as_binary_opt::<i64>(),
        ) else {
            return internal_err!("TreeLevelExec: messages of the wrong types");
        };
        for (d, bytes) in dest.iter().zip(payload.iter()) {
            let (Some(d), Some(bytes)) = (d, bytes) else {
                return internal_err!("TreeLevelExec: a null message");
            };
            if *to.get_or_insert(d) != d {
                return internal_err!(
                    "TreeLevelExec: one task received messages for two partitions"
                );
            }
            inputs
                .add(StepMessage::from_bytes(bytes).map_err(train_error)?)
                .map_err(train_error)?;
        }
    }
    let Some(q) = to.and_then(|to| level.dest_keys.iter().position(|k| *k == to)) else {
        return internal_err!(
            "TreeLevelExec: level {} received no message it could place",
            level.depth
        );
    };
    let Some(name) = level.names.get(q) else {
        return internal_err!("TreeLevelExec: no partition {q}");
    };
    // One message from every partition of the previous level: a lost or
    // repeated one would change the sums, so it is an error, not a tree.
    if inputs.count() != level.names.len() {
        return internal_err!(
            "TreeLevelExec: level {} of round {} received {} messages from {} partitions",
            level.depth,
            level.round,
            inputs.count(),
            level.names.len()
        );
    }
    let message = gbdt_tree_step::continue_tree(&level.run, name, inputs).map_err(train_error)?;
    Ok((message, q))
}

/// The level's output: the message to every partition, or, at the last
/// level, once (addressed to this task's partition `to`). One batch per
/// message, all sharing one buffer of bytes. Ballista's shuffle copies them
/// (its writer encodes each destination's batches, its reader joins a
/// partition's batches), so a task holds its partitions × one message at
/// each end; 64-bit offsets let that pass 2 GiB.
fn messages(
    level: &TreeLevel,
    message: &StepMessage,
    to: Option<usize>,
) -> Result<Vec<RecordBatch>> {
    let bytes = message.to_bytes().map_err(train_error)?;
    let len = bytes.len() as i64;
    let dests: Vec<u64> = match (level.last, to) {
        (true, Some(q)) => vec![level.dest_keys[q]],
        (true, None) => return internal_err!("TreeLevelExec: level 0 cannot be the last"),
        (false, _) => level.dest_keys.clone(),
    };
    let values = Buffer::from_vec(bytes);
    dests
        .into_iter()
        .map(|dest| {
            let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0, len]));
            let payload = LargeBinaryArray::try_new(offsets, values.clone(), None)?;
            let columns: Vec<ArrayRef> =
                vec![Arc::new(UInt64Array::from(vec![dest])), Arc::new(payload)];
            Ok(RecordBatch::try_new(
                message_schema() as SchemaRef,
                columns,
            )?)
        })
        .collect()
}

/// The trees in a tree job's result: the tree, or `None` when a partition's
/// rows were missing where its task ran.
pub fn job_result(
    batches: &[RecordBatch],
) -> Result<Option<ember_udfs::training::gbdt::tree::Tree>> {
    let mut tree = None;
    let mut missing = false;
    for batch in batches {
        let Some(payload) = batch.column(1).as_binary_opt::<i64>() else {
            return internal_err!("a tree job's result is not binary");
        };
        for bytes in payload.iter().flatten() {
            match StepMessage::from_bytes(bytes).map_err(train_error)? {
                StepMessage::Finished(t) => match &tree {
                    Some(seen) if *seen != t => {
                        return internal_err!("a tree job's partitions returned different trees");
                    }
                    _ => tree = Some(t),
                },
                StepMessage::Missing(_) => missing = true,
                StepMessage::Histograms(_) => {
                    return internal_err!("a tree job ended with histograms, not a tree");
                }
            }
        }
    }
    if missing {
        return Ok(None);
    }
    match tree {
        Some(tree) => Ok(Some(tree)),
        None => internal_err!("a tree job returned no tree"),
    }
}
