//! `__ember_gbdt_level('plan', key [, label, bin0, bin1, ...])`: the gradient
//! histograms of one tree level, summed over every row of the binned table.
//!
//! With only the row-key column (the short form), each batch is looked up
//! among the rows this process keeps for the run ([`super::gbdt_resident`]),
//! brought up to the plan's round and tree, and its rows of the nodes being
//! built are added to their histograms; batches not held are counted as
//! missing. With label and bins as well (the long form, whose plan carries
//! every finished tree), a batch not held, or held too far behind, is rebuilt
//! from them and kept for the next level. The driver sends the short form,
//! and the long one first and whenever a level came back with missing rows.
//!
//! The result is the count of missing rows followed by the histograms
//! ([`level_result_to_bytes`]). Partial results merge by integer addition,
//! so the result is the same whatever the partitioning and whichever process
//! held which rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt16Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{constant_text, constant_text_type};
use crate::training::distributed::gbdt_resident::{self, ResidentRows, RowKey, SharedRows};
use crate::training::distributed::gbdt_row_key::{is_row_key_type, key_at, row_keys};
use crate::training::gbdt::cuts::MISSING_BIN;
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{HistShape, NO_SLOT, merge};
use crate::training::gbdt::messages::{
    ResidentLevelPlan, level_result_from_bytes, level_result_to_bytes,
};
use crate::training::params::Objective;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_level";

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
        if !(arg_types.len() == 2 || arg_types.len() >= 4) || !is_row_key_type(&arg_types[1]) {
            return plan_err!(
                "{NAME}: expected (plan, row key) or (plan, row key, label, bins...)"
            );
        }
        let mut types = vec![constant_text_type(), arg_types[1].clone()];
        if arg_types.len() > 2 {
            types.push(DataType::Float64);
            types.extend(std::iter::repeat_n(DataType::UInt16, arg_types.len() - 3));
        }
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
        if !(columns == 2 || columns == plan.level.features + 3) {
            return exec_err!(
                "{NAME}: {columns} arguments for {} features",
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
}

impl LevelAccumulator {
    /// Rows rebuilt from the long form's columns.
    fn rebuild(&self, values: &[ArrayRef], last: RowKey) -> Result<ResidentRows> {
        let Some(label) = values[2].as_primitive_opt::<Float64Type>() else {
            return exec_err!("{NAME}: the label is not a DOUBLE column");
        };
        if label.logical_null_count() > 0 {
            return exec_err!("{NAME}: a null label in the binned table");
        }
        let mut bins = Vec::with_capacity(values.len() - 3);
        for column in &values[3..] {
            let Some(column) = column.as_primitive_opt::<UInt16Type>() else {
                return exec_err!("{NAME}: a bin column is not UInt16");
            };
            if column.logical_null_count() > 0 {
                return exec_err!("{NAME}: a null bin in the binned table");
            }
            // Histograms file a bin past the last real one under missing
            // values (`hist::accumulate_row_major`): only `MISSING_BIN` may be.
            let last_real = self.shape.stride - 2;
            if let Some(bin) = column
                .values()
                .iter()
                .find(|b| usize::from(**b) > last_real && **b != MISSING_BIN)
            {
                return exec_err!(
                    "{NAME}: bin {bin} of feature {} in the binned table is past the plan's last bin {last_real}",
                    bins.len()
                );
            }
            bins.push(column.values().clone());
        }
        Ok(ResidentRows::new(
            self.plan.start,
            label.values().clone(),
            bins,
            last,
        ))
    }

    /// Adds the batch's rows of the nodes being built, if `shared` holds
    /// them and can be brought to the plan; false otherwise.
    fn add_held(&mut self, shared: &SharedRows, len: usize, last: RowKey) -> bool {
        // A holder that panicked may have left the batch half updated:
        // treat it as not held.
        let Ok(mut rows) = shared.lock() else {
            return false;
        };
        rows.matches(len, last, self.plan.level.features)
            && rows.add_level(
                &self.plan,
                self.objective,
                self.quantiser,
                &self.slot_of_node,
                &mut self.hist,
                self.shape,
            )
    }
}

impl Accumulator for LevelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let len = values[1].len();
        if len == 0 {
            return Ok(());
        }
        let Some(keys) = row_keys(values[1].as_ref()) else {
            return exec_err!("{NAME}: a null or mistyped row key in the binned table");
        };
        let (first, last) = (key_at(keys, 0), key_at(keys, len - 1));
        let held = gbdt_resident::find(&self.plan.run, first);
        if let Some(shared) = &held
            && self.add_held(shared, len, last)
        {
            return Ok(());
        }
        if !self.full {
            self.missing = self.missing.saturating_add(len as u64);
            return Ok(());
        }
        let shared = gbdt_resident::keep(&self.plan.run, first, self.rebuild(values, last)?);
        if !self.add_held(&shared, len, last) {
            return exec_err!("{NAME}: internal: rebuilt rows are not at the plan's round");
        }
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
            let (missing, hist) = level_result_from_bytes(NAME, bytes, self.shape.len())?;
            self.missing = self.missing.saturating_add(missing);
            merge(&mut self.hist, &hist);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(level_result_to_bytes(
            self.missing,
            &self.hist,
        )))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(level_result_to_bytes(
            self.missing,
            &self.hist,
        ))))
    }

    fn size(&self) -> usize {
        let trees: usize = self
            .plan
            .trees
            .iter()
            .map(|t| std::mem::size_of_val(t.nodes.as_slice()))
            .sum();
        std::mem::size_of_val(self) + trees + self.hist.len() * std::mem::size_of::<GradPair>()
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
    /// Margin before the first tree in every plan here.
    const START: f64 = 0.25;
    /// Row index (of batch 7), label, bin of one feature cut at 0.5 and 1.5.
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
    const KEY: &str = "named_struct('batch', CAST(7 AS BIGINT), 'row', k)";

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
            start: START,
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
        let args = if long {
            format!("{KEY}, y, b")
        } else {
            KEY.to_string()
        };
        let sql = format!(
            "SELECT {NAME}('{plan}', {args}) FROM (VALUES {}) AS t(k, y, b)",
            values.join(", ")
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let bytes = batches[0].column(0).as_binary::<i32>().value(0).to_vec();
        let stride = cuts()[0].len() + 2;
        Ok(level_result_from_bytes(NAME, &bytes, slots * stride)?)
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

    /// Grows round 0's tree (depth 2) over kept rows of `run`.
    async fn grow_first_tree(run: &str) -> Tree {
        let params = params();
        let cuts = cuts();
        let mut grower = Grower::new(&params, &cuts, Q);
        let (_, root) = level(&plan(run, 0, 0, &[], &grower), true, 1)
            .await
            .unwrap();
        grower.apply(&root).unwrap();
        let slots = grower.pending().unwrap().len();
        let (missing, hist) = level(&plan(run, 0, 0, &[], &grower), false, slots)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        grower.apply(&hist).unwrap();
        grower.finish()
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
        assert_eq!(hist, root_histogram(|_| START));
        gbdt_resident::release("sums");
    }

    #[tokio::test]
    async fn kept_rows_answer_later_levels_and_rounds_as_rebuilt_rows_do() {
        let params = params();
        let cuts = cuts();
        let run = "kept";
        // Round 0: the root reads every column and keeps the rows.
        let mut grower = Grower::new(&params, &cuts, Q);
        let (_, root) = level(&plan(run, 0, 0, &[], &grower), true, 1)
            .await
            .unwrap();
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
        let expected = root_histogram(|b| START + tree.nodes[tree.leaf_of(|_| b)].value);
        assert_eq!(kept, expected);
        let (_, rebuilt) = level(&plan("kept-rebuilt-1", 1, 0, &trees, &next), true, 1)
            .await
            .unwrap();
        assert_eq!(rebuilt, expected);
        for name in [run, "kept-rebuilt-0", "kept-rebuilt-1"] {
            gbdt_resident::release(name);
        }
    }

    #[tokio::test]
    async fn rows_that_missed_rounds_catch_up_tree_by_tree_in_order() {
        let run = "caught-up";
        let grown = grow_first_tree(run).await;
        assert!(grown.nodes.len() > 3, "the tree did not grow two levels");
        // The rows were placed in the grown tree; give it large leaf values,
        // and add two trees they were never placed in: the grown one with
        // the root's children swapped. In f64, ((m + 1e16) − 1e16) + 1 is
        // not what any other order gives.
        let with_values = |tree: &Tree, value: f64| {
            let mut tree = tree.clone();
            for node in &mut tree.nodes {
                node.value = value;
            }
            tree
        };
        let mut swapped = grown.clone();
        let root = &mut swapped.nodes[0];
        std::mem::swap(&mut root.left, &mut root.right);
        for (i, node) in swapped.nodes.iter_mut().enumerate() {
            node.value = 0.125 * (i + 1) as f64;
        }
        let trees = [
            with_values(&grown, 1e16),
            with_values(&swapped, -1e16),
            swapped.clone(),
        ];
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let (missing, kept) = level(&plan(run, 3, 0, &trees, &grower), false, 1)
            .await
            .unwrap();
        assert_eq!(missing, 0);
        let leaf = |tree: &Tree, b: u16| tree.nodes[tree.leaf_of(|_| b)].value;
        let expected = root_histogram(|b| {
            START + leaf(&trees[0], b) + leaf(&trees[1], b) + leaf(&trees[2], b)
        });
        assert_eq!(kept, expected);
        assert_ne!(
            expected,
            root_histogram(|b| START + leaf(&trees[2], b)),
            "the order of the trees does not show"
        );
        gbdt_resident::release(run);
    }

    #[tokio::test]
    async fn the_long_form_rebuilds_only_rows_not_held() {
        let run = "long-form";
        let tree = grow_first_tree(run).await;
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let before = gbdt_resident::find(run, (7, 10)).unwrap();
        let (missing, hist) = level(
            &plan(run, 1, 0, std::slice::from_ref(&tree), &grower),
            true,
            1,
        )
        .await
        .unwrap();
        assert_eq!(missing, 0);
        assert_eq!(
            hist,
            root_histogram(|b| START + tree.nodes[tree.leaf_of(|_| b)].value)
        );
        let after = gbdt_resident::find(run, (7, 10)).unwrap();
        assert!(Arc::ptr_eq(&before, &after), "held rows were rebuilt");
        assert_eq!(gbdt_resident::held(run).0, 1);
        gbdt_resident::release(run);
    }

    #[tokio::test]
    async fn the_long_form_keeps_held_batches_and_rebuilds_the_others() {
        let run = "mixed";
        let params = params();
        let cuts = cuts();
        let grower = Grower::new(&params, &cuts, Q);
        let plan = plan(run, 0, 0, &[], &grower);
        // Batch 7 ([`ROWS`]) is held; batch 8 is not.
        level(&plan, true, 1).await.unwrap();
        let held_before = gbdt_resident::find(run, (7, 10)).unwrap();
        let other = [(0i64, 0.0f64, 2u16), (1, 1.0, 1), (2, 1.0, MISSING_BIN)];
        let rows = |batch: i64, rows: &[(i64, f64, u16)]| {
            let values: Vec<String> = rows
                .iter()
                .map(|(k, y, b)| format!("({batch}, {k}, {y:?}, {b})"))
                .collect();
            format!(
                "SELECT * FROM (VALUES {}) AS v(kb, k, y, b)",
                values.join(", ")
            )
        };
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::from(GbdtLevel::default()));
        let sql = format!(
            "SELECT {NAME}('{plan}', named_struct('batch', kb, 'row', k), y, b) \
             FROM ({} UNION ALL {}) AS t",
            rows(7, &ROWS),
            rows(8, &other)
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let bytes = batches[0].column(0).as_binary::<i32>().value(0);
        let (missing, hist) = level_result_from_bytes(NAME, bytes, cuts[0].len() + 2).unwrap();
        assert_eq!(missing, 0);
        let mut expected = root_histogram(|_| START);
        for (_, y, b) in other {
            let slot = if b == MISSING_BIN {
                expected.len() - 1
            } else {
                usize::from(b)
            };
            expected[slot].add(Q.row_gradient(Objective::BinaryLogistic, START, y));
        }
        assert_eq!(hist, expected);
        let held_after = gbdt_resident::find(run, (7, 10)).unwrap();
        assert!(
            Arc::ptr_eq(&held_before, &held_after),
            "a held batch was rebuilt"
        );
        assert!(
            gbdt_resident::find(run, (8, 0)).is_some(),
            "batch 8 was not kept"
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
        let no_features = good.replace("\"features\":1", "\"features\":0");
        let null_row = "named_struct('batch', CAST(7 AS BIGINT), 'row', CAST(NULL AS BIGINT))";
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::from(GbdtLevel::default()));
        for sql in [
            format!("SELECT {NAME}('{wrong_round}', {KEY}) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{no_run}', {KEY}) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{no_features}', {KEY}) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('not json', {KEY}) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{good}', k) FROM (VALUES (1)) AS t(k)"),
            format!("SELECT {NAME}('{good}', {KEY}, y) FROM (VALUES (1, 1.0)) AS t(k, y)"),
            format!(
                "SELECT {NAME}('{good}', {KEY}, y, b, b) FROM (VALUES (1, 1.0, 0)) AS t(k, y, b)"
            ),
            format!(
                "SELECT {NAME}('{good}', {KEY}, y, b) FROM (VALUES (1, CAST(NULL AS DOUBLE), 0)) AS t(k, y, b)"
            ),
            format!(
                "SELECT {NAME}('{good}', {null_row}, y, b) FROM (VALUES (1, 1.0, 0)) AS t(k, y, b)"
            ),
        ] {
            let result = match ctx.sql(&sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let error = result.expect_err(&sql).to_string();
            assert!(error.contains(NAME), "{sql}: {error}");
        }
        // Two cuts: bins 0, 1 and 2 are real, and 3 is no bin at all.
        let past = format!(
            "SELECT {NAME}('{good}', {KEY}, y, arrow_cast(b, 'UInt16')) FROM (VALUES (1, 1.0, 3)) AS t(k, y, b)"
        );
        let error = ctx.sql(&past).await.expect("plans").collect().await;
        let error = error.expect_err(&past).to_string();
        assert!(
            error.contains("bin 3 of feature 0") && error.contains("last bin 2"),
            "{error}"
        );
        gbdt_resident::release("bad-input");
    }
}
