//! `__ember_gbdt_row_key()`: a key for each row of the binned training
//! table, so that a level query can find a batch's rows kept in memory
//! ([`super::gbdt_resident`]) by reading this one column.
//!
//! The key is a struct `{batch, row}`: a random 64-bit id drawn once per
//! call (one batch of the query that writes the binned table) and the row's
//! index in that batch. A batch read back is known by its first row's key,
//! checked against its length and last key. Two rows share a key only if two
//! calls draw the same id: for a billion rows (about 122,000 written batches)
//! the chance is about 4·10⁻¹⁰.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::training::distributed::resident_rows::RowKey;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_row_key";

/// The type of a row-key column: `{batch: Int64, row: Int64}`.
pub fn row_key_type() -> DataType {
    DataType::Struct(row_key_fields())
}

fn row_key_fields() -> Fields {
    Fields::from(vec![
        Field::new("batch", DataType::Int64, false),
        Field::new("row", DataType::Int64, false),
    ])
}

/// Whether `t` is a row-key column as written (a Parquet round trip may
/// mark its fields nullable).
pub fn is_row_key_type(t: &DataType) -> bool {
    match (t, row_key_type()) {
        (DataType::Struct(got), DataType::Struct(want)) => {
            got.len() == want.len()
                && got
                    .iter()
                    .zip(want.iter())
                    .all(|(g, w)| g.name() == w.name() && g.data_type() == w.data_type())
        }
        _ => false,
    }
}

/// The keys of a row-key column, or `None` if it is not one or has nulls.
pub fn row_keys(column: &dyn Array) -> Option<(&[i64], &[i64])> {
    let keys = column.as_struct_opt()?;
    if keys.num_columns() != 2
        || keys.logical_null_count() > 0
        || keys.columns().iter().any(|c| c.logical_null_count() > 0)
    {
        return None;
    }
    let batch = keys.column(0).as_primitive_opt::<Int64Type>()?;
    let row = keys.column(1).as_primitive_opt::<Int64Type>()?;
    Some((batch.values().as_ref(), row.values().as_ref()))
}

/// The key of row `r` of a column read by [`row_keys`].
pub fn key_at(keys: (&[i64], &[i64]), r: usize) -> RowKey {
    (keys.0[r], keys.1[r])
}

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
        Ok(row_key_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.is_empty() {
            return exec_err!("{NAME} takes no arguments");
        }
        let batch: i64 = rand::random();
        let batches = Int64Array::from(vec![batch; args.number_rows]);
        let rows: Int64Array = (0..args.number_rows as i64).map(Some).collect();
        let keys = StructArray::try_new(
            row_key_fields(),
            vec![Arc::new(batches), Arc::new(rows)],
            None,
        )?;
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn numbers_each_batch_from_zero_under_its_own_random_id() {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::from(GbdtRowKey::default()));
        let mut ids = Vec::new();
        for _ in 0..2 {
            let batches = ctx
                .sql(&format!(
                    "SELECT {NAME}() AS k FROM (VALUES (1), (2), (3)) AS t(x)"
                ))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let column = batches[0].column(0);
            assert!(is_row_key_type(column.data_type()));
            let keys = row_keys(column.as_ref()).unwrap();
            assert_eq!(keys.1, [0, 1, 2]);
            assert!(keys.0.iter().all(|b| *b == keys.0[0]));
            ids.push(keys.0[0]);
        }
        assert_ne!(ids[0], ids[1], "two calls drew the same batch id");
        assert!(row_keys(&Int64Array::from(vec![1, 2])).is_none());
    }
}
