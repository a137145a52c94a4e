//! File writes in parallel, where the rows are computed.
//!
//! DataFusion plans `COPY ... TO 'dir/'` (and `INSERT INTO` a listing table)
//! as a `DataSinkExec` that requires a single input partition: one writer
//! takes every row and splits them into files itself. On one machine that is
//! a merge of streams. Under Ballista the merge is a stage boundary: every
//! task of the stage that computes the rows writes all of them to shuffle
//! files, and one task of a second stage reads them all back and encodes the
//! output alone. For a scoring job that is the whole table written twice and
//! read once more than needed, with one core encoding Parquet while the
//! others wait.
//!
//! [`ParallelFileWrites`] rewrites `DataSinkExec(CoalescePartitionsExec(X))`
//! into `sum(count)` over [`PartitionedWriteExec`], which hands each
//! partition of `X` to the same sink in the task that computes it. Each
//! partition's write gets its own random file prefix from DataFusion's sink,
//! so the files of one write never collide, and the output directory holds
//! the same rows (in more files). Only appends to a directory are rewritten:
//! a single-file target, an ordered write (`ORDER BY`, which plans a merge,
//! not a coalesce) and overwrites keep DataFusion's single writer, and so
//! does every write after `SET ember.write.parallel = false`.
//!
//! A Parquet write through this node also chooses, once per partition (for
//! all the files that partition writes), which columns get a dictionary
//! ([`crate::dictionary_choice`]).
//!
//! The node travels to executors through Ember's physical codec
//! (`crate::codec`): it carries no state of its own, and its child is the
//! `DataSinkExec` that DataFusion's codec already serializes.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, plan_err};
use datafusion::datasource::file_format::csv::CsvSink;
use datafusion::datasource::file_format::json::JsonSink;
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::physical_plan::{FileSink, FileSinkConfig};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions, execute_input_stream,
};
use futures::StreamExt;

use crate::config::EmberConfig;
use crate::dictionary_choice;

/// Runs one write per input partition of a `DataSinkExec`'s input, each in
/// the task computing that partition; partition `i` yields one row: the
/// rows partition `i` wrote (`count`, `UInt64`).
///
/// Its child is the sink's input, not the `DataSinkExec`: a `DataSinkExec`
/// in the tree requires a single input partition, and Ballista re-runs
/// DataFusion's `EnsureRequirements` on every stage it cuts, which put a
/// `CoalescePartitionsExec` back under the sink and made the write one task
/// again (`survives_ballistas_stage_planning` checks it).
#[derive(Debug)]
pub struct PartitionedWriteExec {
    /// The `DataSinkExec` whose sink is used, over `input` (it is never
    /// executed itself, nor shown to optimizers).
    sink_exec: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl PartitionedWriteExec {
    /// Writes the input of `sink_exec`, which must be a `DataSinkExec`, one
    /// partition at a time through its sink.
    pub fn try_new(sink_exec: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let Some(sink) = sink_exec.downcast_ref::<DataSinkExec>() else {
            return internal_err!("PartitionedWriteExec wraps a DataSinkExec, got {sink_exec:?}");
        };
        let input = Arc::clone(sink.input());
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Self {
            sink_exec,
            input,
            properties: Arc::new(properties),
        })
    }

    /// The `DataSinkExec` over an empty input of the same schema: what
    /// Ember's codec serializes (the input travels as this node's child).
    pub fn sink_without_input(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let empty = Arc::new(EmptyExec::new(self.input.schema())) as Arc<dyn ExecutionPlan>;
        with_input(&self.sink_exec, empty)
    }
}

/// `sink_exec` (a `DataSinkExec`) over `input` instead of its own input.
fn with_input(
    sink_exec: &Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    Arc::clone(sink_exec).replace_children(
        vec![input],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// The schema of a sink's answer: the rows written.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl DisplayAs for PartitionedWriteExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PartitionedWriteExec: partitions={}, sink=",
            self.properties.output_partitioning().partition_count()
        )?;
        match self.sink_exec.downcast_ref::<DataSinkExec>() {
            Some(sink) => sink.sink().fmt_as(t, f),
            None => write!(f, "?"),
        }
    }
}

