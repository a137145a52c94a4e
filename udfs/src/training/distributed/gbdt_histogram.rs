//! `__ember_gbdt_histogram('plan', gradient, bin0, bin1, ...)`: the
//! gradient histograms of one tree level, summed over every row of the binned
//! training table.
//!
//! Each partition places its rows in the tree so far ([`Tree::leaf_of`]) and
//! adds the row's gradient pair (stored by [`super::gbdt_gradient`] once per
//! round) to the histogram of the row's node if the plan asks for that node.
//! Partial histograms merge by integer addition, so the result is the same
//! whatever the partitioning. The driver reads the merged bytes and chooses
//! the splits.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt16Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{constant_text, constant_text_type};
use crate::training::distributed::gbdt_gradient::gradient_type;
use crate::training::gbdt::grad::GradPair;
use crate::training::gbdt::hist::{
    HistShape, NO_SLOT, SelectedRows, accumulate, from_bytes, merge, to_bytes,
};
use crate::training::gbdt::messages::LevelPlan;
use crate::training::gbdt::tree::Tree;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_histogram";

/// The histogram aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtHistogram {
    signature: Signature,
}

impl Default for GbdtHistogram {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for GbdtHistogram {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        // The pairs' struct as stored (a Parquet round trip may mark its
        // fields nullable); nulls are refused when summed.
        let is_pairs = |t: &DataType| match (t, gradient_type()) {
            (DataType::Struct(got), DataType::Struct(want)) => {
                got.len() == want.len()
                    && got
                        .iter()
                        .zip(want.iter())
                        .all(|(g, w)| g.name() == w.name() && g.data_type() == w.data_type())
            }
            _ => false,
        };
        if arg_types.len() < 3 || !is_pairs(&arg_types[1]) {
            return plan_err!(
                "{NAME}: expected (plan, gradient pairs from __ember_gbdt_gradient, bins...)"
            );
        }
        let mut types = vec![constant_text_type(), arg_types[1].clone()];
        types.extend(std::iter::repeat_n(DataType::UInt16, arg_types.len() - 2));
        Ok(types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[histogram]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let plan = LevelPlan::parse(NAME, &constant_text(NAME, &acc_args, 0)?)?;
        if acc_args.exprs.len() != plan.features + 2 {
            return exec_err!(
                "{NAME}: {} bin columns for {} features",
                acc_args.exprs.len() - 2,
                plan.features
            );
        }
        let shape = HistShape {
            slots: plan.build.len(),
            features: plan.features,
            stride: plan.stride,
        };
        let mut slot_of_node = vec![NO_SLOT; plan.tree.nodes.len()];
        for (slot, node) in plan.build.iter().enumerate() {
            slot_of_node[*node as usize] = slot as u32;
        }
        Ok(Box::new(HistogramAccumulator {
            hist: vec![GradPair::default(); shape.len()],
            shape,
            slot_of_node,
            tree: plan.tree,
            selected: SelectedRows::default(),
        }))
    }
}

#[derive(Debug)]
struct HistogramAccumulator {
    tree: Tree,
    shape: HistShape,
    slot_of_node: Vec<u32>,
    hist: Vec<GradPair>,
    selected: SelectedRows,
}

impl Accumulator for HistogramAccumulator {
    // Row `r` indexes the gradient pairs and every bin column alike.
    #[allow(clippy::needless_range_loop)]
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let pairs = values[1].as_struct();
        if pairs.logical_null_count() > 0
            || pairs.columns().iter().any(|c| c.logical_null_count() > 0)
        {
            return exec_err!("{NAME}: a null gradient pair");
        }
        let (g, h) = (
            pairs.column(0).as_primitive::<Int64Type>().values(),
            pairs.column(1).as_primitive::<Int64Type>().values(),
        );
        let bins: Vec<&[u16]> = values[2..]
            .iter()
            .map(|v| v.as_primitive::<UInt16Type>().values().as_ref())
            .collect();
        self.selected.clear();
        for r in 0..g.len() {
            let slot = self.slot_of_node[self.tree.leaf_of(|f| bins[f][r])];
            if slot != NO_SLOT {
                self.selected.push(r, slot, GradPair { g: g[r], h: h[r] });
            }
        }
        accumulate(&mut self.hist, self.shape, &self.selected, &bins);
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
            merge(&mut self.hist, &from_bytes(NAME, bytes, self.shape.len())?);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(to_bytes(&self.hist)))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(to_bytes(&self.hist))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.hist.len() * 16 + self.selected.rows.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::distributed::gbdt_gradient::{GbdtGradient, NAME as GRADIENT};
    use crate::training::gbdt::grad::Quantiser;
    use crate::training::gbdt::messages::GradientPlan;
    use crate::training::gbdt::tree::Grower;
    use crate::training::params::{GbdtParams, Objective};
    use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
    use datafusion::prelude::SessionContext;

