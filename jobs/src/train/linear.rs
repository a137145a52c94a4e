//! Least squares over a whole table: one `train_linear` aggregate.

use datafusion::common::ScalarValue;

use crate::error::{JobsError, Result};
use crate::train::{TrainEngine, quote_ident, quote_literal};

/// Trains least squares (ridge with `l2 > 0`) over `table`; returns Ember linear JSON text.
pub async fn train_linear(
    engine: &TrainEngine,
    table: &str,
    label: &str,
    features: &[String],
    l2: f64,
) -> Result<String> {
    let columns = std::iter::once(label)
        .chain(features.iter().map(String::as_str))
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT train_linear({columns}, {}) FROM {}",
        quote_literal(&format!("l2={l2:?}")),
        quote_ident(table)
    );
    match engine.single_value(&sql).await? {
        ScalarValue::Utf8(Some(text)) => Ok(text),
        other => Err(JobsError::Usage(format!(
            "internal: train_linear returned {other:?}"
        ))),
    }
}