impl ExecutionPlan for PartitionedWriteExec {
    fn name(&self) -> &'static str {
        "PartitionedWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // One file per partition: more partitions only mean more files.
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
        match <[_; 1]>::try_from(children) {
            Ok([child]) => {
                let sink_exec = with_input(&self.sink_exec, child)?;
                Ok(Arc::new(Self::try_new(sink_exec)?))
            }
            Err(children) => {
                internal_err!("PartitionedWriteExec has one child, got {}", children.len())
            }
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(sink) = self.sink_exec.downcast_ref::<DataSinkExec>() else {
            return internal_err!("PartitionedWriteExec lost its DataSinkExec");
        };
        let data = execute_input_stream(
            Arc::clone(&self.input),
            Arc::clone(sink.sink().schema()),
            partition,
            Arc::clone(&context),
        )?;
        let sink_exec = Arc::clone(&self.sink_exec);
        let adaptive_dictionary = EmberConfig::from_options(context.session_config().options())
            .write
            .adaptive_dictionary;
        let stream = futures::stream::once(async move {
            let Some(sink) = sink_exec.downcast_ref::<DataSinkExec>() else {
                return internal_err!("PartitionedWriteExec lost its DataSinkExec");
            };
            let count = match sink.sink().downcast_ref::<ParquetSink>() {
                Some(parquet) if adaptive_dictionary => {
                    write_choosing_dictionaries(parquet, data, &context).await?
                }
                _ => sink.sink().write_all(data, &context).await?,
            };
            let rows = Arc::new(UInt64Array::from(vec![count])) as ArrayRef;
            Ok(RecordBatch::try_new(count_schema(), vec![rows])?)
        })
        .boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            stream,
        )))
    }
}

/// Writes `data` through `sink`, or through a copy of it with dictionaries
/// turned off for the columns whose first batch is nearly all distinct values
/// ([`dictionary_choice`]). The copy keeps the sink's file config (paths,
/// hive partition columns) and every other format option; it has no sorting
/// columns (a parallel write has no sort order, see the rule) and its own
/// metrics and record of written files, which nothing reads for this node.
async fn write_choosing_dictionaries(
    sink: &ParquetSink,
    data: SendableRecordBatchStream,
    context: &Arc<TaskContext>,
) -> Result<u64> {
    let schema = data.schema();
    // Fused: an empty partition's stream is not polled again after its end.
    let mut data = data.fuse();
    let first = data.next().await.transpose()?;
    let chosen = first.as_ref().and_then(|batch| {
        dictionary_choice::without_futile_dictionaries(sink.parquet_options(), batch)
    });
    let data: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(first.map(Ok)).chain(data),
    ));
    match chosen {
        Some(options) => {
            let chosen = ParquetSink::new(sink.config().clone(), options);
            DataSink::write_all(&chosen, data, context).await
        }
        None => DataSink::write_all(sink, data, context).await,
    }
}

/// The rule: see the module docs.
#[derive(Debug, Default)]
pub struct ParallelFileWrites;

/// The file sink config of `sink`, for the file sinks this rule knows.
fn file_sink_config(sink: &DataSinkExec) -> Option<&FileSinkConfig> {
    let sink = sink.sink();
    if let Some(s) = sink.downcast_ref::<ParquetSink>() {
        return Some(s.config());
    }
    if let Some(s) = sink.downcast_ref::<CsvSink>() {
        return Some(s.config());
    }
    sink.downcast_ref::<JsonSink>().map(|s| s.config())
}

/// Whether `config` appends files to a directory (so that writers with
/// their own file names can share it).
fn appends_to_a_directory(config: &FileSinkConfig) -> bool {
    let Some(path) = config.table_paths.first() else {
        return false;
    };
    config.insert_op == InsertOp::Append && !config.file_output_mode.single_file_output(path)
}

/// `sum(count)` over `partials`, named `count` like a sink's answer.
fn total_count(partials: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let input_schema = partials.schema();
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![Arc::new(Column::new("count", 0))])
        .schema(Arc::clone(&input_schema))
        .alias("count")
        .build()?;
    let merged = Arc::new(CoalescePartitionsExec::new(partials));
    Ok(Arc::new(AggregateExec::try_new(
        AggregateMode::Single,
        PhysicalGroupBy::new_single(vec![]),
        vec![Arc::new(sum)],
        vec![None],
        merged,
        input_schema,
    )?))
}

