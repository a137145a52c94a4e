//! Why a model file could not be loaded.
//!
//! A model file is user input: every problem with it is a [`ModelError`] that
//! names the file and says what is wrong, never a panic. Scoring functions turn
//! it into a planning error (while the query is planned) or an execution error
//! (when an executor loads the model).

use datafusion::error::DataFusionError;

/// A model that cannot be read, parsed or scored.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read at all.
    #[error("cannot read model '{file}': {reason}")]
    Read {
        /// The model's URI or path.
        file: String,
        /// What the storage layer reported.
        reason: String,
    },
    /// The file is not a model Ember recognises.
    #[error("model '{file}' is not an XGBoost JSON/UBJSON, LightGBM text or Ember model: {reason}")]
    UnknownFormat {
        /// The model's URI or path.
        file: String,
        /// What was found instead.
        reason: String,
    },
    /// The file has the right format but its content is broken (truncated,
    /// inconsistent arrays, a field of the wrong type).
    #[error("model '{file}' is malformed ({format}): {reason}")]
    Malformed {
        /// The model's URI or path.
        file: String,
        /// The format it was parsed as.
        format: &'static str,
        /// The field or structure that is wrong.
        reason: String,
    },
    /// The rows handed to the model do not fit it (an Ember bug if it reaches a user).
    #[error("model '{file}': {reason}")]
    Input {
        /// The model's URI or path.
        file: String,
        /// What does not fit.
        reason: String,
    },
    /// The model is valid but uses something Ember does not score.
    #[error("model '{file}' uses {what}, which Ember does not support")]
    Unsupported {
        /// The model's URI or path.
        file: String,
        /// The unsupported booster, objective or tree kind.
        what: String,
    },
}

impl ModelError {
    /// The model error as a planning error (raised while a query is planned).
    pub fn into_plan_error(self) -> DataFusionError {
        DataFusionError::Plan(self.to_string())
    }

    /// The model error as an execution error (raised while a task runs).
    pub fn into_exec_error(self) -> DataFusionError {
        DataFusionError::Execution(self.to_string())
    }
}

/// Shorthand for results of model loading.
pub type ModelResult<T> = std::result::Result<T, ModelError>;
