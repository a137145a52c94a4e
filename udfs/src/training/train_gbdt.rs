//! `train_gbdt(label, feature, ... [, 'params'])`: gradient-boosted trees per group.
//!
//! Returns the model as XGBoost JSON text (loadable by
//! `xgboost.Booster(model_file=...)` once written to a file, and scored by
//! `predict`). Each group's rows are kept and boosted when the group is
//! complete ([`super::gbdt::booster`]); groups train in parallel across
//! partitions and executors. Parameters use XGBoost's names and defaults
//! ([`super::params::GbdtParams`]): `objective` (binary:logistic for 0/1
//! labels, else reg:squarederror), `max_depth` 6, `eta` 0.3, `num_boost_round`
//! 100, `lambda` 1, `min_child_weight` 1, `gamma` 0, `max_bin` 256. Null or NaN
//! features are missing values (each split learns where they go); rows with a
//! null label are skipped.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{TrainingArgs, coerce_training_args, training_args};
use crate::training::error::TrainError;
use crate::training::gbdt::booster::train_in_memory;
use crate::training::params::{GbdtParams, parse_param_text};
use crate::training::rows::RowBuffer;

const NAME: &str = "train_gbdt";

/// The `train_gbdt` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainGbdt {
    signature: Signature,
}

impl Default for TrainGbdt {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainGbdt {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for TrainGbdt {
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
        Ok(DataType::Utf8)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[rows]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let args = training_args(NAME, &acc_args, 0)?;
        let params = GbdtParams::from_map(NAME, &parse_param_text(NAME, &args.params)?)?;
        Ok(Box::new(GbdtAccumulator {
            rows: RowBuffer::new(args.features.len()),
            args,
            params,
        }))
    }
}

#[derive(Debug)]
struct GbdtAccumulator {
    args: TrainingArgs,
    params: GbdtParams,
    rows: RowBuffer,
}

impl Accumulator for GbdtAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        Ok(self.rows.append(NAME, &self.args.label, values)?)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.rows.merge_states(NAME, states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.rows.to_state()])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.rows.is_empty() {
            return Err(TrainError::NoRows {
                function: NAME,
                reason: format!(
                    "label '{}' is null in every row of the group",
                    self.args.label
                ),
            }
            .into());
        }
        let model = train_in_memory(
            NAME,
            &self.args.label,
            &self.params,
            &self.rows.columns,
            &self.rows.labels,
            &self.args.features,
        )?;
        Ok(ScalarValue::Utf8(Some(model.to_xgboost_json()?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.rows.size()
    }
}
