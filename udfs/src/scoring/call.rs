//! The user-facing scoring functions (`predict`, `predict_raw`,
//! `predict_proba`, `predict_class`, `predict_raw_scores`) and how they are
//! planned.
//!
//! While a query is optimised, [`ScalarUDFImpl::simplify`] resolves the model
//! (a registered name, a path or a URI), loads it through the process cache,
//! checks the call against it (output kind, feature names, count and types) and
//! rewrites the call into the internal [`__ember_score`](super::pinned) form,
//! which carries the model's location and content identity as literals and the
//! features in the model's order. Errors therefore surface while planning, on
//! the client, naming the feature or the file; and the plan shipped to
//! executors is self-contained: the model travels by location and SHA-256, and
//! each executor loads it once into its own cache. The output column keeps the
//! name the user wrote (the optimizer preserves expression names).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility, lit,
};

use super::features::{feature_args, match_features};
use super::model_cache;
use super::model_ref;
use super::output::OutputKind;
use super::pinned::PinnedScoreFunc;
use crate::config::EmberConfig;

/// A scoring function as written in SQL: `<kind>(model, features...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScoringFunc {
    kind: OutputKind,
    signature: Signature,
}

impl ScoringFunc {
    /// The function returning `kind`.
    pub fn new(kind: OutputKind) -> Self {
        Self {
            kind,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The model argument of a call, which must be a string literal.
pub(crate) fn model_literal(function: &str, value: Option<&ScalarValue>) -> Result<String> {
    match value.and_then(|v| v.try_as_str().flatten()) {
        Some(s) => Ok(s.to_string()),
        None => plan_err!(
            "{function}: the first argument must be the model as a string literal: a path, an s3:// URI, or a name registered with SET ember.models.<name> = '<uri>'"
        ),
    }
}

impl ScalarUDFImpl for ScoringFunc {
    fn name(&self) -> &str {
        self.kind.function_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.data_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = self.name();
        if args.arg_fields.len() < 2 {
            return plan_err!(
                "{name}: expected the model and at least one feature, e.g. {name}('model.json', age, tenure)"
            );
        }
        model_literal(name, args.scalar_arguments[0])?;
        for field in &args.arg_fields[1..] {
            let t = field.data_type();
            let ok = t.is_numeric()
                || matches!(t, DataType::Boolean | DataType::Null | DataType::Struct(_));
            if !ok {
                return plan_err!(
                    "{name}: feature '{}' is {t}; model features must be numeric (cast it, or encode a category as a number, e.g. with feature_hash)",
                    field.name()
                );
            }
        }
        Ok(Arc::new(Field::new(name, self.kind.data_type(), true)))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!(
            "{}: the call was not resolved while planning: the optimizer's expression simplifier must run (check datafusion.optimizer.max_passes > 0, and with datafusion.optimizer.skip_failed_rules = true, an earlier error resolving the model may have been skipped)",
            self.name()
        )
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let name = self.name();
        let mut args = args.into_iter();
        let reference = match args.next() {
            Some(Expr::Literal(value, _)) => model_literal(name, Some(&value))?,
            _ => model_literal(name, None)?,
        };
        let config = EmberConfig::from_options(info.config_options());
        let location = model_ref::resolve(name, &reference, &config)?;
        let (model, content_id) =
            model_cache::load_current(&location).map_err(|e| e.into_plan_error())?;
        self.kind.check(&model)?;
        let data_type = |e: &Expr| info.get_data_type(e);
        let features = feature_args(name, args.collect(), data_type)?;
        let features = match_features(name, &model, features, data_type)?;
        let mut pinned_args = vec![lit(name), lit(location.0), lit(content_id)];
        pinned_args.extend(features);
        Ok(ExprSimplifyResult::Simplified(
            PinnedScoreFunc::udf().call(pinned_args),
        ))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(super::documentation(self.kind))
    }
}
