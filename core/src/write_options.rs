//! A write's file options, resolved before the plan leaves the client.
//!
//! Under Ballista the client serializes the logical plan and the scheduler
//! plans the write. datafusion-proto 55 keeps a `COPY`'s file format but drops
//! the statement's `OPTIONS (...)`, and it encodes the format's own options as
//! DataFusion's defaults when the format has none. So without this rule
//! `COPY ... OPTIONS ('format.compression' 'snappy')`,
//! `SET datafusion.execution.parquet.compression = 'snappy'` and Ember's own
//! write defaults were all silently ignored: every file came out with
//! DataFusion's defaults (Parquet compressed with `zstd(3)`).
//!
//! [`ResolveWriteOptions`] is an analyzer rule, so it runs on the client
//! before the plan is serialized. It resolves each `COPY`'s format options
//! exactly as DataFusion's physical planner would (the session's defaults,
//! then options the format already carries, then the statement's) and stores
//! the result in the file format itself, which datafusion-proto does
//! serialize. The statement's options are then empty, and the rule leaves a
//! resolved plan unchanged when the scheduler analyzes it again.
//!
//! Two `COPY` options are not format options and cannot travel in the format:
//! `single_file_output` and `execution.keep_partition_by_columns`. They are
//! refused with an error saying what to use instead, rather than dropped.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::config::{ConfigField, ConfigFileType, ConfigOptions, TableOptions};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::datasource::file_format::csv::CsvFormatFactory;
use datafusion::datasource::file_format::json::JsonFormatFactory;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::datasource::file_format::{
    FileFormatFactory, file_type_to_format, format_as_file_type,
};
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::dml::CopyTo;
use datafusion::optimizer::AnalyzerRule;

/// `COPY` options that configure the sink, not the format.
const SINK_OPTIONS: [(&str, &str); 2] = [
    (
        "single_file_output",
        "name the target with a file extension (out.parquet) to write one file, or end it in '/' for a directory",
    ),
    (
        "execution.keep_partition_by_columns",
        "use SET datafusion.execution.keep_partition_by_columns = true before the COPY",
    ),
];

/// Resolves every `COPY`'s file options into its file format (see the module
/// docs).
#[derive(Debug, Default)]
pub struct ResolveWriteOptions;

impl AnalyzerRule for ResolveWriteOptions {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|node| match node {
            LogicalPlan::Copy(copy) => resolve_copy(copy, config),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "ResolveWriteOptions"
    }
}

fn resolve_copy(copy: CopyTo, config: &ConfigOptions) -> Result<Transformed<LogicalPlan>> {
    for (key, instead) in SINK_OPTIONS {
        if copy.options.contains_key(key) {
            return plan_err!(
                "COPY option '{key}' is not supported by Ember (it would be lost on the way to the scheduler): {instead}"
            );
        }
    }
    let factory = file_type_to_format(&copy.file_type)?;
    let Some(resolved) = resolved_factory(factory.as_ref(), &copy.options, config)? else {
        return Ok(Transformed::no(LogicalPlan::Copy(copy)));
    };
    let CopyTo {
        input,
        output_url,
        partition_by,
        ..
    } = copy;
    Ok(Transformed::yes(LogicalPlan::Copy(CopyTo::new(
        input,
        output_url,
        partition_by,
        format_as_file_type(resolved),
        HashMap::new(),
    ))))
}

/// The factory with its options resolved, or `None` for a format without
/// options (Arrow, Avro) or one already resolved with nothing to add.
fn resolved_factory(
    factory: &dyn FileFormatFactory,
    statement: &HashMap<String, String>,
    config: &ConfigOptions,
) -> Result<Option<Arc<dyn FileFormatFactory>>> {
    if let Some(parquet) = factory.downcast_ref::<ParquetFormatFactory>() {
        let options = resolved(&parquet.options, statement, || {
            Ok(session_defaults(config, ConfigFileType::PARQUET, statement)?.parquet)
        })?;
        return Ok(options.map(|o| {
            Arc::new(ParquetFormatFactory::new_with_options(o)) as Arc<dyn FileFormatFactory>
        }));
    }
    if let Some(csv) = factory.downcast_ref::<CsvFormatFactory>() {
        let options = resolved(&csv.options, statement, || {
            Ok(session_defaults(config, ConfigFileType::CSV, statement)?.csv)
        })?;
        return Ok(options.map(|o| {
            Arc::new(CsvFormatFactory::new_with_options(o)) as Arc<dyn FileFormatFactory>
        }));
    }
    if let Some(json) = factory.downcast_ref::<JsonFormatFactory>() {
        let options = resolved(&json.options, statement, || {
            Ok(session_defaults(config, ConfigFileType::JSON, statement)?.json)
        })?;
        return Ok(options.map(|o| {
            Arc::new(JsonFormatFactory::new_with_options(o)) as Arc<dyn FileFormatFactory>
        }));
    }
    Ok(None)
}

