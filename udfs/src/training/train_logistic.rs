//! `train_logistic(label, feature, ... [, 'params'])`: logistic regression per group.
//!
//! Returns Ember linear JSON with objective `binary:logistic`. Each group's
//! rows are kept (Newton's method visits them once per iteration), sorted
//! into a canonical order and fitted when the group is complete, so the
//! result does not depend on how rows were partitioned. For one model over a
//! table too large for a group, `ember train --model logistic` runs the same
//! Newton iterations as distributed aggregates. Parameters: `l2` (default 0),
//! `max_iter` (100), `tol` (1e-10, largest relative coefficient step).
//! Labels must be 0 or 1; rows with a null label are skipped; a null or NaN
//! feature is an error.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::scoring::model::ember_linear::{FORMAT, LinearModelFile, VERSION};
use crate::training::args::{TrainingArgs, coerce_training_args, training_args};
use crate::training::error::TrainError;
use crate::training::logistic::{check_binary_label, fit_in_memory};
use crate::training::params::{LogisticParams, parse_param_text};
use crate::training::rows::RowBuffer;

const NAME: &str = "train_logistic";

/// The `train_logistic` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainLogistic {
    signature: Signature,
}

impl Default for TrainLogistic {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainLogistic {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for TrainLogistic {
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
        let params = LogisticParams::from_map(NAME, &parse_param_text(NAME, &args.params)?)?;
        Ok(Box::new(LogisticAccumulator {
            rows: RowBuffer::new(args.features.len()),
            args,
            params,
        }))
    }
}

#[derive(Debug)]
struct LogisticAccumulator {
    args: TrainingArgs,
    params: LogisticParams,
    rows: RowBuffer,
}

impl Accumulator for LogisticAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let start = self.rows.len();
        self.rows.append(NAME, &self.args.label, values)?;
        for y in &self.rows.labels[start..] {
            check_binary_label(NAME, &self.args.label, *y)?;
        }
        for (f, column) in self.rows.columns.iter().enumerate() {
            if let Some(x) = column[start..].iter().find(|x| !x.is_finite()) {
                return Err(TrainError::Feature {
                    function: NAME,
                    feature: self.args.features[f].clone(),
                    reason: format!(
                        "is {} in a labelled row; impute it first (COALESCE)",
                        if x.is_nan() {
                            "null or NaN".to_string()
                        } else {
                            x.to_string()
                        }
                    ),
                }
                .into());
            }
        }
        Ok(())
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
        self.rows.sort_canonically();
        let (beta, iterations) = fit_in_memory(
            NAME,
            &self.params,
            &self.rows.columns,
            &self.rows.labels,
            &self.args.features,
        )?;
        let mut params = serde_json::Map::new();
        params.insert("l2".into(), self.params.l2.into());
        params.insert("tol".into(), self.params.tol.into());
        params.insert("max_iter".into(), self.params.max_iter.into());
        params.insert("iterations".into(), iterations.into());
        params.insert("rows".into(), self.rows.len().into());
        params.insert("label".into(), self.args.label.clone().into());
        let file = LinearModelFile {
            format: FORMAT.into(),
            version: VERSION,
            objective: "binary:logistic".into(),
            feature_names: self.args.features.clone(),
            coefficients: beta[1..].to_vec(),
            intercept: beta[0],
            params,
        };
        let text = serde_json::to_string(&file)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(ScalarValue::Utf8(Some(text)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.rows.size()
    }
}
