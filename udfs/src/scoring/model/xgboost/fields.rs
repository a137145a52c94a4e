//! Typed access to the fields of a parsed XGBoost model document.
//!
//! XGBoost's JSON and UBJSON encodings decode to the same
//! [`serde_json::Value`] tree; every read goes through [`Doc`] so a missing or
//! mistyped field is a [`ModelError::Malformed`] naming the field's path.

use serde_json::Value;

use crate::scoring::model::{ModelError, ModelResult};

/// A model document being read, with the file name for messages.
pub(crate) struct Doc<'a> {
    pub file: &'a str,
    pub format: &'static str,
}

impl Doc<'_> {
    pub fn malformed(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Malformed {
            file: self.file.to_string(),
            format: self.format,
            reason: reason.into(),
        }
    }

    pub fn unsupported(&self, what: impl Into<String>) -> ModelError {
        ModelError::Unsupported {
            file: self.file.to_string(),
            what: what.into(),
        }
    }

    pub fn get<'v>(&self, value: &'v Value, path: &str, key: &str) -> ModelResult<&'v Value> {
        value
            .get(key)
            .ok_or_else(|| self.malformed(format!("missing field '{path}.{key}'")))
    }

    pub fn string<'v>(&self, value: &'v Value, path: &str, key: &str) -> ModelResult<&'v str> {
        self.get(value, path, key)?
            .as_str()
            .ok_or_else(|| self.malformed(format!("'{path}.{key}' is not a string")))
    }

    pub fn array<'v>(&self, value: &'v Value, path: &str, key: &str) -> ModelResult<&'v [Value]> {
        self.get(value, path, key)?
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.malformed(format!("'{path}.{key}' is not an array")))
    }

    /// A parameter XGBoost stores as a decimal string (`"num_class": "3"`).
    pub fn usize_param(&self, value: &Value, path: &str, key: &str) -> ModelResult<usize> {
        let field = self.get(value, path, key)?;
        let parsed = match field {
            Value::String(s) => s.trim().parse::<usize>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.malformed(format!(
                "'{path}.{key}' is not a non-negative integer: {field}"
            ))
        })
    }

    pub fn f32_array(&self, value: &Value, path: &str, key: &str) -> ModelResult<Vec<f32>> {
        self.array(value, path, key)?
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_f64().map(|x| x as f32),
                Value::Null => Some(f32::NAN),
                _ => None,
            })
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| self.malformed(format!("'{path}.{key}' holds a non-number")))
    }

    pub fn i64_array(&self, value: &Value, path: &str, key: &str) -> ModelResult<Vec<i64>> {
        self.array(value, path, key)?
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::Bool(b) => Some(i64::from(*b)),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| self.malformed(format!("'{path}.{key}' holds a non-integer")))
    }
}

/// Parses XGBoost's `base_score`: a scalar string (`"5E-1"`, XGBoost ≤ 3.0) or a
/// vector string (`"[5E-1,2E-1]"`, XGBoost ≥ 3.1), or a plain number.
pub(crate) fn parse_base_score(doc: &Doc<'_>, value: &Value) -> ModelResult<Vec<f32>> {
    let bad = || {
        doc.malformed(format!(
            "'learner.learner_model_param.base_score' is not a number or a list of numbers: {value}"
        ))
    };
    match value {
        Value::Number(n) => n.as_f64().map(|x| vec![x as f32]).ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let inner = s
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(s);
            inner
                .split(',')
                .map(|part| part.trim().parse::<f32>().map_err(|_| bad()))
                .collect()
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Doc<'static> {
        Doc {
            file: "m.json",
            format: "XGBoost JSON",
        }
    }

    #[test]
    fn base_score_reads_both_forms() {
        let d = doc();
        assert_eq!(
            parse_base_score(&d, &Value::from("5E-1")).unwrap(),
            vec![0.5]
        );
        assert_eq!(
            parse_base_score(&d, &Value::from("[5E-1,2.5E-1]")).unwrap(),
            vec![0.5, 0.25]
        );
        assert!(parse_base_score(&d, &Value::from("[oops]")).is_err());
    }

    #[test]
    fn a_missing_field_names_its_path() {
        let err = doc()
            .string(&serde_json::json!({}), "learner", "objective")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("learner.objective") && err.contains("m.json"),
            "{err}"
        );
    }
}
