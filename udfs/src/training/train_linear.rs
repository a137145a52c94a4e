//! `train_linear(label, feature, ... [, 'params'])`: least squares per group.
//!
//! Returns the fitted model as Ember linear JSON (the format `predict` reads),
//! one per group with `GROUP BY`. The state is the moments of [`super::linear`]
//! — a few hundred numbers whatever the row count — so partitions on
//! different executors reduce their rows locally and only the moments travel.
//! Parameters: `l2` (ridge penalty, default 0). Rows with a null label are
//! skipped; a null or NaN feature is an error (impute it first: a linear model
//! has no notion of a missing value).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::scoring::model::ember_linear::{FORMAT, LinearModelFile, VERSION};
use crate::training::args::{TrainingArgs, coerce_training_args, training_args};
use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::booster::check_label;
use crate::training::gbdt::sketch::take_u64;
use crate::training::linear::{Moments, solve_linear};
use crate::training::params::{LinearParams, parse_param_text};

const NAME: &str = "train_linear";

/// The `train_linear` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainLinear {
    signature: Signature,
}

impl Default for TrainLinear {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainLinear {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for TrainLinear {
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
            format!("{}[moments]", args.name),
            DataType::LargeBinary,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let args = training_args(NAME, &acc_args, 0)?;
        let params = LinearParams::from_map(NAME, &parse_param_text(NAME, &args.params)?)?;
        Ok(Box::new(LinearAccumulator {
            moments: Moments::new(args.features.len() + 1),
            args,
            params,
        }))
    }
}

#[derive(Debug)]
struct LinearAccumulator {
    args: TrainingArgs,
    params: LinearParams,
    moments: Moments,
}

fn moments_to_bytes(m: &Moments) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + (m.means.len() + m.comoments.len()) * 8);
    out.extend_from_slice(&m.count.to_le_bytes());
    out.extend_from_slice(&(m.means.len() as u64).to_le_bytes());
    for x in m.means.iter().chain(&m.comoments) {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn moments_from_bytes(bytes: &[u8], width: usize) -> TrainResult<Moments> {
    let mut input = bytes;
    let count = take_u64(NAME, &mut input)?;
    let k = take_u64(NAME, &mut input)?;
    let mut m = Moments::new(width);
    if k != width as u64 || input.len() != (m.means.len() + m.comoments.len()) * 8 {
        return Err(TrainError::Message {
            function: NAME,
            reason: "moments state has the wrong shape".into(),
        });
    }
    let mut floats = input
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    for x in m.means.iter_mut().chain(m.comoments.iter_mut()) {
        *x = floats.next().unwrap_or(0.0);
    }
    m.count = count;
    Ok(m)
}

impl Accumulator for LinearAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let d = self.args.features.len();
        let label = values[0].as_primitive::<Float64Type>();
        let features: Vec<_> = values[1..=d]
            .iter()
            .map(|v| v.as_primitive::<Float64Type>())
            .collect();
        let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(label.len()); d + 1];
        for r in 0..label.len() {
            if label.is_null(r) {
                continue;
            }
            let y = label.value(r);
            check_label(NAME, &self.args.label, y)?;
            for (f, feature) in features.iter().enumerate() {
                let x = if feature.is_null(r) {
                    f64::NAN
                } else {
                    feature.value(r)
                };
                if !x.is_finite() {
                    return Err(TrainError::Feature {
                        function: NAME,
                        feature: self.args.features[f].clone(),
                        reason: format!("is {} in a labelled row; impute it first (COALESCE) — a linear model has no missing-value rule", if feature.is_null(r) { "null".to_string() } else { x.to_string() }),
                    }
                    .into());
                }
                columns[f].push(x);
            }
            columns[d].push(y);
        }
        self.moments.add_columns(&columns);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(binary) = states
            .first()
            .and_then(|s| s.as_any().downcast_ref::<LargeBinaryArray>())
        else {
            return exec_err!("{NAME}: state is not binary");
        };
        for state in binary.iter().flatten() {
            let other = moments_from_bytes(state, self.moments.width())?;
            self.moments.merge(&other);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(moments_to_bytes(
            &self.moments,
        )))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fit = solve_linear(NAME, &self.moments, self.params.l2, &self.args.features)?;
        let mut params = serde_json::Map::new();
        params.insert("l2".into(), self.params.l2.into());
        params.insert("rows".into(), self.moments.count.into());
        params.insert("label".into(), self.args.label.clone().into());
        let file = LinearModelFile {
            format: FORMAT.into(),
            version: VERSION,
            objective: "reg:squarederror".into(),
            feature_names: self.args.features.clone(),
            coefficients: fit.coefficients,
            intercept: fit.intercept,
            params,
        };
        let text = serde_json::to_string(&file)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(ScalarValue::Utf8(Some(text)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + (self.moments.means.len() + self.moments.comoments.len()) * 8
    }
}
