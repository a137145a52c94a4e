//! Drift between the rows a model was trained on and the rows it scores:
//! the population stability index (PSI) per column.
//!
//! The baseline's quantiles (Ember's `fit_quantiles`, exact and mergeable)
//! cut each column into bins; both tables are counted per bin (nulls are a
//! bin of their own, so a column that starts arriving empty drifts too) in
//! one grouped query per table; then
//! `PSI = Σ (actual% − expected%) · ln(actual% / expected%)`, with shares
//! floored at 0.0001 so an empty bin does not make it infinite. The usual
//! reading: below 0.1 stable, 0.1–0.25 worth a look, above 0.25 shifted.

use std::collections::BTreeMap;

use datafusion::common::ScalarValue;

use super::error::{PipelineError, Result};
use crate::sql::SqlRunner;
use crate::train::{quote_ident, quote_literal};

/// Default number of quantile bins.
pub const DEFAULT_BINS: u32 = 10;
/// Default PSI that records a warning.
pub const DEFAULT_WARN: f64 = 0.1;
/// Default PSI that fails the step.
pub const DEFAULT_FAIL: f64 = 0.25;
const FLOOR: f64 = 1e-4;

/// PSI of one column.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnDrift {
    /// The column.
    pub column: String,
    /// Its population stability index.
    pub psi: f64,
}

/// PSI from per-bin counts (`None` = the null bin).
pub fn psi(expected: &BTreeMap<Option<i64>, u64>, actual: &BTreeMap<Option<i64>, u64>) -> f64 {
    let e_total: u64 = expected.values().sum();
    let a_total: u64 = actual.values().sum();
    if e_total == 0 || a_total == 0 {
        return 0.0;
    }
    let bins: std::collections::BTreeSet<&Option<i64>> =
        expected.keys().chain(actual.keys()).collect();
    bins.into_iter()
        .map(|b| {
            let e = (expected.get(b).copied().unwrap_or(0) as f64 / e_total as f64).max(FLOOR);
            let a = (actual.get(b).copied().unwrap_or(0) as f64 / a_total as f64).max(FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

fn string_of(value: ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s,
        _ => None,
    }
}

/// Bin counts of every column of `table`: column → bin → rows.
async fn counts(
    runner: &SqlRunner<'_>,
    table: &str,
    columns: &[String],
    cuts: &[String],
) -> Result<Vec<BTreeMap<Option<i64>, u64>>> {
    let parts: Vec<String> = columns
        .iter()
        .zip(cuts)
        .enumerate()
        .map(|(i, (c, p))| {
            format!(
                "SELECT {i} AS c, CAST(quantile_bucket(CAST({} AS DOUBLE), {}) AS BIGINT) AS b, count(*) AS n FROM {} GROUP BY 2",
                quote_ident(c),
                quote_literal(p),
                quote_ident(table)
            )
        })
        .collect();
    let sql = parts.join(" UNION ALL ");
    let batches = runner.query(&sql).await?;
    let mut out = vec![BTreeMap::new(); columns.len()];
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let c = ScalarValue::try_from_array(batch.column(0), row)?;
            let b = ScalarValue::try_from_array(batch.column(1), row)?;
            let n = ScalarValue::try_from_array(batch.column(2), row)?;
            let (ScalarValue::Int64(Some(c)), ScalarValue::Int64(n)) = (c, n) else {
                continue;
            };
            let bin = match b {
                ScalarValue::Int64(v) => v,
                _ => None,
            };
            if let Some(slot) = out.get_mut(c as usize) {
                *slot.entry(bin).or_insert(0) += n.unwrap_or(0).max(0) as u64;
            }
        }
    }
    Ok(out)
}

/// PSI of each column between `baseline` and `current`.
pub async fn population_stability(
    runner: &SqlRunner<'_>,
    baseline: &str,
    current: &str,
    columns: &[String],
    bins: u32,
) -> Result<Vec<ColumnDrift>> {
    if columns.is_empty() {
        return Ok(vec![]);
    }
    let fits = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "fit_quantiles(CAST({} AS DOUBLE), {bins}) AS q{i}",
                quote_ident(c)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let batches = runner
        .query(&format!("SELECT {fits} FROM {}", quote_ident(baseline)))
        .await?;
    let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| {
        PipelineError::Contract(format!("drift: baseline '{baseline}' returned no row"))
    })?;
    let mut cuts = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let text =
            string_of(ScalarValue::try_from_array(batch.column(i), 0)?).ok_or_else(|| {
                PipelineError::Contract(format!(
                    "drift: column '{column}' of baseline '{baseline}' has no values"
                ))
            })?;
        cuts.push(text);
    }
    let expected = counts(runner, baseline, columns, &cuts).await?;
    let actual = counts(runner, current, columns, &cuts).await?;
    Ok(columns
        .iter()
        .zip(expected.iter().zip(&actual))
        .map(|(c, (e, a))| ColumnDrift {
            column: c.clone(),
            psi: psi(e, a),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_psi_and_a_shift_has_the_textbook_value() {
        let e: BTreeMap<Option<i64>, u64> = [(Some(0), 50), (Some(1), 50)].into_iter().collect();
        assert_eq!(psi(&e, &e), 0.0);
        let a: BTreeMap<Option<i64>, u64> = [(Some(0), 25), (Some(1), 75)].into_iter().collect();
        // (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5
        let want = 0.25 * 2f64.ln() + 0.25 * 1.5f64.ln();
        assert!((psi(&e, &a) - want).abs() < 1e-12);
        // A column that starts arriving null drifts.
        let nulls: BTreeMap<Option<i64>, u64> = [(None, 100)].into_iter().collect();
        assert!(psi(&e, &nulls) > 1.0);
    }
}
