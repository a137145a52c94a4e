//! Ember's plan codecs: Ballista's, plus a version stamp on Ember's functions.
//!
//! Plans cross process boundaries twice: client to scheduler (logical plan)
//! and scheduler to executor (physical plan). Ballista's codecs handle
//! Ballista's own plan nodes, and DataFusion encodes a function call by its
//! name only. Ember's functions are present on every process (see
//! [`crate::registry`]), so the name is enough to find them; what a name alone
//! cannot catch is an executor running another Ember release, whose
//! `feature_hash` or `predict` could compute something different. Ember's
//! codecs therefore stamp each Ember function call with the release that
//! planned it and refuse, with a message naming the function and both
//! releases, to decode a call stamped by another release. Everything else is
//! delegated to Ballista's codecs unchanged.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::parsers::CsvQuoteStyle;
use datafusion::common::{TableReference, plan_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::file_format::csv::CsvFormatFactory;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::EMBER_VERSION;
use crate::parallel_write::PartitionedWriteExec;
use crate::registry::{ember_aggregate_functions, ember_scalar_functions};
use crate::tree_job::{TreeJobTable, TreeLevel, TreeLevelExec};

const STAMP_PREFIX: &str = "ember/";

/// Marks Ember's [`PartitionedWriteExec`] among extension nodes. It starts
/// with a zero byte, which no protobuf message (Ballista's nodes) can start
/// with: field number 0 does not exist.
const PARTITIONED_WRITE_TAG: &[u8] = b"\0ember-partitioned-write;";

/// Marks a tree job's level ([`TreeLevelExec`]) among extension nodes.
const TREE_LEVEL_TAG: &[u8] = b"\0ember-tree-level;";

/// Marks a tree job's table ([`TreeJobTable`]) among table providers.
const TREE_JOB_TABLE_TAG: &[u8] = b"\0ember-tree-job-table;";

/// Tag, release stamp, a zero byte, then `value` as JSON.
fn tagged_json<T: serde::Serialize>(tag: &[u8], value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(tag);
    stamp(buf);
    buf.push(0);
    serde_json::to_writer(buf, value)
        .map_err(|e| datafusion::error::DataFusionError::Internal(e.to_string()))
}

/// Reads what [`tagged_json`] wrote after the tag, checking the stamp.
fn from_tagged_json<T: serde::de::DeserializeOwned>(what: &str, tagged: &[u8]) -> Result<T> {
    let Some(end) = tagged.iter().position(|b| *b == 0) else {
        return plan_err!("{what}: no body after the release stamp");
    };
    check_stamp(what, &tagged[..end])?;
    serde_json::from_slice(&tagged[end + 1..])
        .map_err(|e| datafusion::error::DataFusionError::Plan(format!("{what}: {e}")))
}

fn stamp(buf: &mut Vec<u8>) {
    buf.extend_from_slice(STAMP_PREFIX.as_bytes());
    buf.extend_from_slice(EMBER_VERSION.as_bytes());
}

/// Checks the release stamp written by [`stamp`] for function `name`.
fn check_stamp(name: &str, buf: &[u8]) -> Result<()> {
    let planned_by = std::str::from_utf8(buf)
        .ok()
        .and_then(|s| s.strip_prefix(STAMP_PREFIX));
    match planned_by {
        Some(v) if v == EMBER_VERSION => Ok(()),
        Some(v) => plan_err!(
            "function '{name}' was planned by Ember {v} but this process runs Ember \
             {EMBER_VERSION}; run the same Ember release on the client, the scheduler \
             and every executor"
        ),
        None => plan_err!("function '{name}' carries an encoding Ember does not recognise"),
    }
}

fn ember_udf(name: &str) -> Option<Arc<ScalarUDF>> {
    ember_scalar_functions()
        .into_iter()
        .find(|f| f.name() == name)
}

fn ember_udaf(name: &str) -> Option<Arc<AggregateUDF>> {
    ember_aggregate_functions()
        .into_iter()
        .find(|f| f.name() == name)
}

/// DataFusion 55 encodes a CSV format's quote style with `as i32`, but the
/// Rust enum (`Always, Necessary, ..`) and the protobuf enum (`Necessary,
/// Always, ..`) order their first two variants differently: a CSV `COPY`
/// planned on the scheduler quoted every field by default, and
/// `quote_style 'Always'` quoted only where necessary. The decoder is right,
/// so the encoder's input is swapped to compensate
/// (`csv_quote_styles_survive_the_codec` checks the round trip).
fn compensate_csv_quote_style(node: Arc<dyn FileFormatFactory>) -> Arc<dyn FileFormatFactory> {
    let Some(csv) = node.downcast_ref::<CsvFormatFactory>() else {
        return node;
    };
    let mut options = csv.options.clone().unwrap_or_default();
    options.quote_style = match options.quote_style {
        CsvQuoteStyle::Always => CsvQuoteStyle::Necessary,
        CsvQuoteStyle::Necessary => CsvQuoteStyle::Always,
        other => other,
    };
    Arc::new(CsvFormatFactory::new_with_options(options))
}

/// Ember's logical codec (client to scheduler).
#[derive(Debug, Default)]
pub struct EmberLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for EmberLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(tagged) = buf.strip_prefix(TREE_JOB_TABLE_TAG) {
            let table: TreeJobTable = from_tagged_json("TreeJobTable", tagged)?;
            return Ok(Arc::new(table));
        }
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(table) = node.downcast_ref::<TreeJobTable>() {
            return tagged_json(TREE_JOB_TABLE_TAG, table, buf);
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner
            .try_encode_file_format(buf, compensate_csv_quote_style(node))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match ember_udf(name) {
            Some(f) => check_stamp(name, buf).map(|()| f),
            None => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ember_udf(node.name()) {
            Some(_) => {
                stamp(buf);
                Ok(())
            }
            None => self.inner.try_encode_udf(node, buf),
        }
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match ember_udaf(name) {
            Some(f) => check_stamp(name, buf).map(|()| f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ember_udaf(node.name()) {
            Some(_) => {
                stamp(buf);
                Ok(())
            }
            None => self.inner.try_encode_udaf(node, buf),
        }
    }
}

/// Ember's physical codec (scheduler to executor).
#[derive(Debug, Default)]
pub struct EmberPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for EmberPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(tagged) = buf.strip_prefix(PARTITIONED_WRITE_TAG) {
            let Some(end) = tagged.iter().position(|b| *b == 0) else {
                return plan_err!("PartitionedWriteExec: no sink after the release stamp");
            };
            check_stamp("PartitionedWriteExec", &tagged[..end])?;
            let sink = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
                &tagged[end + 1..],
                ctx,
                self,
            )?;
            return crate::parallel_write::decode(sink, inputs);
        }
        if let Some(tagged) = buf.strip_prefix(TREE_LEVEL_TAG) {
            let level: TreeLevel = from_tagged_json("TreeLevelExec", tagged)?;
            let [input] = inputs else {
                return plan_err!("TreeLevelExec: {} inputs", inputs.len());
            };
            return Ok(Arc::new(TreeLevelExec::new(level, Arc::clone(input))));
        }
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(write) = node.downcast_ref::<PartitionedWriteExec>() {
            // Tag, release stamp, a zero byte, then the sink as a
            // `DataSinkExec` over an empty input (the input is the child).
            let sink = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
                write.sink_without_input()?,
                self,
            )?;
            buf.extend_from_slice(PARTITIONED_WRITE_TAG);
            stamp(buf);
            buf.push(0);
            buf.extend_from_slice(&sink);
            return Ok(());
        }
        if let Some(level) = node.downcast_ref::<TreeLevelExec>() {
            return tagged_json(TREE_LEVEL_TAG, level.level(), buf);
        }
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match ember_udf(name) {
            Some(f) => check_stamp(name, buf).map(|()| f),
            None => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ember_udf(node.name()) {
            Some(_) => {
                stamp(buf);
                Ok(())
            }
            None => self.inner.try_encode_udf(node, buf),
        }
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match ember_udaf(name) {
            Some(f) => check_stamp(name, buf).map(|()| f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ember_udaf(node.name()) {
            Some(_) => {
                stamp(buf);
                Ok(())
            }
            None => self.inner.try_encode_udaf(node, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::ExecutionPlanProperties;

    #[test]
    fn csv_quote_styles_survive_the_codec() {
        let codec = EmberLogicalCodec::default();
        let ctx = datafusion::prelude::SessionContext::new();
        for style in [
            CsvQuoteStyle::Always,
            CsvQuoteStyle::Necessary,
            CsvQuoteStyle::NonNumeric,
            CsvQuoteStyle::Never,
        ] {
            let options = datafusion::common::config::CsvOptions {
                quote_style: style,
                ..Default::default()
            };
            let mut buf = Vec::new();
            codec
                .try_encode_file_format(
                    &mut buf,
                    Arc::new(CsvFormatFactory::new_with_options(options)),
                )
                .unwrap();
            let back = codec.try_decode_file_format(&buf, &ctx.task_ctx()).unwrap();
            let back = back.downcast_ref::<CsvFormatFactory>().unwrap();
            assert_eq!(back.options.as_ref().unwrap().quote_style, style);
        }
    }

    #[test]
    fn ember_functions_round_trip_with_the_release_stamp() {
        let codec = EmberPhysicalCodec::default();
        let f = ember_udf("feature_hash").unwrap();
        let mut buf = Vec::new();
        codec.try_encode_udf(&f, &mut buf).unwrap();
        assert_eq!(buf, format!("ember/{EMBER_VERSION}").into_bytes());
        assert_eq!(
            codec.try_decode_udf("feature_hash", &buf).unwrap().name(),
            "feature_hash"
        );
    }

    #[test]
    fn tree_jobs_round_trip_with_the_release_stamp() {
        let table = TreeJobTable {
            plan: "{\"run\":\"r\"}".to_string(),
            location: "/data/binned/".to_string(),
        };
        let codec = EmberLogicalCodec::default();
        let mut buf = Vec::new();
        codec
            .try_encode_table_provider(
                &TableReference::bare("t"),
                Arc::new(table.clone()),
                &mut buf,
            )
            .unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        let back = codec
            .try_decode_table_provider(
                &buf,
                &TableReference::bare("t"),
                crate::tree_job::message_schema(),
                &ctx.task_ctx(),
            )
            .unwrap();
        assert_eq!(back.downcast_ref::<TreeJobTable>(), Some(&table));
        // Another release's stamp is refused, naming the node.
        let other = String::from_utf8_lossy(&buf).replace(EMBER_VERSION, "0.0.1-old");
        let err = codec
            .try_decode_table_provider(
                other.as_bytes(),
                &TableReference::bare("t"),
                crate::tree_job::message_schema(),
                &ctx.task_ctx(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TreeJobTable") && err.contains("0.0.1-old"),
            "{err}"
        );

        let level = TreeLevel {
            run: "r".into(),
            round: 3,
            depth: 2,
            last: false,
            names: vec!["a.parquet".into(), "b.parquet".into()],
            dest_keys: vec![4, 9],
            plan: None,
        };
        let input: Arc<dyn ExecutionPlan> = Arc::new(
            datafusion::physical_plan::empty::EmptyExec::new(crate::tree_job::message_schema())
                .with_partitions(2),
        );
        let node: Arc<dyn ExecutionPlan> = Arc::new(TreeLevelExec::new(level.clone(), input));
        let physical = EmberPhysicalCodec::default();
        let bytes =
            datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(node, &physical)
                .unwrap();
        let back = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &ctx.task_ctx(),
            &physical,
        )
        .unwrap();
        let back = back.downcast_ref::<TreeLevelExec>().unwrap();
        assert_eq!(back.level(), &level);
        assert_eq!(
            back.children()[0].output_partitioning().partition_count(),
            2
        );
    }

    #[test]
    fn another_release_is_refused_naming_function_and_releases() {
        let codec = EmberLogicalCodec::default();
        let err = codec
            .try_decode_udf("feature_hash", b"ember/0.0.1-old")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("feature_hash") && err.contains("0.0.1-old"),
            "{err}"
        );
        assert!(err.contains(EMBER_VERSION), "{err}");
    }

    #[test]
    fn builtin_functions_are_left_to_datafusion() {
        let codec = EmberPhysicalCodec::default();
        let abs = datafusion::functions::math::abs();
        let mut buf = Vec::new();
        codec.try_encode_udf(&abs, &mut buf).unwrap();
        assert!(buf.is_empty());
    }
}
