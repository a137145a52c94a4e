//! Model scoring: XGBoost, LightGBM and Ember models evaluated natively over
//! Arrow, in SQL, on every executor.
//!
//! | function | returns |
//! |---|---|
//! | `predict(model, features...)` | the prediction: probability of the positive class for a binary classifier, the value for a regressor (`DOUBLE`) |
//! | `predict_raw(model, features...)` | the margin / raw score before the objective's transform (`DOUBLE`) |
//! | `predict_proba(model, features...)` | class probabilities of a classifier, `[1 - p, p]` for a binary one (`LIST<DOUBLE>`) |
//! | `predict_class(model, features...)` | the predicted class index of a classifier (`BIGINT`) |
//! | `predict_raw_scores(model, features...)` | every raw score, one per class (`LIST<DOUBLE>`) |
//!
//! `model` is a string literal: a local path, a `file://` or `s3://` URI, or a
//! name registered with `SET ember.models.<name> = '<uri>'`. How features are
//! passed and matched is described in [`features`]; how a call is planned, in
//! [`call`]; the evaluators and their exactness guarantees, in [`model`].

pub mod call;
pub mod features;
pub mod model;
pub mod model_cache;
pub mod model_ref;
pub mod model_store;
pub mod output;
pub mod pinned;

use std::sync::{Arc, LazyLock};

use datafusion::logical_expr::{Documentation, DocumentationBuilder, ScalarUDF};

pub use output::OutputKind;

/// The scalar functions of this family (including the internal resolved form,
/// which executors must know to run a plan).
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut functions: Vec<Arc<ScalarUDF>> = OutputKind::ALL
        .into_iter()
        .map(|kind| Arc::new(ScalarUDF::from(call::ScoringFunc::new(kind))))
        .collect();
    functions.push(pinned::PinnedScoreFunc::udf());
    functions
}

static DOCS: LazyLock<Vec<(OutputKind, Documentation)>> = LazyLock::new(|| {
    OutputKind::ALL
        .into_iter()
        .map(|kind| {
            let (description, example) = match kind {
                OutputKind::Prediction => (
                    "Scores rows with a model: the probability of the positive class for a binary classifier, the predicted value for a regressor. Features are matched to the model's feature names.",
                    "SELECT id, predict('models/churn.json', age, tenure, spend) AS p FROM customers",
                ),
                OutputKind::Raw => (
                    "The model's raw score (XGBoost margin, LightGBM raw score) before the objective's transform.",
                    "SELECT predict_raw('churn', age, tenure, spend) FROM customers",
                ),
                OutputKind::Probabilities => (
                    "Class probabilities of a classifier as a list, [1 - p, p] for a binary classifier.",
                    "SELECT predict_proba('s3://models/segment.ubj', named_struct('age', age, 'spend', spend)) FROM customers",
                ),
                OutputKind::Class => (
                    "The predicted class index of a classifier (p > 0.5 for a binary classifier, the most probable class otherwise).",
                    "SELECT predict_class('segment', age, spend) FROM customers",
                ),
                OutputKind::RawScores => (
                    "Every raw score of the model as a list, one per class (one element for a single-output model).",
                    "SELECT predict_raw_scores('segment', age, spend) FROM customers",
                ),
            };
            let doc = DocumentationBuilder::new_with_details(
                datafusion::logical_expr::DocSection {
                    include: true,
                    label: "Ember Scoring Functions",
                    description: None,
                },
                description,
                format!("{}(model, feature [, ...])", kind.function_name()),
            )
            .with_sql_example(format!("```sql\n{example}\n```"))
            .with_argument(
                "model",
                "A string literal: a path, a file:// or s3:// URI, or a name registered with SET ember.models.<name> = '<uri>'. XGBoost JSON/UBJSON, LightGBM text and Ember linear models are recognised from the file's content.",
            )
            .with_argument(
                "feature",
                "Numeric columns named like the model's features (any order), or one named_struct('<feature>', <expr>, ...). A model saved without feature names takes its features by position.",
            )
            .build();
            (kind, doc)
        })
        .collect()
});

pub(crate) fn documentation(kind: OutputKind) -> &'static Documentation {
    let index = OutputKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    &DOCS[index].1
}
