//! Ember's own linear and logistic regression models.
//!
//! Written by Ember's trainers (`train_linear`, `train_logistic`) and read by
//! the scoring functions. The format is plain JSON, fields checked strictly:
//!
//! ```json
//! {
//!   "format": "ember-linear",
//!   "version": 1,
//!   "objective": "reg:squarederror",
//!   "feature_names": ["age", "tenure"],
//!   "coefficients": [0.25, -1.5],
//!   "intercept": 3.0,
//!   "params": {"l2": 0.0}
//! }
//! ```
//!
//! `objective` is `reg:squarederror` (the prediction is the margin) or
//! `binary:logistic` (the prediction is `1 / (1 + exp(-margin))`), named as in
//! XGBoost so one vocabulary covers every model. The margin is
//! `intercept + Σ coefficients[i] · x[i]` in `f64`, summed in feature order. A
//! row with a null or NaN feature has no prediction (NULL): unlike trees, a
//! linear model has no learned direction for missing values. `params` records
//! the training parameters and is not read when scoring.

use arrow::array::Float64Array;
use serde::{Deserialize, Serialize};

use crate::scoring::model::{
    Link, Model, ModelError, ModelFormat, ModelResult, Precision, Predictor,
};

/// The `format` value of an Ember linear model.
pub const FORMAT: &str = "ember-linear";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;

/// The on-disk form of an Ember linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// `reg:squarederror` or `binary:logistic`.
    pub objective: String,
    /// One name per coefficient.
    pub feature_names: Vec<String>,
    /// One coefficient per feature.
    pub coefficients: Vec<f64>,
    /// The intercept (bias).
    pub intercept: f64,
    /// Training parameters, recorded for provenance.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// A loaded Ember linear model.
#[derive(Debug)]
pub struct LinearModel {
    coefficients: Vec<f64>,
    intercept: f64,
}

impl LinearModel {
    /// Margins for rows `start..` (one output per row). Rows with a null feature
    /// are given 0 here and masked as null by the caller; a NaN feature makes a NaN.
    pub fn score(&self, columns: &[&Float64Array], start: usize, out: &mut [f64]) {
        out.fill(self.intercept);
        for (column, w) in columns.iter().zip(&self.coefficients) {
            let values = &column.values()[start..start + out.len()];
            for (o, x) in out.iter_mut().zip(values) {
                *o += w * x;
            }
        }
    }
}

/// Builds a [`Model`] from a decoded Ember model document.
pub fn from_json_value(source: &str, value: serde_json::Value) -> ModelResult<Model> {
    let malformed = |reason: String| ModelError::Malformed {
        file: source.to_string(),
        format: "Ember linear JSON",
        reason,
    };
    let file: LinearModelFile =
        serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    if file.format != FORMAT {
        return Err(ModelError::UnknownFormat {
            file: source.to_string(),
            reason: format!("format '{}' (expected '{FORMAT}')", file.format),
        });
    }
    if file.version != VERSION {
        return Err(ModelError::Unsupported {
            file: source.to_string(),
            what: format!(
                "format version {} (this build reads version {VERSION})",
                file.version
            ),
        });
    }
    if file.coefficients.len() != file.feature_names.len() {
        return Err(malformed(format!(
            "{} coefficients for {} feature names",
            file.coefficients.len(),
            file.feature_names.len()
        )));
    }
    crate::scoring::model::check_shape(source, "Ember linear JSON", file.feature_names.len(), 1)?;
    let link = match file.objective.as_str() {
        "reg:squarederror" => Link::Identity,
        "binary:logistic" => Link::Sigmoid { scale: 1.0 },
        other => {
            return Err(ModelError::Unsupported {
                file: source.to_string(),
                what: format!("objective '{other}'"),
            });
        }
    };
    Ok(Model {
        source: source.to_string(),
        format: ModelFormat::EmberLinear,
        objective: file.objective,
        num_features: file.feature_names.len(),
        feature_names: Some(file.feature_names),
        num_outputs: 1,
        link,
        precision: Precision::F64,
        average_over: None,
        predictor: Predictor::EmberLinear(LinearModel {
            coefficients: file.coefficients,
            intercept: file.intercept,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_the_margin_and_masks_null_rows() {
        let json = serde_json::json!({
            "format": "ember-linear", "version": 1, "objective": "reg:squarederror",
            "feature_names": ["a", "b"], "coefficients": [2.0, -1.0], "intercept": 0.5
        });
        let model = Model::from_bytes("m.json", json.to_string().as_bytes()).unwrap();
        let a = Float64Array::from(vec![Some(1.0), None]);
        let b = Float64Array::from(vec![Some(3.0), Some(1.0)]);
        let scores = model.raw_scores(&[&a, &b]).unwrap();
        assert_eq!(scores.values[0], 0.5 + 2.0 - 3.0);
        assert!(scores.nulls.unwrap().is_null(1));
    }

    #[test]
    fn an_unknown_field_is_an_error_naming_it() {
        let json = r#"{"format":"ember-linear","version":1,"objective":"reg:squarederror",
            "feature_names":["a"],"coefficients":[1],"intercept":0,"interceptt":1}"#;
        let err = Model::from_bytes("m.json", json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("interceptt") && err.contains("m.json"),
            "{err}"
        );
    }
}
