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
//! | [`gbdt_row_key`] | scalar | a key per row of the binned table |
//! | [`gbdt_level`] | aggregate | gradient histograms of one tree level's nodes |
//! | [`gbdt_release`] | scalar | `true`, after dropping a finished run's resident rows |
//! | [`logistic_newton`] | aggregate | gradient and Hessian sums at given coefficients |
//!
//! [`gbdt_resident`] keeps a run's binned rows ([`resident_rows`]) in each
//! process between level queries, and [`gbdt_tree_step`] grows a whole tree
//! from them in one Ballista job (its plan nodes are in `ember_core::tree_job`).

pub mod gbdt_bin;
pub mod gbdt_level;
pub mod gbdt_release;
pub mod gbdt_resident;
pub mod gbdt_row_key;
pub mod gbdt_sketch;
pub mod gbdt_tree_step;
pub mod logistic_newton;
pub mod resident_rows;
