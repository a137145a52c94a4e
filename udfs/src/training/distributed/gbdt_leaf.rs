//! `__ember_gbdt_leaf('tree', bin0, bin1, ...)`: a finished tree's output for
//! each row of bins — what the driver adds to every row's margin after a round.

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array};

use arrow::datatypes::{DataType, UInt16Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::training::gbdt::tree::Tree;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_leaf";

/// The tree-output function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtLeaf {
    signature: Signature,
}

impl Default for GbdtLeaf {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for GbdtLeaf {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return plan_err!("{NAME}: expected (tree, bins...)");
        }
        let mut types = vec![DataType::Utf8];
        types.extend(std::iter::repeat_n(DataType::UInt16, arg_types.len() - 1));
        Ok(types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(tree))) = &args.args[0] else {
            return exec_err!("{NAME}: the tree must be a constant string");
        };
        let tree: Tree = match serde_json::from_str(tree) {
            Ok(t) => t,
            Err(e) => return exec_err!("{NAME}: invalid tree: {e}"),
        };
        tree.validate(NAME, args.args.len() - 1)?;
        let columns = args.args[1..]
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let bins: Vec<&[u16]> = columns
            .iter()
            .map(|c| c.as_primitive::<UInt16Type>().values().as_ref())
            .collect();
        let values: Float64Array = (0..args.number_rows)
            .map(|r| Some(tree.nodes[tree.leaf_of(|f| bins[f][r])].value))
            .collect();
        debug_assert_eq!(values.len(), args.number_rows);
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}
