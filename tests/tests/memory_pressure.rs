//! Memory pressure: executors run with an explicit, small memory limit
//! (`--memory-limit`), and a query whose working set is larger spills to the
//! executors' work directories and completes with single-process DataFusion's
//! answer; a query that cannot spill fails with a resources error naming the
//! limit, and the executor process survives to run the next query.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use ember_benchmarks::verify::compare_results;
use ember_core::{ClusterTarget, EmberContext};
use ember_tests::cluster::TestCluster;
use ember_tests::data::{tpch, tpch_ddl};
use ember_tests::sql::{datafusion_context, run_on_datafusion, run_on_ember};

/// Per executor (one task slot each): far below what the queries below hold
/// in memory at scale factor 0.1 without spilling.
const MEMORY_LIMIT: &str = "16MiB";
const MEMORY_LIMIT_BYTES: usize = 16 << 20;

/// 600 k lineitem rows grouped into ~600 k groups, with a string aggregate:
/// the hash aggregation's state is several times the limit.
const WIDE_AGGREGATE: &str = "SELECT count(*) AS groups, sum(n) AS line_count, max(longest) AS longest, min(shortest) AS shortest \
     FROM (SELECT l_orderkey, l_partkey, count(*) AS n, max(l_comment) AS longest, min(l_comment) AS shortest \
           FROM lineitem GROUP BY l_orderkey, l_partkey) AS g";

/// A window over every row, sorted by a string: the sort spills.
const WIDE_SORT: &str = "SELECT sum(rn % 7) AS s, count(*) AS c \
     FROM (SELECT row_number() OVER (PARTITION BY l_suppkey ORDER BY l_comment, l_orderkey, l_linenumber) AS rn FROM lineitem) AS w";

/// Single-process DataFusion with two partitions, a pool of twice the
/// per-executor limit and spilling disabled: if a query fails here, its
/// working set does not fit the limit without spilling.
fn datafusion_without_spilling() -> SessionContext {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(2 * MEMORY_LIMIT_BYTES)))
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .expect("runtime");
    SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(2), runtime)
}

async fn memory_limited_cluster(limit: &str) -> (TestCluster, EmberContext) {
    let cluster = TestCluster::start(2, &[], &["--memory-limit".to_string(), limit.to_string()])
        .await
        .expect("start a memory-limited cluster");
    let target = ClusterTarget::parse(Some(&cluster.address())).expect("address");
    let ember = EmberContext::connect(target).await.expect("connect");
    (cluster, ember)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_larger_than_the_memory_limit_spill_and_match_datafusion() {
    let ddl = tpch_ddl(&tpch(0.1, 4));
    let oracle = datafusion_context(2);
    run_on_datafusion(&oracle, &ddl)
        .await
        .expect("DataFusion tables");
    let unspilled = datafusion_without_spilling();
    run_on_datafusion(&unspilled, &ddl)
        .await
        .expect("DataFusion tables");
    let (_cluster, ember) = memory_limited_cluster(MEMORY_LIMIT).await;
    run_on_ember(&ember, &ddl).await.expect("Ember tables");

    for sql in [WIDE_AGGREGATE, WIDE_SORT] {
        let error = run_on_datafusion(&unspilled, sql)
            .await
            .expect_err("the query needs more memory than the limit when it cannot spill");
        assert!(error.contains("Resources exhausted"), "{error}");
        let expected = run_on_datafusion(&oracle, sql).await.expect("DataFusion");
        let actual = run_on_ember(&ember, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}\nfailed under {MEMORY_LIMIT}: {e}"));
        compare_results(&expected[0], &actual[0], false)
            .unwrap_or_else(|diff| panic!("{sql}\ndiffers from DataFusion: {diff}"));
    }
}

/// 1 MiB is less than one aggregation batch needs: the job fails with a
/// resources error naming the pool, and the executors live on to answer the
/// next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_too_small_to_spill_within_fails_the_job_clearly_and_executors_survive() {
    let ddl = tpch_ddl(&tpch(0.1, 4));
    let (cluster, ember) = memory_limited_cluster("1MiB").await;
    run_on_ember(&ember, &ddl).await.expect("Ember tables");
    let error = run_on_ember(&ember, WIDE_AGGREGATE)
        .await
        .expect_err("1 MiB cannot hold an aggregation batch");
    assert!(
        error.contains("memory") && error.contains("--memory-limit"),
        "the error does not name the memory limit: {error}"
    );
    for name in ["executor-1", "executor-2"] {
        assert!(cluster.is_running(name), "{name} died: {error}");
    }
    let small = run_on_ember(&ember, "SELECT count(*) FROM nation")
        .await
        .expect("a small query after the failure");
    assert_eq!(small.len(), 1);
}
