//! `__ember_gbdt_row_key()`: a key for each row of the binned training
//! table, so that a level query can find a batch's rows kept in memory
//! ([`super::gbdt_resident`]) by reading this one column.
//!
//! Each call draws a random 64-bit start and numbers its rows from it. A
//! batch read back is known by its first key, checked against its length
//! and last key; two batches share a first key only if two random draws
//! land within a batch of each other (about one chance in 2⁴⁴ per pair of
//! batches).

use std::sync::Arc;

use arrow::array::Int64Array;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The function's name.
pub const NAME: &str = "__ember_gbdt_row_key";

/// The row-key function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtRowKey {
    signature: Signature,
}

impl Default for GbdtRowKey {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for GbdtRowKey {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.is_empty() {
            return exec_err!("{NAME} takes no arguments");
        }
        let start: i64 = rand::random();
        let keys: Int64Array = (0..args.number_rows as i64)
            .map(|i| Some(start.wrapping_add(i)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}