impl PhysicalOptimizerRule for ParallelFileWrites {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !EmberConfig::from_options(config).write.parallel {
            return Ok(plan);
        }
        let rewritten = plan.transform_up(|node| {
            let Some(sink) = node.downcast_ref::<DataSinkExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(merge) = sink.input().downcast_ref::<CoalescePartitionsExec>() else {
                return Ok(Transformed::no(node));
            };
            let parallel = merge.input().output_partitioning().partition_count() > 1
                && sink.sort_order().is_none()
                && merge.fetch().is_none()
                && file_sink_config(sink).is_some_and(appends_to_a_directory);
            if !parallel {
                return Ok(Transformed::no(node));
            }
            // The same sink, fed by the partitions themselves.
            let per_partition = with_input(&node, Arc::clone(merge.input()))?;
            let writes = Arc::new(PartitionedWriteExec::try_new(per_partition)?);
            Ok(Transformed::yes(total_count(writes)?))
        })?;
        Ok(rewritten.data)
    }

    fn name(&self) -> &str {
        "ParallelFileWrites"
    }

    fn schema_check(&self) -> bool {
        // The answer keeps its name and type; the sum is nullable where the
        // sink's count is not.
        false
    }
}

/// Rebuilds the node (Ember's codec) from its sink, decoded from the node's
/// bytes as a `DataSinkExec` over an empty input, and its decoded child.
pub fn decode(
    sink_without_input: Arc<dyn ExecutionPlan>,
    inputs: &[Arc<dyn ExecutionPlan>],
) -> Result<Arc<dyn ExecutionPlan>> {
    match inputs {
        [child] => {
            let sink_exec = with_input(&sink_without_input, Arc::clone(child))?;
            Ok(Arc::new(PartitionedWriteExec::try_new(sink_exec)?))
        }
        _ => plan_err!("PartitionedWriteExec has one input, got {}", inputs.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ember_session_config;
    use crate::session::{ember_runtime_env, ember_session_state};
    use datafusion::parquet::file::metadata::ColumnChunkMetaData;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    /// A session over three CSV files (three partitions) of 100 rows each.
    async fn three_files() -> (SessionContext, tempfile::TempDir) {
        csv_table(3, 100, ember_session_config().with_target_partitions(4)).await
    }

    /// A session with table `t (n, k)` over `files` CSV files of `rows` rows
    /// each: `n` counts from 0 across the files, `k` is the row's index mod 7.
    async fn csv_table(
        files: usize,
        rows: usize,
        config: datafusion::prelude::SessionConfig,
    ) -> (SessionContext, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input");
        std::fs::create_dir_all(&input).unwrap();
        for f in 0..files {
            let lines: String = (0..rows)
                .map(|i| format!("{},{}\n", f * rows + i, i % 7))
                .collect();
            std::fs::write(input.join(format!("part-{f}.csv")), format!("n,k\n{lines}")).unwrap();
        }
        let state = ember_session_state(config, ember_runtime_env(None).unwrap()).unwrap();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true')",
            input.display()
        ))
        .await
        .unwrap();
        (ctx, dir)
    }

    async fn plan_of(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    async fn count(ctx: &SessionContext, sql: &str) -> u64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        let counts = column.as_any().downcast_ref::<UInt64Array>().unwrap();
        counts.value(0)
    }

    #[tokio::test]
    async fn a_directory_copy_writes_each_partition_where_it_is_computed() {
        let (ctx, dir) = three_files().await;
        let out = dir.path().join("out");
        let copy = format!(
            "COPY (SELECT n, k * 2 AS k2 FROM t) TO '{}/' STORED AS PARQUET",
            out.display()
        );
        let plan = plan_of(&ctx, &copy).await;
        assert!(
            plan.contains("PartitionedWriteExec: partitions=3"),
            "{plan}"
        );
        assert_eq!(count(&ctx, &copy).await, 300);
        let files = std::fs::read_dir(&out).unwrap().count();
        assert_eq!(files, 3, "one file per partition");
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE o STORED AS PARQUET LOCATION '{}/'",
            out.display()
        ))
        .await
        .unwrap();
        let check = "SELECT count(*) AS c, sum(n) AS s, sum(k2) AS k FROM o";
        let expected = "SELECT count(*) AS c, sum(n) AS s, sum(k * 2) AS k FROM t";
        let got = ctx.sql(check).await.unwrap().collect().await.unwrap();
        let want = ctx.sql(expected).await.unwrap().collect().await.unwrap();
        assert_eq!(
            datafusion::arrow::util::pretty::pretty_format_batches(&got)
                .unwrap()
                .to_string(),
            datafusion::arrow::util::pretty::pretty_format_batches(&want)
                .unwrap()
                .to_string()
        );
    }

    #[tokio::test]
    async fn single_files_ordered_writes_and_the_switch_keep_one_writer() {
        let (ctx, dir) = three_files().await;
        let single = format!(
            "COPY (SELECT n FROM t) TO '{}' STORED AS PARQUET",
            dir.path().join("one.parquet").display()
        );
        let ordered = format!(
            "COPY (SELECT n FROM t ORDER BY n) TO '{}/' STORED AS PARQUET",
            dir.path().join("ordered").display()
        );
        for sql in [single, ordered] {
            let plan = plan_of(&ctx, &sql).await;
            assert!(!plan.contains("PartitionedWriteExec"), "{sql}: {plan}");
            assert_eq!(count(&ctx, &sql).await, 300, "{sql}");
        }
        let ordered_files = std::fs::read_dir(dir.path().join("ordered"))
            .unwrap()
            .count();
        assert_eq!(ordered_files, 1, "an ordered write stays one file");

        ctx.sql("SET ember.write.parallel = false").await.unwrap();
        let off = format!(
            "COPY (SELECT n FROM t) TO '{}/' STORED AS PARQUET",
            dir.path().join("off").display()
        );
        let plan = plan_of(&ctx, &off).await;
        assert!(!plan.contains("PartitionedWriteExec"), "{plan}");
        assert_eq!(count(&ctx, &off).await, 300);
    }

    /// The first row group's column chunks of each Parquet file in `dir`, files by name.
    fn column_chunks(dir: &std::path::Path) -> Vec<Vec<ColumnChunkMetaData>> {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let chunks = |path: &std::path::PathBuf| {
            let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
            reader.metadata().row_group(0).columns().to_vec()
        };
        files.iter().map(chunks).collect()
    }

    /// Whether each column of each Parquet file in `dir` has a dictionary page,
    /// as `(column, dictionary)` for every file.
    fn dictionary_pages(dir: &std::path::Path) -> Vec<Vec<(String, bool)>> {
        let pages = |c: &ColumnChunkMetaData| {
            (
                c.column_path().string(),
                c.dictionary_page_offset().is_some(),
            )
        };
        column_chunks(dir)
            .iter()
            .map(|file| file.iter().map(pages).collect())
            .collect()
    }

    /// The compression codec of column `column` in each Parquet file in `dir`.
    fn column_codecs(dir: &std::path::Path, column: usize) -> Vec<String> {
        let codec = |file: &Vec<ColumnChunkMetaData>| format!("{:?}", file[column].compression());
        column_chunks(dir).iter().map(codec).collect()
    }

    #[tokio::test]
    async fn parallel_parquet_writes_skip_dictionaries_of_distinct_columns() {
        // Two batches per partition: the first is peeked, then written once with the rest
        // (DataFusion spreads a writer's batches over files: one file per batch here).
        let config = ember_session_config()
            .with_target_partitions(2)
            .with_batch_size(1500);
        let (ctx, dir) = csv_table(2, 3000, config).await;
        let copy = |to: &str, options: &str| {
            format!(
                "COPY (SELECT n, CAST(n AS DOUBLE) / 3 AS x, k FROM t) TO '{}/' STORED AS PARQUET {options}",
                dir.path().join(to).display()
            )
        };
        let expect = |dictionaries: [bool; 3]| {
            let columns = ["n", "x", "k"].iter().map(|c| c.to_string());
            columns.zip(dictionaries).collect::<Vec<_>>()
        };
        let assert_all = |files: &[Vec<(String, bool)>], expected: Vec<(String, bool)>| {
            assert_eq!(files.len(), 4, "two files per partition: {files:?}");
            assert!(files.iter().all(|f| *f == expected), "{files:?}");
        };

        assert_eq!(count(&ctx, &copy("adaptive", "")).await, 6000);
        let files = dictionary_pages(&dir.path().join("adaptive"));
        assert_all(&files, expect([false, false, true]));

        // The user's column option wins, other options still apply.
        let options =
            "OPTIONS ('format.dictionary_enabled::n' 'true', 'format.compression::x' 'zstd(1)')";
        assert_eq!(count(&ctx, &copy("configured", options)).await, 6000);
        let files = dictionary_pages(&dir.path().join("configured"));
        assert_all(&files, expect([true, false, true]));
        let x_codecs = column_codecs(&dir.path().join("configured"), 1);
        assert!(
            x_codecs.iter().all(|c| c.starts_with("ZSTD")),
            "{x_codecs:?}"
        );

        // A partition with no rows: the other partition's file, no error.
        let one_empty = format!(
            "COPY (SELECT n, k FROM t WHERE n < 3000) TO '{}/' STORED AS PARQUET",
            dir.path().join("one_empty").display()
        );
        assert_eq!(count(&ctx, &one_empty).await, 3000);

        ctx.sql("SET ember.write.adaptive_dictionary = false")
            .await
            .unwrap();
        assert_eq!(count(&ctx, &copy("off", "")).await, 6000);
        let files = dictionary_pages(&dir.path().join("off"));
        assert_all(&files, expect([true, true, true]));

        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE o STORED AS PARQUET LOCATION '{}/'",
            dir.path().join("adaptive").display()
        ))
        .await
        .unwrap();
        let check = "SELECT count(DISTINCT n) AS n, count(DISTINCT x) AS x, min(x) AS lo, max(x) AS hi, sum(k) AS k";
        let got = ctx
            .sql(&format!("{check} FROM o"))
            .await
            .unwrap()
            .collect()
            .await;
        let want = ctx
            .sql(&format!(
                "{check} FROM (SELECT n, CAST(n AS DOUBLE) / 3 AS x, k FROM t)"
            ))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(got.unwrap(), want.unwrap());
    }

    /// The physical plan of a `COPY` of `t` to a directory under `dir`.
    async fn directory_copy_plan(
        ctx: &SessionContext,
        dir: &tempfile::TempDir,
    ) -> Arc<dyn ExecutionPlan> {
        let copy = format!(
            "COPY (SELECT n FROM t) TO '{}/' STORED AS PARQUET",
            dir.path().join("out").display()
        );
        ctx.sql(&copy)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_node_round_trips_through_embers_codec() {
        use datafusion_proto::bytes::{
            physical_plan_from_bytes_with_extension_codec,
            physical_plan_to_bytes_with_extension_codec,
        };
        let (ctx, dir) = three_files().await;
        let plan = directory_copy_plan(&ctx, &dir).await;
        let codec = crate::codec::EmberPhysicalCodec::default();
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &codec).unwrap();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
        let shown = |p: &Arc<dyn ExecutionPlan>| displayable(p.as_ref()).indent(false).to_string();
        assert!(shown(&decoded).contains("PartitionedWriteExec"));
        assert_eq!(shown(&plan), shown(&decoded));
        // A node whose child is not a sink is refused, naming the node.
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let input: Arc<dyn ExecutionPlan> =
            Arc::new(datafusion::physical_plan::empty::EmptyExec::new(schema));
        let err = decode(Arc::clone(&input), &[input])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PartitionedWriteExec"), "{err}");
    }

    /// Ballista cuts stages at every `CoalescePartitionsExec` and re-runs
    /// `EnsureRequirements` on the stage below: the write must stay one task
    /// per partition there, with no merge put back in front of the sink.
    #[tokio::test]
    async fn survives_ballistas_stage_planning() {
        use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
        let (ctx, dir) = three_files().await;
        let plan = directory_copy_plan(&ctx, &dir).await;
        let mut planner = DefaultDistributedPlanner::new();
        let stages = planner
            .plan_query_stages(
                &"job".to_string().into(),
                plan,
                ctx.state().config_options(),
            )
            .unwrap();
        let shown: Vec<String> = stages
            .iter()
            .map(|s| displayable(s.as_ref()).indent(false).to_string())
            .collect();
        let writing = shown
            .iter()
            .find(|s| s.contains("PartitionedWriteExec"))
            .unwrap_or_else(|| panic!("no stage writes: {shown:#?}"));
        assert!(
            writing.contains("PartitionedWriteExec: partitions=3"),
            "{writing}"
        );
        assert!(!writing.contains("CoalescePartitionsExec"), "{writing}");
    }
}
