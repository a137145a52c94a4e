//! `__ember_gbdt_bin('[cut bit patterns]', value)`: a feature value's histogram bin (`UInt16`;
//! 65535 for null/NaN), with the cuts the driver chose from the sketch pass.
//! Used once, to write the compact binned copy of the training data.

use std::sync::Arc;

use arrow::array::{Array, AsArray, UInt16Array};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::training::exact_float::f32s_from_json;
use crate::training::gbdt::cuts::{MISSING_BIN, bin_of};

/// The function's name.
pub const NAME: &str = "__ember_gbdt_bin";

/// The binning function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtBin {
    signature: Signature,
}

impl Default for GbdtBin {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for GbdtBin {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("{NAME}: expected (cuts, value)");
        }
        Ok(vec![DataType::Utf8, DataType::Float64])
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt16)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(cuts))) = &args.args[0] else {
            return exec_err!("{NAME}: the cuts must be a constant string");
        };
        let cuts: Vec<f32> = match f32s_from_json(cuts) {
            Ok(c) => c,
            Err(e) => return exec_err!("{NAME}: invalid cuts: {e}"),
        };
        if cuts.len() >= usize::from(MISSING_BIN) {
            return exec_err!("{NAME}: {} cuts", cuts.len());
        }
        let values = args.args[1].to_array(args.number_rows)?;
        let values = values.as_primitive::<Float64Type>();
        let bins: UInt16Array = (0..values.len())
            .map(|r| {
                Some(if values.is_null(r) {
                    MISSING_BIN
                } else {
                    bin_of(&cuts, values.value(r))
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(bins)))
    }
}