/// A format's options as DataFusion's `FileFormatFactory::create` resolves
/// them: the options the format carries with the statement's set on top, or
/// else the session's defaults altered by the statement's. `None` when the
/// format already carries options and the statement adds none.
fn resolved<O: ConfigField + Clone>(
    carried: &Option<O>,
    statement: &HashMap<String, String>,
    session: impl FnOnce() -> Result<O>,
) -> Result<Option<O>> {
    match carried {
        Some(_) if statement.is_empty() => Ok(None),
        Some(carried) => {
            let mut options = carried.clone();
            for (k, v) in statement {
                options.set(k, v).map_err(|e| named_option(k, e))?;
            }
            Ok(Some(options))
        }
        None => session().map(Some),
    }
}

/// The session's table options for `format`, altered by the statement's.
fn session_defaults(
    config: &ConfigOptions,
    format: ConfigFileType,
    statement: &HashMap<String, String>,
) -> Result<TableOptions> {
    let mut options = TableOptions::default_from_session_config(config);
    options.set_config_format(format);
    options.alter_with_string_hash_map(statement)?;
    Ok(options)
}

fn named_option(key: &str, e: DataFusionError) -> DataFusionError {
    DataFusionError::Plan(format!("COPY option '{key}': {e}"))
}

#[cfg(test)]
mod tests {
    use datafusion::common::parsers::CompressionTypeVariant;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    async fn analyzed_copy(ctx: &SessionContext, sql: &str) -> Result<CopyTo> {
        let plan = ctx.state().create_logical_plan(sql).await?;
        let plan = ResolveWriteOptions.analyze(plan, ctx.state().config_options())?;
        match plan {
            LogicalPlan::Copy(copy) => Ok(copy),
            other => panic!("not a COPY: {other}"),
        }
    }

    fn parquet_options(copy: &CopyTo) -> datafusion::common::config::TableParquetOptions {
        let factory = file_type_to_format(&copy.file_type).unwrap();
        let parquet = factory
            .downcast_ref::<ParquetFormatFactory>()
            .expect("a Parquet format");
        parquet.options.clone().expect("resolved options")
    }

    fn context() -> SessionContext {
        SessionContext::new_with_config(SessionConfig::new())
    }

    #[tokio::test]
    async fn statement_options_move_into_the_format() {
        let ctx = context();
        let copy = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS PARQUET \
             OPTIONS ('format.compression' 'snappy', 'format.dictionary_enabled' 'false')",
        )
        .await
        .unwrap();
        let options = parquet_options(&copy);
        assert_eq!(options.global.compression.as_deref(), Some("snappy"));
        assert_eq!(options.global.dictionary_enabled, Some(false));
        assert!(copy.options.is_empty());
    }

    #[tokio::test]
    async fn session_settings_are_the_defaults() {
        let ctx = context();
        ctx.sql("SET datafusion.execution.parquet.compression = 'lz4_raw'")
            .await
            .unwrap();
        ctx.sql("SET datafusion.execution.parquet.max_row_group_size = 1000")
            .await
            .unwrap();
        let copy = analyzed_copy(&ctx, "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS PARQUET")
            .await
            .unwrap();
        let options = parquet_options(&copy);
        assert_eq!(options.global.compression.as_deref(), Some("lz4_raw"));
        assert_eq!(options.global.max_row_group_size, 1000);
    }

    #[tokio::test]
    async fn a_resolved_copy_is_left_as_it_is() {
        let ctx = context();
        let copy = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS PARQUET OPTIONS ('format.compression' 'snappy')",
        )
        .await
        .unwrap();
        // As the scheduler sees it: other session settings, no statement options.
        let mut other = ConfigOptions::new();
        other.execution.parquet.compression = Some("gzip(6)".to_string());
        let again = ResolveWriteOptions
            .analyze(LogicalPlan::Copy(copy), &other)
            .unwrap();
        let LogicalPlan::Copy(again) = again else {
            panic!("not a COPY")
        };
        assert_eq!(
            parquet_options(&again).global.compression.as_deref(),
            Some("snappy")
        );
    }

    #[tokio::test]
    async fn csv_and_json_options_are_resolved_too() {
        let ctx = context();
        let copy = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS CSV OPTIONS ('format.delimiter' ';')",
        )
        .await
        .unwrap();
        let factory = file_type_to_format(&copy.file_type).unwrap();
        let csv = factory.downcast_ref::<CsvFormatFactory>().unwrap();
        assert_eq!(csv.options.as_ref().unwrap().delimiter, b';');

        let copy = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS JSON OPTIONS ('format.compression' 'gzip')",
        )
        .await
        .unwrap();
        let factory = file_type_to_format(&copy.file_type).unwrap();
        let json = factory.downcast_ref::<JsonFormatFactory>().unwrap();
        assert_eq!(
            json.options.as_ref().unwrap().compression,
            CompressionTypeVariant::GZIP
        );
    }

    #[tokio::test]
    async fn sink_options_and_unknown_options_are_named() {
        let ctx = context();
        let err = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS PARQUET OPTIONS ('execution.keep_partition_by_columns' 'true')",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("'execution.keep_partition_by_columns'"),
            "{err}"
        );
        let err = analyzed_copy(
            &ctx,
            "COPY (SELECT 1 AS a) TO '/tmp/x/' STORED AS PARQUET OPTIONS ('format.compresion' 'snappy')",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("compresion"), "{err}");
    }
}
