//! Running SQL in tests: on Ember (embedded or on a cluster) and on
//! single-process DataFusion, the oracle.

use arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::prelude::{SessionConfig, SessionContext};
use ember_core::{ClusterTarget, EmberContext};
use ember_jobs::sql::{SqlRunner, StatementKind};

use crate::Mode;
use crate::cluster::shared;

/// Connects to Ember in `mode`.
pub async fn connect(mode: Mode) -> EmberContext {
    let target = match mode {
        Mode::Embedded => ClusterTarget::Embedded,
        Mode::Cluster => ClusterTarget::parse(Some(&shared().address())).expect("cluster address"),
    };
    EmberContext::connect(target)
        .await
        .expect("connect to Ember")
}

/// Runs a script on Ember; returns the rows of each query, in order.
pub async fn run_on_ember(
    ember: &EmberContext,
    sql: &str,
) -> Result<Vec<Vec<RecordBatch>>, String> {
    let runner = SqlRunner::new(ember, false);
    let statements = runner.parse(sql).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for (i, statement) in statements.into_iter().enumerate() {
        let outcome = runner
            .run(i + 1, statement)
            .await
            .map_err(|e| e.to_string())?;
        if outcome.kind == StatementKind::Query {
            results.push(outcome.batches);
        }
    }
    Ok(results)
}

/// A single-process DataFusion session with `partitions` target partitions.
pub fn datafusion_context(partitions: usize) -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions))
}

/// Runs a script on DataFusion; returns the rows of each statement.
pub async fn run_on_datafusion(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<Vec<RecordBatch>>, String> {
    let mut results = Vec::new();
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let df = ctx.sql(statement).await.map_err(|e| e.to_string())?;
        results.push(df.collect().await.map_err(|e| e.to_string())?);
    }
    Ok(results)
}

/// Total rows of a result.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Runs a two-stage query with a hash shuffle between the stages (executors
/// fetch each other's output over Flight, and the client fetches the
/// result), and checks its answer.
pub async fn assert_shuffling_query_runs(ember: &EmberContext) {
    let batches = ember
        .session()
        .sql(
            "SELECT v % 7 AS k, count(*) AS n FROM generate_series(1, 100000) AS t(v) \
             GROUP BY v % 7 ORDER BY k",
        )
        .await
        .expect("plan")
        .collect()
        .await
        .expect("the shuffling query runs");
    let counts: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let n = b
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("count");
            (0..n.len()).map(|i| n.value(i)).collect::<Vec<_>>()
        })
        .collect();
    let expected: Vec<i64> = (0..7)
        .map(|k| (1..=100_000).filter(|v| v % 7 == k).count() as i64)
        .collect();
    assert_eq!(counts, expected);
}