    struct Setup {
        ctx: SessionContext,
        plan: String,
        gradient_plan: String,
        len: usize,
        stride: usize,
    }

    fn setup(q: Quantiser) -> Setup {
        let params = GbdtParams::default();
        let cuts = vec![vec![0.5f32, 1.5]];
        let grower = Grower::new(&params, &cuts, q);
        let plan = LevelPlan {
            features: 1,
            stride: grower.stride(),
            build: grower.pending().unwrap().to_vec(),
            tree: grower.tree().clone(),
        };
        let gradient_plan = GradientPlan {
            objective: "reg:squarederror".into(),
            quantiser: q,
        };
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::from(GbdtGradient::default()));
        ctx.register_udaf(AggregateUDF::from(GbdtHistogram::default()));
        Setup {
            ctx,
            len: plan.build.len() * plan.stride,
            stride: plan.stride,
            plan: serde_json::to_string(&plan).unwrap(),
            gradient_plan: serde_json::to_string(&gradient_plan).unwrap(),
        }
    }

    async fn histogram(ctx: &SessionContext, sql: &str) -> Result<Vec<u8>> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches[0].column(0).as_binary::<i32>().value(0).to_vec())
    }

    #[tokio::test]
    async fn sums_the_stored_pairs_by_bin_with_missing_values_last() {
        let q = Quantiser { scale_log2: 30 };
        let s = setup(q);
        let rows = [
            (1.0, 0.0, 0u16),
            (2.0, 0.5, 2),
            (4.0, 0.0, 0),
            (8.0, 1.0, 65535),
        ];
        let values: Vec<String> = rows
            .iter()
            .map(|(y, m, b)| format!("({y:?}, {m:?}, {b})"))
            .collect();
        let sql = format!(
            "SELECT {NAME}('{}', {GRADIENT}('{}', y, m), b) FROM (VALUES {}) AS t(y, m, b)",
            s.plan,
            s.gradient_plan,
            values.join(", ")
        );
        let bytes = histogram(&s.ctx, &sql).await.unwrap();
        let mut expected = vec![GradPair::default(); s.len];
        for (y, m, b) in rows {
            let slot = if b == u16::MAX {
                s.stride - 1
            } else {
                usize::from(b)
            };
            expected[slot].add(q.row_gradient(Objective::SquaredError, m, y));
        }
        assert_eq!(from_bytes(NAME, &bytes, s.len).unwrap(), expected);
    }

    #[tokio::test]
    async fn refuses_anything_but_non_null_gradient_pairs() {
        let s = setup(Quantiser { scale_log2: 30 });
        for pairs in [
            "1.0",
            "named_struct('g', 1, 'h', 2.5)",
            "named_struct('g', CAST(NULL AS BIGINT), 'h', CAST(1 AS BIGINT))",
        ] {
            let sql = format!(
                "SELECT {NAME}('{}', {pairs}, b) FROM (VALUES (0)) AS t(b)",
                s.plan
            );
            let error = histogram(&s.ctx, &sql).await.unwrap_err().to_string();
            assert!(error.contains(NAME), "{pairs}: {error}");
        }
    }
}
