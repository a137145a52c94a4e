//! Typed training parameters, with XGBoost's names and defaults.
//!
//! Parameters arrive as a JSON object (the last argument of a training
//! function, `'{"max_depth": 4, "eta": 0.1}'`) or as `key=value` pairs (`ember
//! train --param max_depth=4`). Names follow XGBoost (`eta`, `lambda`,
//! `min_child_weight`, `max_bin`, ...) with scikit-learn style aliases
//! (`learning_rate`, `reg_lambda`, `n_estimators`), so a parameter set copied
//! from a notebook means the same thing here. An unknown name is an error that
//! lists the known ones: a typo must not silently train with defaults.

use serde_json::{Map, Value};

use crate::training::error::{TrainError, TrainResult};

/// The loss a model is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Squared error regression (`reg:squarederror`).
    SquaredError,
    /// Binary classification with labels 0/1 (`binary:logistic`).
    BinaryLogistic,
}

impl Objective {
    /// XGBoost's name for the objective.
    pub fn name(self) -> &'static str {
        match self {
            Objective::SquaredError => "reg:squarederror",
            Objective::BinaryLogistic => "binary:logistic",
        }
    }

    /// The objective with XGBoost's name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "reg:squarederror" => Some(Objective::SquaredError),
            "binary:logistic" => Some(Objective::BinaryLogistic),
            _ => None,
        }
    }

    fn parse(function: &'static str, value: &str) -> TrainResult<Self> {
        match value {
            "reg:squarederror" | "squarederror" | "regression" => Ok(Objective::SquaredError),
            "binary:logistic" | "logistic" | "binary" => Ok(Objective::BinaryLogistic),
            other => Err(TrainError::Param {
                function,
                param: "objective".into(),
                reason: format!("is '{other}'; supported: 'reg:squarederror', 'binary:logistic'"),
            }),
        }
    }

    /// The default objective for a label: binary logistic when every label is 0
    /// or 1 (XGBoost users expect a classifier there), squared error otherwise.
    pub fn for_label(all_zero_or_one: bool) -> Self {
        if all_zero_or_one {
            Objective::BinaryLogistic
        } else {
            Objective::SquaredError
        }
    }
}

/// The deepest tree Ember grows: a level's histograms grow as 2^depth (at
/// depth 12, 2,048 nodes × features × 258 bins), and deeper trees are rarely
/// useful with the histogram method.
pub const MAX_DEPTH: usize = 12;

/// Parameters of gradient-boosted trees (`train_gbdt`, `ember train --model gbdt`).
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams {
    /// The loss; `None` means "from the label" ([`Objective::for_label`]).
    pub objective: Option<Objective>,
    /// Boosting rounds (trees). Default 100.
    pub rounds: usize,
    /// Maximum tree depth, 1 to [`MAX_DEPTH`]. Default 6 (XGBoost's).
    pub max_depth: usize,
    /// Learning rate (shrinkage). Default 0.3.
    pub eta: f64,
    /// L2 regularisation on leaf weights. Default 1.
    pub lambda: f64,
    /// Minimum hessian sum in a child. Default 1.
    pub min_child_weight: f64,
    /// Minimum loss reduction to split (`gamma`). Default 0.
    pub gamma: f64,
    /// Maximum histogram bins per feature. Default 256.
    pub max_bins: usize,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            objective: None,
            rounds: 100,
            max_depth: 6,
            eta: 0.3,
            lambda: 1.0,
            min_child_weight: 1.0,
            gamma: 0.0,
            max_bins: 256,
        }
    }
}

/// Parameters of linear least squares (`train_linear`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinearParams {
    /// Ridge penalty on the coefficients (not the intercept). Default 0.
    pub l2: f64,
}

/// Parameters of logistic regression (`train_logistic`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticParams {
    /// Ridge penalty on the coefficients (not the intercept). Default 0.
    pub l2: f64,
    /// Newton iterations before giving up. Default 100.
    pub max_iter: usize,
    /// Convergence: largest coefficient step, relative. Default 1e-10.
    pub tol: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            l2: 0.0,
            max_iter: 100,
            tol: 1e-10,
        }
    }
}

