//! `__ember_gbdt_level('plan', key [, label, bin0, bin1, ...])`: the gradient
//! histograms of one tree level, summed over every row of the binned table.
//!
//! With only the row-key column, each batch is looked up among the rows
//! this process keeps for the run ([`super::gbdt_resident`]), brought up to
//! the plan's round and tree, and its rows of the nodes being built are
//! added to their histograms; batches not held are counted as missing. With
//! label and bins as well, every batch is rebuilt from them and the plan's
//! finished trees (which must then be all of them) and kept for the next
//! level. The driver sends the short form, and the long one when a level
//! came back with missing rows.
//!
//! The result is the count of missing rows (little-endian `u64`) followed by
//! the histograms. Partial results merge by integer addition, so the result
//! is the same whatever the partitioning and whichever process held which
//! rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt16Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{constant_text, constant_text_type};
use crate::training::distributed::gbdt_resident::{self, ResidentRows};
use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{
    HistShape, NO_SLOT, SelectedRows, accumulate, from_bytes, merge, to_bytes,
};
use crate::training::gbdt::messages::ResidentLevelPlan;
use crate::training::params::Objective;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_level";

/// Bytes before the histograms in the result: the missing-row count.
const MISSING_BYTES: usize = 8;

/// Reads a level's result: rows not held by the processes that ran it, and
/// the histograms (`len` entries).
pub fn read_level_result(
    function: &'static str,
    bytes: &[u8],
    len: usize,
) -> TrainResult<(u64, Vec<GradPair>)> {
    if bytes.len() < MISSING_BYTES {
        return Err(TrainError::Message {
            function,
            reason: format!("a level result of {} bytes", bytes.len()),
        });
    }
    let mut missing = [0u8; MISSING_BYTES];
    missing.copy_from_slice(&bytes[..MISSING_BYTES]);
    Ok((
        u64::from_le_bytes(missing),
        from_bytes(function, &bytes[MISSING_BYTES..], len)?,
    ))
}

fn write_level_result(missing: u64, hist: &[GradPair]) -> Vec<u8> {
    let mut out = missing.to_le_bytes().to_vec();
    out.extend_from_slice(&to_bytes(hist));
    out
}

/// The level aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtLevel {
    signature: Signature,
}

