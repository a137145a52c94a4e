//! `__ember_gbdt_sketch(label, feature, ...)`: the first pass of distributed
//! boosting — label statistics (count, exact sum, whether all are 0/1) and a
//! deterministic value sketch per feature ([`crate::training::gbdt::sketch`]),
//! merged across partitions. Rows with a null label are skipped, as training skips them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{coerce_training_args, training_args};
use crate::training::gbdt::booster::{LabelStats, check_label};
use crate::training::gbdt::messages::SketchState;
use crate::training::gbdt::sketch::{DEFAULT_CAPACITY, FeatureSketch};

/// The function's name.
pub const NAME: &str = "__ember_gbdt_sketch";

/// The sketch aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtSketch {
    signature: Signature,
}

impl Default for GbdtSketch {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for GbdtSketch {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_training_args(NAME, arg_types, 0)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sketch]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let args = training_args(NAME, &acc_args, 0)?;
        Ok(Box::new(SketchAccumulator {
            state: SketchState {
                labels: LabelStats::empty(),
                features: vec![FeatureSketch::new(DEFAULT_CAPACITY); args.features.len()],
            },
            label: args.label,
        }))
    }
}

#[derive(Debug)]
struct SketchAccumulator {
    label: String,
    state: SketchState,
}

impl Accumulator for SketchAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let d = self.state.features.len();
        let Some(label) = values[0].as_primitive_opt::<Float64Type>() else {
            return exec_err!("{NAME}: the label is not a DOUBLE column");
        };
        for r in 0..label.len() {
            if label.is_null(r) {
                continue;
            }
            check_label("train_gbdt", &self.label, label.value(r))?;
            self.state.labels.add(label.value(r));
        }
        for (sketch, column) in self.state.features.iter_mut().zip(&values[1..=d]) {
            let Some(column) = column.as_primitive_opt::<Float64Type>() else {
                return exec_err!("{NAME}: a feature is not a DOUBLE column");
            };
            for r in 0..column.len() {
                if label.is_valid(r) {
                    sketch.add(column.is_valid(r).then(|| column.value(r)));
                }
            }
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
            self.state.merge(&SketchState::from_bytes(NAME, bytes)?)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(self.state.to_bytes()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(self.state.to_bytes())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.state.features.len() * DEFAULT_CAPACITY * 24
    }
}
