//! Why a model could not be trained.
//!
//! Training input is user data and user parameters: every problem is a
//! [`TrainError`] naming the function, column or parameter, never a panic. The
//! SQL functions turn it into an execution error; `ember train` prints it.

use datafusion::error::DataFusionError;

/// A training run that cannot produce a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// A parameter is unknown, of the wrong type or out of range.
    #[error("{function}: parameter '{param}' {reason}")]
    Param {
        /// The training function (`train_gbdt`, ...).
        function: &'static str,
        /// The parameter's name.
        param: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The label column cannot be trained on.
    #[error("{function}: label '{label}' {reason}")]
    Label {
        /// The training function.
        function: &'static str,
        /// The label column's name.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A feature column cannot be trained on.
    #[error("{function}: feature '{feature}' {reason}")]
    Feature {
        /// The training function.
        function: &'static str,
        /// The feature's name.
        feature: String,
        /// What is wrong with it.
        reason: String,
    },
    /// There is nothing to train on.
    #[error("{function}: no rows to train on ({reason})")]
    NoRows {
        /// The training function.
        function: &'static str,
        /// Why (all labels null, empty group, ...).
        reason: String,
    },
    /// The optimisation itself failed (singular system, no convergence).
    #[error("{function}: {reason}")]
    Numeric {
        /// The training function.
        function: &'static str,
        /// What happened and what to change.
        reason: String,
    },
    /// An internal message between the training driver and its aggregates could
    /// not be decoded (an Ember bug if it reaches a user).
    #[error("{function}: internal training message is invalid: {reason}")]
    Message {
        /// The function that read the message.
        function: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The trained model could not be written as JSON (an Ember bug if it
    /// reaches a user).
    #[error("cannot write the trained model as JSON: {reason}")]
    ModelText {
        /// What the serializer reported.
        reason: String,
    },
}

/// Results of training code.
pub type TrainResult<T> = Result<T, TrainError>;

impl From<TrainError> for DataFusionError {
    fn from(error: TrainError) -> Self {
        DataFusionError::Execution(error.to_string())
    }
}