impl Default for GbdtLevel {
    fn default() -> Self {
        Self {
            // Volatile: its answer depends on what this process holds, so
            // it must never be folded or reused.
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

impl AggregateUDFImpl for GbdtLevel {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() == 2 {
            return Ok(vec![constant_text_type(), DataType::Int64]);
        }
        if arg_types.len() < 4 {
            return plan_err!("{NAME}: expected (plan, key) or (plan, key, label, bins...)");
        }
        let mut types = vec![constant_text_type(), DataType::Int64, DataType::Float64];
        types.extend(std::iter::repeat_n(DataType::UInt16, arg_types.len() - 3));
        Ok(types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[level]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (plan, objective, quantiser) =
            ResidentLevelPlan::parse(NAME, &constant_text(NAME, &acc_args, 0)?)?;
        let columns = acc_args.exprs.len();
        let full = columns > 2;
        if full && columns != plan.level.features + 3 {
            return exec_err!(
                "{NAME}: {} bin columns for {} features",
                columns - 3,
                plan.level.features
            );
        }
        if full && plan.trees_from != 0 {
            return exec_err!("{NAME}: rebuilding rows needs every finished tree");
        }
        let shape = HistShape {
            slots: plan.level.build.len(),
            features: plan.level.features,
            stride: plan.level.stride,
        };
        let mut slot_of_node = vec![NO_SLOT; plan.level.tree.nodes.len()];
        for (slot, node) in plan.level.build.iter().enumerate() {
            slot_of_node[*node as usize] = slot as u32;
        }
        Ok(Box::new(LevelAccumulator {
            hist: vec![GradPair::default(); shape.len()],
            shape,
            slot_of_node,
            plan,
            objective,
            quantiser,
            full,
            missing: 0,
            selected: SelectedRows::default(),
        }))
    }
}

#[derive(Debug)]
struct LevelAccumulator {
    plan: ResidentLevelPlan,
    objective: Objective,
    quantiser: Quantiser,
    full: bool,
    shape: HistShape,
    slot_of_node: Vec<u32>,
    hist: Vec<GradPair>,
    missing: u64,
    selected: SelectedRows,
}

impl LevelAccumulator {
    /// Rows rebuilt from the long form's columns, kept for later levels.
    fn rebuild(&self, values: &[ArrayRef], last: i64) -> Result<ResidentRows> {
        if values[2].logical_null_count() > 0 {
            return exec_err!("{NAME}: a null label in the binned table");
        }
        let label = values[2].as_primitive::<Float64Type>().values().clone();
        let mut bins = Vec::with_capacity(values.len() - 3);
        for column in &values[3..] {
            if column.logical_null_count() > 0 {
                return exec_err!("{NAME}: a null bin in the binned table");
            }
            bins.push(column.as_primitive::<UInt16Type>().values().clone());
        }
        Ok(ResidentRows::new(self.plan.start, label, bins, last))
    }
}

impl Accumulator for LevelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let keys = values[1].as_primitive::<Int64Type>();
        let len = keys.len();
        if len == 0 {
            return Ok(());
        }
        if keys.logical_null_count() > 0 {
            return exec_err!("{NAME}: a null row key in the binned table");
        }
        let (first, last) = (keys.value(0), keys.value(len - 1));
        let shared = if self.full {
            gbdt_resident::keep(&self.plan.run, first, self.rebuild(values, last)?)
        } else {
            match gbdt_resident::find(&self.plan.run, first) {
                Some(shared) => shared,
                None => {
                    self.missing += len as u64;
                    return Ok(());
                }
            }
        };
        // A holder that panicked may have left the batch half updated:
        // treat it as not held (the long form rebuilds it).
        let Ok(mut rows) = shared.lock() else {
            self.missing += len as u64;
            return Ok(());
        };
        if !rows.matches(len, last) || !rows.prepare(&self.plan, self.objective, self.quantiser)
        {
            if self.full {
                return exec_err!("{NAME}: internal: rebuilt rows are not at the plan's round");
            }
            self.missing += len as u64;
            return Ok(());
        }
        rows.select(&self.slot_of_node, &mut self.selected);
        accumulate(&mut self.hist, self.shape, &self.selected, &rows.bins());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(binary) = states
            .first()
            .and_then(|s| s.as_any().downcast_ref::<LargeBinaryArray>())
        else {
            return exec_err!("{NAME}: state is not binary");
        };
        for bytes in binary.iter().flatten() {
            let (missing, hist) = read_level_result(NAME, bytes, self.shape.len())?;
            self.missing += missing;
            merge(&mut self.hist, &hist);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(write_level_result(
            self.missing,
            &self.hist,
        )))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(write_level_result(
            self.missing,
            &self.hist,
        ))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.hist.len() * std::mem::size_of::<GradPair>()
            + self.selected.rows.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::gbdt::cuts::MISSING_BIN;
    use crate::training::gbdt::messages::{GradientPlan, LevelPlan};
    use crate::training::gbdt::tree::{Grower, Tree};
    use crate::training::params::GbdtParams;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::prelude::SessionContext;

    const Q: Quantiser = Quantiser { scale_log2: 30 };
    /// Key, label, bin of one feature cut at 0.5 and 1.5.
    const ROWS: [(i64, f64, u16); 9] = [
        (10, 1.0, 0),
        (11, 1.0, 0),
        (12, 0.0, 1),
        (13, 0.0, 1),
        (14, 1.0, 2),
        (15, 1.0, 2),
        (16, 0.0, MISSING_BIN),
        (17, 0.0, 1),
        (18, 1.0, 0),
    ];

    fn cuts() -> Vec<Vec<f32>> {
        vec![vec![0.5, 1.5]]
    }

    fn params() -> GbdtParams {
        GbdtParams {
            max_depth: 2,
            min_child_weight: 0.0,
            lambda: 0.1,
            ..GbdtParams::default()
        }
    }

    fn plan(run: &str, round: u32, trees_from: u32, trees: &[Tree], grower: &Grower) -> String {
        serde_json::to_string(&ResidentLevelPlan {
            run: run.into(),
            round,
            start: 0.0,
            gradient: GradientPlan {
                objective: "binary:logistic".into(),
                quantiser: Q,
            },
            level: LevelPlan {
                features: 1,
                stride: grower.stride(),
                build: grower.pending().unwrap().to_vec(),
                tree: grower.tree().clone(),
            },
            trees_from,
            trees: trees[trees_from as usize..].to_vec(),
        })
        .unwrap()
    }

    /// Runs the level over [`ROWS`], with every column (`long`) or only keys.
    async fn level(plan: &str, long: bool, slots: usize) -> Result<(u64, Vec<GradPair>)> {
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::from(GbdtLevel::default()));
        let values: Vec<String> = ROWS
            .iter()
            .map(|(k, y, b)| format!("({k}, {y:?}, {b})"))
            .collect();
        let args = if long { "k, y, b" } else { "k" };
        let sql = format!(
            "SELECT {NAME}('{plan}', {args}) FROM (VALUES {}) AS t(k, y, b)",
            values.join(", ")
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let bytes = batches[0].column(0).as_binary::<i32>().value(0).to_vec();
        let stride = cuts()[0].len() + 2;
        Ok(read_level_result(NAME, &bytes, slots * stride)?)
    }

    /// The root histogram at the given margins, summed by hand.
    fn root_histogram(margin: impl Fn(u16) -> f64) -> Vec<GradPair> {
        let stride = cuts()[0].len() + 2;
        let mut hist = vec![GradPair::default(); stride];
        for (_, y, b) in ROWS {
            let slot = if b == MISSING_BIN {
                stride - 1
            } else {
                usize::from(b)
            };
            hist[slot].add(Q.row_gradient(Objective::BinaryLogistic, margin(b), y));
        }
        hist
    }

    #[tokio::test]
    async fn sums_each_rows_gradient_by_bin_with_missing_values_last() {
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let (missing, hist) = level(&plan("sums", 0, 0, &[], &grower), true, 1)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        assert_eq!(hist, root_histogram(|_| 0.0));
        gbdt_resident::release("sums");
    }

    #[tokio::test]
    async fn kept_rows_answer_later_levels_and_rounds_as_rebuilt_rows_do() {
        let params = params();
        let cuts = cuts();
        let run = "kept";
        // Round 0: the root reads every column and keeps the rows.
        let mut grower = Grower::new(&params, &cuts, Q);
        let (_, root) = level(&plan(run, 0, 0, &[], &grower), true, 1).await.unwrap();
        grower.apply(&root).unwrap();
        // The next level from kept rows (keys only) equals rows rebuilt from
        // every column under another run.
        let slots = grower.pending().unwrap().len();
        let (missing, kept) = level(&plan(run, 0, 0, &[], &grower), false, slots)
            .await
            .unwrap();
        let (_, rebuilt) = level(&plan("kept-rebuilt-0", 0, 0, &[], &grower), true, slots)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        assert_eq!(kept, rebuilt);
        assert!(kept.iter().any(|p| p.h != 0), "the level built nothing");
        grower.apply(&kept).unwrap();
        assert!(grower.pending().is_none());
        let tree = grower.finish();
        assert!(tree.nodes.len() > 3, "the tree did not grow two levels");

        // Round 1: kept rows add the finished tree to their margins.
        let next = Grower::new(&params, &cuts, Q);
        let trees = [tree.clone()];
        let (missing, kept) = level(&plan(run, 1, 0, &trees, &next), false, 1)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        let expected = root_histogram(|b| tree.nodes[tree.leaf_of(|_| b)].value);
        assert_eq!(kept, expected);
        let (_, rebuilt) = level(&plan("kept-rebuilt-1", 1, 0, &trees, &next), true, 1)
            .await
            .unwrap();
        assert_eq!(rebuilt, expected);
        for name in [run, "kept-rebuilt-0", "kept-rebuilt-1"] {
            gbdt_resident::release(name);
        }
    }

    /// Grows round 0's tree (depth 2) over kept rows of `run`.
    async fn grow_first_tree(run: &str) -> Tree {
        let params = params();
        let cuts = cuts();
        let mut grower = Grower::new(&params, &cuts, Q);
        let (_, root) = level(&plan(run, 0, 0, &[], &grower), true, 1).await.unwrap();
        grower.apply(&root).unwrap();
        let slots = grower.pending().unwrap().len();
        let (_, hist) = level(&plan(run, 0, 0, &[], &grower), false, slots)
            .await
            .unwrap();
        grower.apply(&hist).unwrap();
        grower.finish()
    }

    #[tokio::test]
    async fn rows_that_missed_rounds_catch_up_tree_by_tree() {
        let run = "caught-up";
        let first = grow_first_tree(run).await;
        assert!(first.nodes.len() > 3, "the tree did not grow two levels");
        // A second tree the rows were never placed in: the first with the
        // root's children swapped, and its own leaf values.
        let mut second = first.clone();
        let root = &mut second.nodes[0];
        std::mem::swap(&mut root.left, &mut root.right);
        for (i, node) in second.nodes.iter_mut().enumerate() {
            node.value = 0.125 * (i + 1) as f64;
        }
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let trees = [first.clone(), second.clone()];
        let (missing, kept) = level(&plan(run, 2, 0, &trees, &grower), false, 1)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        let leaf = |tree: &Tree, b: u16| tree.nodes[tree.leaf_of(|_| b)].value;
        assert_eq!(
            kept,
            root_histogram(|b| 0.0 + leaf(&first, b) + leaf(&second, b))
        );
        gbdt_resident::release(run);
    }

    #[tokio::test]
    async fn rows_not_kept_or_too_far_behind_are_counted_missing() {
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let (missing, hist) = level(&plan("never-kept", 0, 0, &[], &grower), false, 1)
            .await
            .unwrap();
        assert_eq!(missing, ROWS.len() as u64);
        assert!(hist.iter().all(|p| *p == GradPair::default()));

        // Kept at round 0, asked at round 1 by a plan without tree 0.
        level(&plan("behind", 0, 0, &[], &grower), true, 1)
            .await
            .unwrap();
        let tree = Tree {
            nodes: grower.tree().nodes.clone(),
        };
        let (missing, _) = level(&plan("behind", 1, 1, &[tree], &grower), false, 1)
            .await
            .unwrap();
        assert_eq!(missing, ROWS.len() as u64);
        assert_eq!(gbdt_resident::release("behind"), 1);
        assert_eq!(gbdt_resident::release("behind"), 0);
    }

    #[tokio::test]
    async fn bad_plans_and_columns_are_errors_naming_the_function() {
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let good = plan("bad-input", 0, 0, &[], &grower);
        let wrong_round = good.replace("\"round\":0", "\"round\":3");
        let no_run = good.replace("\"run\":\"bad-input\"", "\"run\":\"\"");
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::from(GbdtLevel::default()));
        for sql in [
            format!("SELECT {NAME}('{wrong_round}', k) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{no_run}', k) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('not json', k) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{good}', k, y, b, b) FROM (VALUES (1, 1.0, 0)) AS t(k, y, b)"),
            format!(
                "SELECT {NAME}('{good}', k, y, b) FROM (VALUES (1, CAST(NULL AS DOUBLE), 0)) AS t(k, y, b)"
            ),
            format!(
                "SELECT {NAME}('{good}', k, y, b) FROM (VALUES (CAST(NULL AS BIGINT), 1.0, 0)) AS t(k, y, b)"
            ),
        ] {
            let result = match ctx.sql(&sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let error = result.expect_err(&sql).to_string();
            assert!(error.contains(NAME), "{sql}: {error}");
        }
        gbdt_resident::release("bad-input");
    }
}