/// Parses a parameter string: a JSON object, or comma-separated `key=value`
/// pairs. An empty string is no parameters.
pub fn parse_param_text(function: &'static str, text: &str) -> TrainResult<Map<String, Value>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    if text.starts_with('{') {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) | Err(_) => Err(TrainError::Param {
                function,
                param: "params".into(),
                reason: format!("is not a JSON object: {text}"),
            }),
        };
    }
    let mut map = Map::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(TrainError::Param {
                function,
                param: pair.to_string(),
                reason: "is not of the form key=value".into(),
            });
        };
        let value = value.trim();
        let parsed = serde_json::from_str::<Value>(value)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        map.insert(key.trim().to_string(), parsed);
    }
    Ok(map)
}

struct Reader<'a> {
    function: &'static str,
    map: &'a Map<String, Value>,
    known: &'static [&'static str],
}

impl Reader<'_> {
    fn check_names(&self) -> TrainResult<()> {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                return Err(TrainError::Param {
                    function: self.function,
                    param: key.clone(),
                    reason: format!("is unknown; known parameters: {}", self.known.join(", ")),
                });
            }
        }
        Ok(())
    }

    fn find(&self, names: &[&str]) -> Option<(&str, &Value)> {
        names
            .iter()
            .find_map(|name| self.map.get_key_value(*name).map(|(k, v)| (k.as_str(), v)))
    }

    fn number(&self, names: &[&str], default: f64, min: f64, max: f64) -> TrainResult<f64> {
        let Some((name, value)) = self.find(names) else {
            return Ok(default);
        };
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(x) if x.is_finite() && x >= min && x <= max => Ok(x),
            _ => Err(TrainError::Param {
                function: self.function,
                param: name.to_string(),
                reason: format!("is {value}; expected a number in [{min}, {max}]"),
            }),
        }
    }

    fn count(&self, names: &[&str], default: usize, min: usize, max: usize) -> TrainResult<usize> {
        let Some((name, value)) = self.find(names) else {
            return Ok(default);
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed.and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n >= min && n <= max => Ok(n),
            _ => Err(TrainError::Param {
                function: self.function,
                param: name.to_string(),
                reason: format!("is {value}; expected an integer in [{min}, {max}]"),
            }),
        }
    }

    fn objective(&self) -> TrainResult<Option<Objective>> {
        match self.find(&["objective"]) {
            None => Ok(None),
            Some((_, Value::String(s))) => Objective::parse(self.function, s).map(Some),
            Some((name, other)) => Err(TrainError::Param {
                function: self.function,
                param: name.to_string(),
                reason: format!("is {other}; expected a string"),
            }),
        }
    }
}

