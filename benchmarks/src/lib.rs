//! Ember's benchmarks and the data and oracles its tests share.
//!
//! * [`tpch`]: TPC-H data generated in-process (`tpchgen`) as Parquet, several
//!   files per table so scans split across executors, the 22 queries, and
//!   `ember-bench tpch`, which times them on DataFusion, Ember and Spark;
//! * [`spark`]: Apache Spark as one more engine, in its own process;
//! * [`report`]: the JSON report, its Markdown table and its SVG chart;
//! * [`scoring`]: timing Ember's model evaluators in-process at a fixed
//!   thread count, for the side-by-side run against XGBoost and LightGBM;
//! * [`verify`]: comparing two engines' answers (exact for integers, strings
//!   and decimals, relative tolerance for floats, order-insensitive where the
//!   query does not order its result).

pub mod error;
pub mod report;
pub mod scoring;
pub mod spark;
pub mod tpch;
pub mod verify;

pub use error::{BenchError, Result};
