//! Gradient-boosted trees with the histogram method (XGBoost's `hist`).
//!
//! | file | job |
//! |---|---|
//! | [`sketch`] | deterministic, mergeable per-feature value summaries |
//! | [`cuts`] | bin boundaries from a sketch; value → bin |
//! | [`grad`] | fixed-point gradient pairs (exact, order-independent sums) |
//! | [`hist`] | per-node gradient histograms: accumulate, merge, serialise |
//! | [`split`] | the best split of a node from its histogram |
//! | `exact_scan` | the split scan over exact `f64` sums, AVX2 where the CPU has it |
//! | [`tree`] | trees over bins and the level-by-level [`tree::Grower`] |
//! | `node_sums` | in-memory nodes' bin sums, kept for sibling subtraction |
//! | [`booster`] | in-memory boosting for one group's rows |
//! | [`model`] | the trained model and its XGBoost JSON form |
//! | [`messages`] | what the distributed driver sends its aggregates |
//!
//! Determinism is a design goal, not an accident: the bins come from a
//! sketch whose result does not depend on how rows are partitioned, and
//! histograms sum fixed-point integers, so a model trained embedded, on a
//! cluster, or as one group of `train_gbdt` is bit-identical for the same rows.

pub mod booster;
pub mod cuts;
mod exact_scan;
pub mod grad;
pub mod hist;
pub mod messages;
pub mod model;
mod node_sums;
pub mod row_split;
pub mod sketch;
pub mod split;
pub mod tree;
