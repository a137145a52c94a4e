//! `__ember_score(kind, location, content_id, features...)`: a scoring call
//! resolved at planning time (see [`super::call`]).
//!
//! This is the form that reaches executors. It names the model by location and
//! content identity, and takes the features already ordered and cast to
//! `Float64`, so running it needs no session state beyond the process-wide
//! model cache: the first batch an executor sees loads the model, every other
//! batch and task reuses it.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::call::model_literal;
use super::model_cache;
use super::model_ref::ModelLocation;
use super::output::OutputKind;

/// The internal function's name.
pub const NAME: &str = "__ember_score";

/// The resolved scoring function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PinnedScoreFunc {
    signature: Signature,
}

static UDF: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::from(PinnedScoreFunc::new())));

impl Default for PinnedScoreFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl PinnedScoreFunc {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }

    /// The shared instance.
    pub fn udf() -> Arc<ScalarUDF> {
        Arc::clone(&UDF)
    }
}

fn kind_of(value: Option<&datafusion::common::ScalarValue>) -> Result<OutputKind> {
    let name = model_literal(NAME, value)?;
    match OutputKind::from_function_name(&name) {
        Some(kind) => Ok(kind),
        None => plan_err!("{NAME}: unknown output kind '{name}'"),
    }
}

impl ScalarUDFImpl for PinnedScoreFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        datafusion::common::internal_err!("{NAME}: return_field_from_args is used instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if args.arg_fields.len() < 4 {
            return plan_err!("{NAME}: expected kind, location, content id and features");
        }
        let kind = kind_of(args.scalar_arguments[0])?;
        Ok(Arc::new(Field::new(
            kind.function_name(),
            kind.data_type(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let literal = |i: usize| -> Result<Option<&datafusion::common::ScalarValue>> {
            match args.args.get(i) {
                Some(ColumnarValue::Scalar(v)) => Ok(Some(v)),
                _ => exec_err!("{NAME}: argument {} must be a string literal", i + 1),
            }
        };
        if args.args.len() < 4 {
            return exec_err!("{NAME}: expected kind, location, content id and features");
        }
        let kind = kind_of(literal(0)?)?;
        let location = ModelLocation(model_literal(NAME, literal(1)?)?);
        let content_id = model_literal(NAME, literal(2)?)?;
        let model =
            model_cache::load_pinned(&location, &content_id).map_err(|e| e.into_exec_error())?;
        kind.check(&model)?;
        let features: Vec<ArrayRef> = args.args[3..]
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<_>>()?;
        let mut columns = Vec::with_capacity(features.len());
        for (i, f) in features.iter().enumerate() {
            match f.as_primitive_opt::<Float64Type>() {
                Some(c) => columns.push(c),
                None => {
                    return exec_err!("{NAME}: feature {i} is {}, expected Float64", f.data_type());
                }
            }
        }
        let scores = model
            .raw_scores(&columns)
            .map_err(|e| e.into_exec_error())?;
        let result = kind.build(&model, scores)?;
        if result.len() != args.number_rows {
            return exec_err!(
                "{NAME}: scored {} rows of a batch of {}",
                result.len(),
                args.number_rows
            );
        }
        Ok(ColumnarValue::Array(result))
    }
}
