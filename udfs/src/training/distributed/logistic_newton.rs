//! `__ember_logistic_newton('[coefficient bit patterns]', label, feature, ...)`: the
//! gradient and Hessian sums of the log loss at the given (intercept,
//! coefficients...) over every row, merged across partitions — one Newton
//! iteration of distributed logistic regression. Returns the sums as JSON.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::training::args::{TrainingArgs, coerce_training_args, constant_text, training_args};
use crate::training::error::TrainError;
use crate::training::exact_float::f64s_from_json;
use crate::training::logistic::{NewtonSums, check_binary_label};

/// The function's name.
pub const NAME: &str = "__ember_logistic_newton";

/// The Newton-sums aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LogisticNewton {
    signature: Signature,
}

impl Default for LogisticNewton {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for LogisticNewton {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_training_args(NAME, arg_types, 1)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sums]", args.name),
            DataType::Utf8,
            true,
        ))])
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let beta: Vec<f64> = match f64s_from_json(&constant_text(NAME, &acc_args, 0)?) {
            Ok(b) => b,
            Err(e) => return exec_err!("{NAME}: invalid coefficients: {e}"),
        };
        let args = training_args(NAME, &acc_args, 1)?;
        if beta.len() != args.features.len() + 1 {
            return exec_err!(
                "{NAME}: {} coefficients for {} features",
                beta.len(),
                args.features.len()
            );
        }
        Ok(Box::new(NewtonAccumulator {
            sums: NewtonSums::new(args.features.len()),
            beta,
            args,
        }))
    }
}

#[derive(Debug)]
struct NewtonAccumulator {
    args: TrainingArgs,
    beta: Vec<f64>,
    sums: NewtonSums,
}

impl Accumulator for NewtonAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let d = self.args.features.len();
        let label = values[1].as_primitive::<Float64Type>();
        let features: Vec<_> = values[2..2 + d]
            .iter()
            .map(|v| v.as_primitive::<Float64Type>())
            .collect();
        let keep: Vec<usize> = (0..label.len()).filter(|r| label.is_valid(*r)).collect();
        let labels: Vec<f64> = keep.iter().map(|r| label.value(*r)).collect();
        for y in &labels {
            check_binary_label("train_logistic", &self.args.label, *y)?;
        }
        let mut columns = Vec::with_capacity(d);
        for (f, feature) in features.iter().enumerate() {
            let column: Vec<f64> = keep
                .iter()
                .map(|r| {
                    if feature.is_null(*r) {
                        f64::NAN
                    } else {
                        feature.value(*r)
                    }
                })
                .collect();
            if column.iter().any(|x| !x.is_finite()) {
                return Err(TrainError::Feature {
                    function: "train_logistic",
                    feature: self.args.features[f].clone(),
                    reason:
                        "is null, NaN or infinite in a labelled row; impute it first (COALESCE)"
                            .into(),
                }
                .into());
            }
            columns.push(column);
        }
        let views: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        self.sums.add_rows(&self.beta, &views, &labels);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(text) = states
            .first()
            .and_then(|s| s.as_any().downcast_ref::<StringArray>())
        else {
            return exec_err!("{NAME}: state is not text");
        };
        for json in text.iter().flatten() {
            let other: NewtonSums = match serde_json::from_str(json) {
                Ok(s) => s,
                Err(e) => return exec_err!("{NAME}: invalid state: {e}"),
            };
            if other.gradient.len() != self.sums.gradient.len()
                || other.hessian.len() != self.sums.hessian.len()
            {
                return exec_err!("{NAME}: state of the wrong width");
            }
            self.sums.merge(&other);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.evaluate().map(|v| vec![v])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match serde_json::to_string(&self.sums) {
            Ok(text) => Ok(ScalarValue::Utf8(Some(text))),
            Err(e) => exec_err!("{NAME}: {e}"),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + (self.sums.gradient.len() + self.sums.hessian.len() + self.beta.len()) * 8
    }
}