impl GbdtParams {
    /// Known parameter names (with aliases).
    pub const NAMES: &'static [&'static str] = &[
        "objective",
        "num_boost_round",
        "n_estimators",
        "rounds",
        "max_depth",
        "eta",
        "learning_rate",
        "lambda",
        "reg_lambda",
        "min_child_weight",
        "gamma",
        "min_split_loss",
        "max_bin",
        "max_bins",
        "tree_method",
    ];

    /// Reads GBDT parameters; anything not given keeps XGBoost's default.
    pub fn from_map(function: &'static str, map: &Map<String, Value>) -> TrainResult<Self> {
        let r = Reader {
            function,
            map,
            known: Self::NAMES,
        };
        r.check_names()?;
        if let Some((name, value)) = r.find(&["tree_method"])
            && value.as_str() != Some("hist")
        {
            return Err(TrainError::Param {
                function,
                param: name.to_string(),
                reason: format!("is {value}; Ember trains with the histogram method only ('hist')"),
            });
        }
        let d = Self::default();
        Ok(Self {
            objective: r.objective()?,
            rounds: r.count(
                &["num_boost_round", "n_estimators", "rounds"],
                d.rounds,
                1,
                100_000,
            )?,
            max_depth: r.count(&["max_depth"], d.max_depth, 1, MAX_DEPTH)?,
            eta: r.number(&["eta", "learning_rate"], d.eta, f64::MIN_POSITIVE, 1.0)?,
            lambda: r.number(&["lambda", "reg_lambda"], d.lambda, 0.0, 1e12)?,
            min_child_weight: r.number(&["min_child_weight"], d.min_child_weight, 0.0, 1e12)?,
            gamma: r.number(&["gamma", "min_split_loss"], d.gamma, 0.0, 1e12)?,
            max_bins: r.count(&["max_bin", "max_bins"], d.max_bins, 2, 65_534)?,
        })
    }

    /// The parameters as recorded in the model (XGBoost names, effective values).
    pub fn to_record(&self, objective: Objective) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("objective".into(), objective.name().into());
        m.insert("tree_method".into(), "hist".into());
        m.insert("num_boost_round".into(), self.rounds.into());
        m.insert("max_depth".into(), self.max_depth.into());
        m.insert("eta".into(), self.eta.into());
        m.insert("lambda".into(), self.lambda.into());
        m.insert("min_child_weight".into(), self.min_child_weight.into());
        m.insert("gamma".into(), self.gamma.into());
        m.insert("max_bin".into(), self.max_bins.into());
        m
    }
}

impl LinearParams {
    /// Known parameter names.
    pub const NAMES: &'static [&'static str] = &["l2", "alpha", "reg_lambda"];

    /// Reads linear parameters.
    pub fn from_map(function: &'static str, map: &Map<String, Value>) -> TrainResult<Self> {
        let r = Reader {
            function,
            map,
            known: Self::NAMES,
        };
        r.check_names()?;
        Ok(Self {
            l2: r.number(&["l2", "alpha", "reg_lambda"], 0.0, 0.0, 1e12)?,
        })
    }
}

impl LogisticParams {
    /// Known parameter names.
    pub const NAMES: &'static [&'static str] = &["l2", "reg_lambda", "max_iter", "tol"];

    /// Reads logistic parameters.
    pub fn from_map(function: &'static str, map: &Map<String, Value>) -> TrainResult<Self> {
        let r = Reader {
            function,
            map,
            known: Self::NAMES,
        };
        r.check_names()?;
        let d = Self::default();
        Ok(Self {
            l2: r.number(&["l2", "reg_lambda"], d.l2, 0.0, 1e12)?,
            max_iter: r.count(&["max_iter"], d.max_iter, 1, 10_000)?,
            tol: r.number(&["tol"], d.tol, 0.0, 1.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_xgboost_defaults() {
        let p = GbdtParams::from_map("train_gbdt", &Map::new()).unwrap();
        assert_eq!(
            (p.max_depth, p.eta, p.lambda, p.max_bins, p.rounds),
            (6, 0.3, 1.0, 256, 100)
        );
        assert_eq!(p.objective, None);
    }

    #[test]
    fn both_spellings_parse() {
        let json =
            parse_param_text("train_gbdt", r#"{"max_depth": 4, "learning_rate": "0.1"}"#).unwrap();
        let pairs = parse_param_text("train_gbdt", "max_depth=4, eta=0.1").unwrap();
        let a = GbdtParams::from_map("train_gbdt", &json).unwrap();
        let b = GbdtParams::from_map("train_gbdt", &pairs).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.max_depth, a.eta), (4, 0.1));
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |text: &str| {
            GbdtParams::from_map("train_gbdt", &parse_param_text("train_gbdt", text).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(err("max_depth=-1").contains("'max_depth'"));
        assert!(err("objective=multi:softmax").contains("'objective'"));
        assert!(err("max_dept=3").contains("'max_dept' is unknown"));
        assert!(err("tree_method=exact").contains("'tree_method'"));
        assert!(parse_param_text("train_gbdt", "{oops").is_err());
    }
}
