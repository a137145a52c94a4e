//! Matching a scoring call's arguments to the model's features.
//!
//! Features are passed after the model, in one of two ways:
//!
//! - as columns: `predict('churn', age, tenure, plan_code)`: each argument's
//!   column name is its feature name, and order does not matter;
//! - as one named struct, for computed features or names that differ from the
//!   column: `predict('churn', named_struct('age', age_days / 365.25, 'tenure', tenure))`
//!   (a struct-typed column works the same way).
//!
//! A model saved with feature names is matched by name (exactly, or
//! case-insensitively when that is unambiguous); a missing or surplus feature is
//! a planning error that names it. A model saved without names takes its
//! features by position, and the count must match. Features must be numeric or
//! boolean; they are cast to `Float64`, the evaluator's input type.

use arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{Cast, Expr};

use super::model::Model;

/// One feature argument: its name if it has one, and its expression.
#[derive(Debug, Clone)]
pub struct FeatureArg {
    pub name: Option<String>,
    pub expr: Expr,
}

/// Splits the feature arguments into named values, unpacking a single
/// `named_struct(...)` or struct-typed argument.
pub fn feature_args(
    function: &str,
    args: Vec<Expr>,
    data_type: impl Fn(&Expr) -> Result<DataType>,
) -> Result<Vec<FeatureArg>> {
    if let [single] = args.as_slice() {
        if let Expr::ScalarFunction(call) = single
            && call.func.name() == "named_struct"
        {
            return call
                .args
                .chunks(2)
                .map(|pair| match pair {
                    [Expr::Literal(name, _), value] => Ok(FeatureArg {
                        name: name.try_as_str().flatten().map(str::to_string),
                        expr: value.clone(),
                    }),
                    _ => plan_err!(
                        "{function}: named_struct must alternate literal names and values"
                    ),
                })
                .collect();
        }
        if let DataType::Struct(fields) = data_type(single)? {
            return Ok(fields
                .iter()
                .map(|f| FeatureArg {
                    name: Some(f.name().clone()),
                    expr: datafusion::functions::core::expr_fn::get_field(
                        single.clone(),
                        f.name().as_str(),
                    ),
                })
                .collect());
        }
    }
    Ok(args
        .into_iter()
        .map(|expr| FeatureArg {
            name: match &expr {
                Expr::Column(c) => Some(c.name.clone()),
                _ => None,
            },
            expr,
        })
        .collect())
}

/// Orders `args` as `model` expects them, cast to `Float64`.
pub fn match_features(
    function: &str,
    model: &Model,
    args: Vec<FeatureArg>,
    data_type: impl Fn(&Expr) -> Result<DataType>,
) -> Result<Vec<Expr>> {
    let ordered = match &model.feature_names {
        None => {
            if args.len() != model.num_features {
                return plan_err!(
                    "{function}: model {} takes {} features by position, got {}",
                    model.describe(),
                    model.num_features,
                    args.len()
                );
            }
            args
        }
        Some(names) => by_name(function, model, names, args)?,
    };
    ordered
        .into_iter()
        .map(|arg| {
            let label = arg.name.clone().unwrap_or_else(|| arg.expr.to_string());
            match data_type(&arg.expr)? {
                DataType::Float64 => Ok(arg.expr),
                t if t.is_numeric() || t == DataType::Boolean || t == DataType::Null => {
                    Ok(Expr::Cast(Cast::new(Box::new(arg.expr), DataType::Float64)))
                }
                t => plan_err!(
                    "{function}: feature '{label}' is {t}; model features must be numeric (cast it, or encode a category as a number, e.g. with feature_hash)"
                ),
            }
        })
        .collect()
}

fn by_name(
    function: &str,
    model: &Model,
    names: &[String],
    args: Vec<FeatureArg>,
) -> Result<Vec<FeatureArg>> {
    for (i, arg) in args.iter().enumerate() {
        if arg.name.is_none() {
            return plan_err!(
                "{function}: argument {} ({}) has no name, and model {} takes its features by name; pass a column, or named_struct('<feature>', <expression>, ...)",
                i + 2,
                arg.expr,
                model.describe()
            );
        }
    }
    let arg_names: Vec<&str> = args.iter().filter_map(|a| a.name.as_deref()).collect();
    let mut used = vec![false; args.len()];
    let mut ordered = Vec::with_capacity(names.len());
    for feature in names {
        let exact = arg_names.iter().position(|n| n == feature);
        let index = match exact {
            Some(i) => Some(i),
            None => {
                let folded: Vec<usize> = arg_names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.eq_ignore_ascii_case(feature))
                    .map(|(i, _)| i)
                    .collect();
                (folded.len() == 1).then(|| folded[0])
            }
        };
        let Some(index) = index else {
            return plan_err!(
                "{function}: model {} expects feature '{feature}', not found among the arguments ({})",
                model.describe(),
                arg_names.join(", ")
            );
        };
        if std::mem::replace(&mut used[index], true) {
            return plan_err!("{function}: argument '{}' is given twice", arg_names[index]);
        }
        ordered.push(args[index].clone());
    }
    if let Some(extra) = used.iter().position(|u| !u) {
        return plan_err!(
            "{function}: argument '{}' is not a feature of model {} (its features: {})",
            arg_names[extra],
            model.describe(),
            names.join(", ")
        );
    }
    Ok(ordered)
}
