//! Internal aggregates and functions of the distributed trainer (`ember train`).
//!
//! Not meant to be called by users (their names start with `__ember_`), but
//! registered on every node like any Ember function, because the driver's
//! queries run where the data is. The driver keeps the model; each query
//! returns a small merged summary — sketches, histograms, Newton sums —
//! computed by the engine from per-partition partial aggregates, never rows.
//!
//! | function | kind | returns |
//! |---|---|---|
//! | [`gbdt_sketch`] | aggregate | label statistics and per-feature value sketches |
//! | [`gbdt_bin`] | scalar | a feature value's histogram bin |
//! | [`gbdt_gradient`] | scalar | a row's fixed-point gradient pair for a round |
//! | [`gbdt_histogram`] | aggregate | gradient histograms of one tree level's nodes |
//! | [`gbdt_leaf`] | scalar | a finished tree's output for a row of bins |
//! | [`logistic_newton`] | aggregate | gradient and Hessian sums at given coefficients |

pub mod gbdt_bin;
pub mod gbdt_gradient;
pub mod gbdt_histogram;
pub mod gbdt_leaf;
pub mod gbdt_sketch;
pub mod logistic_newton;
