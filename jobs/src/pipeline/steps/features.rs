//! `[step.features]`: transforms fitted on one table and applied to others.
//!
//! Fitting runs Ember's fit aggregates (`fit_standard_scaler`,
//! `fit_categories`, ...) as one query over the `fit_on` table, in parallel
//! across partitions; the fitted parameters are small JSON values, kept in
//! the run history, and pasted as literals into the apply query, which runs
//! the matching scalar functions (`standard_scale`, `one_hot`, ...) over each
//! table in `apply`. Transforms of one column chain in the order written
//! (impute, then scale): a transform is fitted on the column as the earlier
//! transforms left it, so the fit sees what the apply produces.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{StepContext, StepOutcome};
use crate::history::ArtifactKind;
use crate::pipeline::error::{PipelineError, Result};
use crate::pipeline::spec::{FeaturesStepSpec, TransformSpec};
use crate::train::{quote_ident, quote_literal};

/// A validated transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// `(x - mean) / std`.
    Standard,
    /// `(x - min) / (max - min)`.
    MinMax,
    /// Nulls replaced by the fitted mean or median.
    ImputeFitted(String),
    /// Nulls replaced by a constant.
    ImputeConstant(f64),
    /// Category → index; unseen → one more.
    Ordinal(Option<u32>),
    /// Category → one 0/1 column per category, plus one for unseen.
    OneHot(Option<u32>),
    /// Value → quantile bucket.
    Quantile(u32),
    /// Category → hash bucket (no fitting).
    Hash(u32),
}

impl Transform {
    /// Validates a transform's fields for its kind; errors name the step,
    /// the column and the field.
    pub fn from_spec(step: &str, t: &TransformSpec) -> std::result::Result<Self, String> {
        let at = format!("step '{step}': transform of column '{}'", t.column);
        let unused = |field: &str, present: bool| {
            if present {
                Err(format!(
                    "{at}: field `{field}` does not apply to kind '{}'",
                    t.kind
                ))
            } else {
                Ok(())
            }
        };
        let transform = match t.kind.as_str() {
            "standard" => Transform::Standard,
            "min_max" => Transform::MinMax,
            "impute" => match (t.strategy.as_deref(), t.value) {
                (Some(s @ ("mean" | "median")), None) => Transform::ImputeFitted(s.to_string()),
                (Some("mean" | "median"), Some(_)) => {
                    return Err(format!("{at}: `value` is only for strategy 'constant'"));
                }
                (Some("constant"), Some(v)) => Transform::ImputeConstant(v),
                (Some("constant"), None) => {
                    return Err(format!("{at}: strategy 'constant' needs `value`"));
                }
                (Some(s), _) => {
                    return Err(format!(
                        "{at}: strategy '{s}' is not one of mean, median, constant"
                    ));
                }
                (None, _) => {
                    return Err(format!(
                        "{at}: kind 'impute' needs `strategy` (mean, median or constant)"
                    ));
                }
            },
            "ordinal" => Transform::Ordinal(t.max_categories),
            "one_hot" => Transform::OneHot(t.max_categories),
            "quantile" => match t.buckets {
                Some(n) if n >= 2 => Transform::Quantile(n),
                _ => {
                    return Err(format!(
                        "{at}: kind 'quantile' needs `buckets` of at least 2"
                    ));
                }
            },
            "hash" => match t.buckets {
                Some(n) if n >= 1 => Transform::Hash(n),
                _ => return Err(format!("{at}: kind 'hash' needs `buckets` of at least 1")),
            },
            other => {
                return Err(format!(
                    "{at}: kind '{other}' is not one of standard, min_max, impute, ordinal, one_hot, quantile, hash"
                ));
            }
        };
        let is = |k: &str| t.kind == k;
        unused("strategy", t.strategy.is_some() && !is("impute"))?;
        unused("value", t.value.is_some() && !is("impute"))?;
        unused(
            "buckets",
            t.buckets.is_some() && !(is("quantile") || is("hash")),
        )?;
        unused(
            "max_categories",
            t.max_categories.is_some() && !(is("ordinal") || is("one_hot")),
        )?;
        Ok(transform)
    }

