//! [`ExpandTreeJobs`]: a tree job's placeholder becomes its stages.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use datafusion::common::config::ConfigOptions;
use datafusion::common::hash_utils::create_hashes;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{internal_err, plan_err};
use datafusion::error::Result;
use datafusion::physical_expr::Partitioning;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::repartition::{REPARTITION_RANDOM_STATE, RepartitionExec};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use super::DEST;
use super::exec::{TreeJobExec, TreeLevel, TreeLevelExec, file_scan, partition_name};

/// Replaces each [`TreeJobExec`] with its levels: `TreeLevelExec` over the
/// binned table's scan, then, per further level, a hash `RepartitionExec`
/// on `dest` (a Ballista stage boundary) and a `TreeLevelExec`.
#[derive(Debug, Default)]
pub struct ExpandTreeJobs;

impl PhysicalOptimizerRule for ExpandTreeJobs {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match node.downcast_ref::<TreeJobExec>() {
            Some(job) => Ok(Transformed::yes(expand(job)?)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "ExpandTreeJobs"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn expand(job: &TreeJobExec) -> Result<Arc<dyn ExecutionPlan>> {
    // Round-robin repartitions DataFusion may have put over the scan are
    // dropped (Ballista drops them too): each task reads its own files.
    let mut scan = Arc::clone(job.input());
    while let Some(repartition) = scan.downcast_ref::<RepartitionExec>() {
        scan = Arc::clone(repartition.input());
    }
    let Some(files) = file_scan(&scan) else {
        return plan_err!("a tree job reads a Parquet table, got {}", scan.name());
    };
    let partitions = scan.output_partitioning().partition_count();
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return plan_err!(
            "a tree job runs over 1 to {MAX_PARTITIONS} partitions, the binned table has {partitions}"
        );
    }
    let names = (0..partitions)
        .map(|p| partition_name(files, p))
        .collect::<Option<Vec<_>>>();
    let Some(names) = names else {
        return internal_err!("a tree job's scan has fewer file groups than partitions");
    };
    let job = job.job();
    let dest_keys = dest_keys(partitions)?;
    let level = |depth: usize| TreeLevel {
        run: job.run.clone(),
        round: job.round,
        depth,
        last: depth + 1 == job.stages,
        names: names.clone(),
        dest_keys: dest_keys.clone(),
        plan: (depth == 0).then(|| job.plan.clone()),
    };
    let mut chain: Arc<dyn ExecutionPlan> = Arc::new(TreeLevelExec::new(level(0), scan));
    for depth in 1..job.stages {
        let by_dest = Partitioning::Hash(vec![Arc::new(Column::new(DEST, 0))], partitions);
        let shuffled = Arc::new(RepartitionExec::try_new(chain, by_dest)?);
        chain = Arc::new(TreeLevelExec::new(level(depth), shuffled));
    }
    Ok(chain)
}

/// The most partitions a tree job runs over: every task sends its
/// histograms to every partition, so a stage moves partitions² copies of
/// them. The driver grows trees with level queries beyond this.
pub const MAX_PARTITIONS: usize = 32;

/// For each of `partitions` hash partitions, a `dest` value that DataFusion's
/// (and Ballista's) hash repartitioning sends there.
pub fn dest_keys(partitions: usize) -> Result<Vec<u64>> {
    if partitions == 0 {
        return internal_err!("a tree job over no partitions");
    }
    let mut keys: Vec<Option<u64>> = vec![None; partitions];
    let mut found = 0;
    let mut hash = [0u64; 1];
    for candidate in 0..(partitions as u64).saturating_mul(1000).max(1000) {
        let column: ArrayRef = Arc::new(UInt64Array::from(vec![candidate]));
        create_hashes(
            [&column],
            REPARTITION_RANDOM_STATE.random_state(),
            &mut hash,
        )?;
        let slot = &mut keys[(hash[0] % partitions as u64) as usize];
        if slot.is_none() {
            *slot = Some(candidate);
            found += 1;
            if found == partitions {
                return Ok(keys.into_iter().flatten().collect());
            }
        }
    }
    internal_err!("no dest values found for all {partitions} partitions of a tree job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ember_session_config;
    use crate::session::{ember_runtime_env, ember_session_state};
    use crate::tree_job::{TreeJobTable, job_result};
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;
    use ember_udfs::training::distributed::gbdt_tree_step::{TreeJobPlan, TreeParams};
    use ember_udfs::training::gbdt::grad::Quantiser;
    use ember_udfs::training::gbdt::messages::GradientPlan;
    use ember_udfs::training::params::GbdtParams;

    #[tokio::test]
    async fn a_tree_job_is_planned_as_one_stage_per_level_and_runs_in_process() {
        let state =
            ember_session_state(ember_session_config(), ember_runtime_env(None).unwrap()).unwrap();
        let ctx = SessionContext::new_with_state(state);
        let dir = tempfile::tempdir().unwrap();
        let location = format!("{}/", dir.path().join("binned").display());
        ctx.sql(&format!(
            "COPY (SELECT __ember_gbdt_row_key() AS __key, CAST(x AS DOUBLE) AS __label \
             FROM (VALUES (1), (2), (3)) AS t(x)) TO '{location}' STORED AS PARQUET"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let plan = TreeJobPlan {
            run: "expand-test".into(),
            round: 0,
            start: 0.0,
            gradient: GradientPlan {
                objective: "binary:logistic".into(),
                quantiser: Quantiser::for_rows("t", 3, 1.0).unwrap(),
            },
            params: TreeParams::of(&GbdtParams {
                max_depth: 3,
                ..GbdtParams::default()
            }),
            cuts: vec![vec![1f32.to_bits(), 2f32.to_bits()]],
            trees_from: 0,
            trees: vec![],
        };
        let table = TreeJobTable::try_new(serde_json::to_string(&plan).unwrap(), location).unwrap();
        let df = ctx.read_table(Arc::new(table)).unwrap();
        let physical = df.clone().create_physical_plan().await.unwrap();
        let text = displayable(physical.as_ref()).indent(false).to_string();
        // Depth 3: the root's level and three more, each behind a hash
        // repartition on dest (Ballista's stage boundary).
        assert_eq!(text.matches("TreeLevelExec").count(), 4, "{text}");
        assert_eq!(
            text.matches("RepartitionExec: partitioning=Hash([dest@0]")
                .count(),
            3,
            "{text}"
        );
        assert!(text.contains("depth=3 partitions=1 last"), "{text}");
        assert!(
            !text.contains("TreeJobExec") && !text.contains("RoundRobin"),
            "{text}"
        );
        // Run in this process, which kept no rows for the run: every
        // partition answers missing, and the job returns no tree.
        let batches = df.collect().await.unwrap();
        assert_eq!(job_result(&batches).unwrap(), None);
    }

    #[test]
    fn each_dest_key_hashes_to_its_partition() {
        for partitions in [1, 2, 3, 7, 64] {
            let keys = dest_keys(partitions).unwrap();
            assert_eq!(keys.len(), partitions);
            let column: ArrayRef = Arc::new(UInt64Array::from(keys));
            let mut hashes = vec![0u64; partitions];
            create_hashes(
                [&column],
                REPARTITION_RANDOM_STATE.random_state(),
                &mut hashes,
            )
            .unwrap();
            let owners: Vec<u64> = hashes.iter().map(|h| h % partitions as u64).collect();
            assert_eq!(owners, (0..partitions as u64).collect::<Vec<_>>());
        }
    }
}
