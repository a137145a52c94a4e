//! The argument convention shared by the training aggregates:
//! `train_x(label, feature, ... [, 'params'])`.
//!
//! The label and features are numeric (any integer, float or decimal type,
//! or boolean) and are coerced to `Float64`; an optional last argument of a
//! string type holds the parameters ([`super::params`]) and must be a
//! constant. Feature names — recorded in the model so `predict` can match
//! columns by name — are the column names of the arguments (a computed
//! expression is named by its SQL text; alias it in a subquery to choose).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column, Literal, TryCastExpr};

/// Whether a type holds text (a parameter string).
pub fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// The type constant text arguments (parameters, driver messages) are
/// coerced to. An aggregate's arguments are expanded to one value per row of
/// every batch; as a plain string a 10 kB tree would be copied 8,192 times
/// per batch, as a dictionary it is stored once with a key per row.
pub fn constant_text_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The text of a constant argument: a string literal, possibly dictionary-encoded or cast.
fn literal_text(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    fn scalar_text(value: &ScalarValue) -> Option<String> {
        match value {
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                Some(s.clone().unwrap_or_default())
            }
            ScalarValue::Dictionary(_, inner) => scalar_text(inner),
            _ => None,
        }
    }
    if let Some(literal) = expr.downcast_ref::<Literal>() {
        return scalar_text(literal.value());
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return literal_text(cast.expr());
    }
    None
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean | DataType::Null)
}

/// Coerces `label, features... [, params]`: numbers to `Float64`, the
/// parameter string kept. `leading` internal arguments (driver messages,
/// strings) come first and are kept as they are.
pub fn coerce_training_args(
    function: &str,
    arg_types: &[DataType],
    leading: usize,
) -> Result<Vec<DataType>> {
    let data = arg_types.len().saturating_sub(leading);
    if data < 2 {
        return plan_err!(
            "{function}: expected (label, feature, ... [, 'params']), got {} argument(s)",
            data
        );
    }
    let last = arg_types.len() - 1;
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i < leading || (i == last && is_text(t) && i > leading + 1) {
                Ok(constant_text_type())
            } else if is_numeric(t) {
                Ok(DataType::Float64)
            } else {
                let what = if i == leading { "the label".to_string() } else { format!("feature argument {}", i - leading) };
                plan_err!("{function}: {what} has type {t}; labels and features must be numeric (cast it, or encode a category first)")
            }
        })
        .collect()
}

/// The name of an argument: its column's name through any casts, else its SQL text.
pub fn argument_name(expr: &Arc<dyn PhysicalExpr>) -> String {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return column.name().to_string();
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return argument_name(cast.expr());
    }
    if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        return argument_name(cast.expr());
    }
    expr.to_string()
}

/// The arguments of one training call, as an accumulator sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingArgs {
    /// The label's name.
    pub label: String,
    /// Feature names, in argument order.
    pub features: Vec<String>,
    /// The parameter string ("" if none).
    pub params: String,
}

/// Reads a training call's arguments after `leading` internal ones.
pub fn training_args(
    function: &str,
    args: &AccumulatorArgs,
    leading: usize,
) -> Result<TrainingArgs> {
    let exprs = &args.exprs[leading.min(args.exprs.len())..];
    let Some((label, rest)) = exprs.split_first() else {
        return plan_err!("{function}: missing the label argument");
    };
    let (features, params) = match rest.split_last() {
        Some((last, init)) if !init.is_empty() && is_text(&last.data_type(args.schema)?) => {
            let Some(text) = literal_text(last) else {
                return plan_err!(
                    "{function}: the parameters (last argument) must be a constant string"
                );
            };
            (init, text)
        }
        _ => (rest, String::new()),
    };
    if features.is_empty() {
        return plan_err!("{function}: expected at least one feature after the label");
    }
    Ok(TrainingArgs {
        label: argument_name(label),
        features: features.iter().map(argument_name).collect(),
        params,
    })
}

/// Reads a constant string argument (a driver message) at `index`.
pub fn constant_text(function: &str, args: &AccumulatorArgs, index: usize) -> Result<String> {
    let Some(expr) = args.exprs.get(index) else {
        return plan_err!("{function}: missing argument {index}");
    };
    match literal_text(expr) {
        Some(text) => Ok(text),
        None => plan_err!("{function}: argument {index} must be a constant string"),
    }
}