    /// The fit aggregate over `input`, if this transform is fitted.
    fn fit_sql(&self, input: &str) -> Option<String> {
        match self {
            Transform::Standard => Some(format!("fit_standard_scaler({input})")),
            Transform::MinMax => Some(format!("fit_min_max_scaler({input})")),
            Transform::ImputeFitted(strategy) => {
                Some(format!("fit_imputer({input}, {})", quote_literal(strategy)))
            }
            Transform::Ordinal(max) | Transform::OneHot(max) => Some(match max {
                Some(m) => format!("fit_categories({input}, {m})"),
                None => format!("fit_categories({input})"),
            }),
            Transform::Quantile(n) => Some(format!("fit_quantiles({input}, {n})")),
            Transform::ImputeConstant(_) | Transform::Hash(_) => None,
        }
    }

    /// The fitted parameters when no fitting is needed.
    fn fixed_params(&self) -> Option<String> {
        match self {
            Transform::ImputeConstant(v) => Some(serde_json::json!({ "value": v }).to_string()),
            Transform::Hash(n) => Some(serde_json::json!({ "buckets": n }).to_string()),
            _ => None,
        }
    }

    /// The output columns: (name, expression) over `input` with `params`.
    fn apply_sql(
        &self,
        input: &str,
        params: &str,
        output: &str,
    ) -> std::result::Result<Vec<(String, String)>, String> {
        let p = quote_literal(params);
        Ok(match self {
            Transform::Standard => {
                vec![(output.to_string(), format!("standard_scale({input}, {p})"))]
            }
            Transform::MinMax => vec![(output.to_string(), format!("min_max_scale({input}, {p})"))],
            Transform::ImputeFitted(_) | Transform::ImputeConstant(_) => {
                vec![(output.to_string(), format!("impute({input}, {p})"))]
            }
            Transform::Ordinal(_) => {
                vec![(output.to_string(), format!("ordinal_encode({input}, {p})"))]
            }
            Transform::Quantile(_) => {
                vec![(output.to_string(), format!("quantile_bucket({input}, {p})"))]
            }
            Transform::Hash(n) => vec![(
                output.to_string(),
                format!("feature_hash(CAST({input} AS VARCHAR), {n})"),
            )],
            Transform::OneHot(_) => {
                let categories = categories(params)?;
                let mut columns = Vec::with_capacity(categories.len() + 1);
                let mut used = std::collections::BTreeSet::new();
                for (i, category) in categories.iter().enumerate() {
                    let mut name = format!("{output}_{}", sanitize(category));
                    while !used.insert(name.clone()) {
                        name.push('_');
                    }
                    columns.push((name, format!("one_hot({input}, {p})[{}]", i + 1)));
                }
                columns.push((
                    format!("{output}__unseen"),
                    format!("one_hot({input}, {p})[{}]", categories.len() + 1),
                ));
                columns
            }
        })
    }
}

fn categories(params: &str) -> std::result::Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(params).map_err(|e| format!("fitted categories are not JSON: {e}"))?;
    let list = value
        .get("categories")
        .and_then(Value::as_array)
        .ok_or_else(|| "fitted categories have no `categories` list".to_string())?;
    Ok(list
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect())
}

/// A category as part of a column name: lower-case letters, digits and `_`.
fn sanitize(category: &str) -> String {
    let s: String = category
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "empty".to_string() } else { s }
}

/// The column expressions of a table as transforms rewrite them.
#[derive(Debug, Clone)]
struct Columns {
    columns: Vec<(String, String)>,
}

impl Columns {
    fn of(names: &[String]) -> Self {
        Self {
            columns: names.iter().map(|n| (n.clone(), quote_ident(n))).collect(),
        }
    }

