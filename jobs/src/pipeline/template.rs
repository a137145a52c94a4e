//! `{{ name }}` placeholders in pipeline text.
//!
//! A pipeline's SQL and paths name the logical date and custom parameters
//! (`WHERE event_date = '{{ ds }}'`). Only substitution is offered, no
//! logic: date arithmetic belongs in SQL (`DATE '{{ ds }}' - INTERVAL '30 days'`),
//! where it is typed and tested. An unknown name is an error naming the step,
//! so a typo never turns into an empty string inside a query.

use std::collections::BTreeMap;

use super::error::{PipelineError, Result};

/// The values placeholders can name.
#[derive(Debug, Clone, Default)]
pub struct Values {
    values: BTreeMap<String, String>,
}

impl Values {
    /// Values from `pairs`.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            values: pairs.into_iter().collect(),
        }
    }

    /// Sets (or replaces) one value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    /// A copy with one more value.
    pub fn with(&self, name: &str, value: impl Into<String>) -> Self {
        let mut copy = self.clone();
        copy.set(name, value);
        copy
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Replaces every `{{ name }}` in `text`; `step` names the owner of the
    /// text in errors.
    pub fn render(&self, step: &str, text: &str) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                // An unclosed `{{` is kept as written (it may be SQL or JSON).
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let name = after[..end].trim();
            match self.values.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(PipelineError::Template {
                        step: step.to_string(),
                        name: name.to_string(),
                        known: self.values.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The names placeholders take when a pipeline is checked before it runs.
pub const BUILTIN: &[&str] = &[
    "ds",
    "ds_nodash",
    "run_id",
    "attempt",
    "pipeline",
    "pipeline_dir",
    "output_dir",
];

/// The names of the `{{ name }}` placeholders in `text`.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    names
}

/// Stand-in values for checking a pipeline before it runs: parameters keep
/// their defaults, the built-in names get values of the right shape.
pub fn sample_values(params: &BTreeMap<String, String>) -> Values {
    let mut values = Values::new(params.clone());
    for (name, value) in [
        ("ds", "2000-01-01"),
        ("ds_nodash", "20000101"),
        ("run_id", "1"),
        ("attempt", "1"),
        ("pipeline", "pipeline"),
        ("pipeline_dir", "/pipeline"),
        ("output_dir", "/output"),
    ] {
        values.set(name, value);
    }
    values
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::new([
            ("ds".to_string(), "2026-11-01".to_string()),
            ("region".to_string(), "eu".to_string()),
        ])
    }

    #[test]
    fn placeholders_are_replaced_with_or_without_spaces() {
        let text = "WHERE d = '{{ ds }}' AND r = '{{region}}'";
        assert_eq!(
            values().render("s", text).unwrap(),
            "WHERE d = '2026-11-01' AND r = 'eu'"
        );
    }

    #[test]
    fn unknown_names_are_errors_naming_the_step_and_the_name() {
        let e = values()
            .render("labels", "{{ dss }}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("step 'labels'") && e.contains("dss") && e.contains("ds, region"),
            "{e}"
        );
    }

    #[test]
    fn text_without_placeholders_and_unclosed_braces_are_kept() {
        assert_eq!(values().render("s", "SELECT 1").unwrap(), "SELECT 1");
        assert_eq!(values().render("s", "a {{ b").unwrap(), "a {{ b");
    }
}
