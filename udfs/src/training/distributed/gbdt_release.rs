//! `__ember_gbdt_release('run', key)`: drops the rows a process keeps for a
//! finished training run ([`super::gbdt_resident`]) and returns `true`
//! for every row. The driver runs it over the binned table at the end; it
//! reaches the processes that run that query's tasks, which are usually but
//! not always those that hold the run's rows; whatever it misses goes when
//! the run's rows expire or the memory budget needs them.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::training::distributed::gbdt_resident;

/// The function's name.
pub const NAME: &str = "__ember_gbdt_release";

/// The release function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GbdtRelease {
    signature: Signature,
}

impl Default for GbdtRelease {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for GbdtRelease {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("{NAME}: expected (run, row key)");
        }
        Ok(vec![DataType::Utf8, arg_types[1].clone()])
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(run))) = &args.args[0] else {
            return exec_err!("{NAME}: the run must be a constant string");
        };
        gbdt_resident::release(run);
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(vec![
            true;
            args.number_rows
        ]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::distributed::gbdt_resident::{ResidentRows, held, keep};
    use arrow::array::AsArray;
    use arrow::buffer::ScalarBuffer;
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn drops_the_runs_rows_and_keeps_every_row_of_the_query() {
        let run = "released";
        let rows = ResidentRows::new(
            0.0,
            ScalarBuffer::from(vec![1.0, 0.0]),
            vec![ScalarBuffer::from(vec![0u16, 1])],
            (3, 1),
        );
        keep(run, (3, 0), rows);
        assert_eq!(held(run).0, 1);
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::from(GbdtRelease::default()));
        let batches = ctx
            .sql(&format!(
                "SELECT count(*) FROM (VALUES (1), (2), (3)) AS t(k) WHERE {NAME}('{run}', k)"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let count = batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(count.value(0), 3);
        assert_eq!(held(run), (0, 0));
    }
}