    fn expr(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_str())
    }

    /// Replaces or appends `name`; a one-hot of a column replaces the column.
    fn set(&mut self, name: String, expr: String) {
        match self.columns.iter_mut().find(|(n, _)| n == &name) {
            Some(slot) => slot.1 = expr,
            None => self.columns.push((name, expr)),
        }
    }

    fn remove(&mut self, name: &str) {
        self.columns.retain(|(n, _)| n != name);
    }

    fn select(&self, table: &str) -> String {
        let list = self
            .columns
            .iter()
            .map(|(n, e)| format!("{e} AS {}", quote_ident(n)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("SELECT {list} FROM {}", quote_ident(table))
    }
}

/// Applies every transform (with `params`) to a table with columns `names`.
fn rewrite(
    step: &str,
    transforms: &[(TransformSpec, Transform)],
    params: &[String],
    names: &[String],
    table: &str,
) -> Result<Columns> {
    let mut columns = Columns::of(names);
    for ((spec, transform), params) in transforms.iter().zip(params) {
        let input = columns
            .expr(&spec.column)
            .ok_or_else(|| {
                PipelineError::Contract(format!(
                    "step '{step}': table '{table}' has no column '{}' (columns: {})",
                    spec.column,
                    names.join(", ")
                ))
            })?
            .to_string();
        let output = spec.output.clone().unwrap_or_else(|| spec.column.clone());
        let made = transform.apply_sql(&input, params, &output).map_err(|e| {
            PipelineError::Contract(format!("step '{step}': column '{}': {e}", spec.column))
        })?;
        if matches!(transform, Transform::OneHot(_)) && spec.output.is_none() {
            columns.remove(&spec.column);
        }
        for (name, expr) in made {
            columns.set(name, expr);
        }
    }
    Ok(columns)
}

/// Fits the transforms on `fit_on`, then writes each `apply` output.
pub async fn run(ctx: &StepContext, spec: &FeaturesStepSpec) -> Result<StepOutcome> {
    let step = ctx.name().to_string();
    let transforms: Vec<(TransformSpec, Transform)> = spec
        .transforms
        .iter()
        .map(|t| Transform::from_spec(&step, t).map(|v| (t.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(PipelineError::Contract)?;
    let session = ctx.ember.session();
    let fit_names: Vec<String> = session
        .table(&spec.fit_on)
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();

    // Fit in rounds: a transform whose input depends on a transform not yet
    // fitted waits for the next round.
    let mut params: Vec<Option<String>> =
        transforms.iter().map(|(_, t)| t.fixed_params()).collect();
    while params.iter().any(Option::is_none) {
        let known: Vec<String> = params
            .iter()
            .map(|p| p.clone().unwrap_or_default())
            .collect();
        let ready = params.iter().position(Option::is_none).unwrap_or(0);
        // Columns as rewritten by every transform before `ready` (all fitted).
        let columns = rewrite(
            &step,
            &transforms[..ready],
            &known[..ready],
            &fit_names,
            &spec.fit_on,
        )?;
        let mut round = Vec::new();
        let mut touched = std::collections::BTreeSet::new();
        for (i, (t_spec, transform)) in transforms.iter().enumerate().skip(ready) {
            if params[i].is_some() {
                touched.insert(
                    t_spec
                        .output
                        .clone()
                        .unwrap_or_else(|| t_spec.column.clone()),
                );
                continue;
            }
            if touched.contains(&t_spec.column) {
                break;
            }
            let input = columns.expr(&t_spec.column).ok_or_else(|| {
                PipelineError::Contract(format!(
                    "step '{step}': table '{}' has no column '{}' (columns: {})",
                    spec.fit_on,
                    t_spec.column,
                    fit_names.join(", ")
                ))
            })?;
            if let Some(sql) = transform.fit_sql(input) {
                round.push((i, sql));
            }
            touched.insert(
                t_spec
                    .output
                    .clone()
                    .unwrap_or_else(|| t_spec.column.clone()),
            );
        }
        let query = format!(
            "SELECT {} FROM {}",
            round
                .iter()
                .enumerate()
                .map(|(k, (_, sql))| format!("{sql} AS f{k}"))
                .collect::<Vec<_>>()
                .join(", "),
            quote_ident(&spec.fit_on)
        );
        let batches = ctx.runner().query(&query).await?;
        let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| {
            PipelineError::Contract(format!(
                "step '{step}': fitting on '{}' returned no row",
                spec.fit_on
            ))
        })?;
        for (k, (i, _)) in round.iter().enumerate() {
            let value = datafusion::common::ScalarValue::try_from_array(batch.column(k), 0)?;
            let text = match value {
                datafusion::common::ScalarValue::Utf8(Some(s))
                | datafusion::common::ScalarValue::LargeUtf8(Some(s))
                | datafusion::common::ScalarValue::Utf8View(Some(s)) => s,
                other => {
                    return Err(PipelineError::Contract(format!(
                        "step '{step}': fitting column '{}' on '{}' gave {other} (is the table empty?)",
                        transforms[*i].0.column, spec.fit_on
                    )));
                }
            };
            params[*i] = Some(text);
        }
    }
    let params: Vec<String> = params.into_iter().map(Option::unwrap_or_default).collect();

    let mut fitted = serde_json::Map::new();
    for ((t_spec, _), p) in transforms.iter().zip(&params) {
        let key = format!("{}:{}", t_spec.column, t_spec.kind);
        fitted.insert(
            key,
            serde_json::from_str(p).unwrap_or(Value::String(p.clone())),
        );
    }
    let mut outcome = StepOutcome::default();
    outcome.artifacts.push((
        ArtifactKind::FeatureParams,
        step.clone(),
        Value::Object(fitted).to_string(),
    ));
    let apply: BTreeMap<String, String> = spec.apply.clone();
    for (input, output) in &apply {
        let names: Vec<String> = session
            .table(input)
            .await?
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let columns = rewrite(&step, &transforms, &params, &names, input)?;
        ctx.write_output(
            output,
            &columns.select(input),
            spec.partition_by_date,
            &mut outcome,
        )
        .await?;
    }
    Ok(outcome)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(column: &str, kind: &str) -> TransformSpec {
        TransformSpec {
            column: column.to_string(),
            kind: kind.to_string(),
            output: None,
            strategy: None,
            value: None,
            buckets: None,
            max_categories: None,
        }
    }

    #[test]
    fn fields_must_fit_the_kind() {
        let e = Transform::from_spec(
            "f",
            &TransformSpec {
                buckets: Some(4),
                ..spec("x", "standard")
            },
        )
        .unwrap_err();
        assert!(
            e.contains("column 'x'") && e.contains("`buckets` does not apply to kind 'standard'"),
            "{e}"
        );
        let e = Transform::from_spec("f", &spec("x", "impute")).unwrap_err();
        assert!(e.contains("needs `strategy`"), "{e}");
        let e = Transform::from_spec("f", &spec("x", "scale")).unwrap_err();
        assert!(e.contains("kind 'scale' is not one of"), "{e}");
        assert_eq!(
            Transform::from_spec(
                "f",
                &TransformSpec {
                    strategy: Some("constant".into()),
                    value: Some(0.0),
                    ..spec("x", "impute")
                }
            )
            .unwrap(),
            Transform::ImputeConstant(0.0)
        );
    }

    #[test]
    fn transforms_of_one_column_chain_and_one_hot_replaces_its_column() {
        let transforms = vec![
            (
                TransformSpec {
                    strategy: Some("median".into()),
                    ..spec("age", "impute")
                },
                Transform::ImputeFitted("median".into()),
            ),
            (spec("age", "standard"), Transform::Standard),
            (spec("plan", "one_hot"), Transform::OneHot(None)),
        ];
        let params = vec![
            r#"{"value":40}"#.to_string(),
            r#"{"mean":40,"std":10}"#.to_string(),
            r#"{"categories":["Basic","pro plus"]}"#.to_string(),
        ];
        let names = vec!["id".to_string(), "age".to_string(), "plan".to_string()];
        let columns = rewrite("f", &transforms, &params, &names, "t").unwrap();
        let got: Vec<&str> = columns.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            got,
            vec!["id", "age", "plan_basic", "plan_pro_plus", "plan__unseen"]
        );
        let age = columns.expr("age").unwrap();
        assert!(age.starts_with("standard_scale(impute(\"age\""), "{age}");
        assert!(columns.expr("plan__unseen").unwrap().ends_with("[3]"));
    }
}
