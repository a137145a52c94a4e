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

use arrow::array::{ArrayRef, AsArray, LargeBinaryArray};
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
        if arg_types.len() < 3 || arg_types[1] != gradient_type() {
            return plan_err!("{NAME}: expected (plan, gradient pairs, bins...)");
        }
        let mut types = vec![constant_text_type(), gradient_type()];
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
