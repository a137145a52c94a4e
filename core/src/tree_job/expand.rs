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
use ember_udfs::training::distributed::gbdt_tree_step::TreeJobPlan;

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
    let names = (0..partitions)
        .map(|p| partition_name(files, p))
        .collect::<Option<Vec<_>>>();
    let Some(names) = names else {
        return internal_err!("a tree job's scan has fewer file groups than partitions");
    };
    let plan = TreeJobPlan::parse(&job.plan)
        .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
    let dest_keys = dest_keys(partitions)?;
    let level = |depth: usize| TreeLevel {
        run: plan.run.clone(),
        round: plan.round,
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

/// For each of `partitions` hash partitions, a `dest` value that DataFusion's
/// (and Ballista's) hash repartitioning sends there.
pub fn dest_keys(partitions: usize) -> Result<Vec<u64>> {
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
