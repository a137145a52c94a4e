//! Ember's benchmarks and the data and oracles its tests share.
//!
//! * [`tpch`]: TPC-H data generated in-process (`tpchgen`) as Parquet, several
//!   files per table so scans split across executors, and the 22 queries;
//! * [`scoring`]: timing Ember's model evaluators in-process at a fixed
//!   thread count, for the side-by-side run against XGBoost and LightGBM;
//! * [`verify`]: comparing two engines' answers (exact for integers, strings
//!   and decimals, relative tolerance for floats, order-insensitive where the
//!   query does not order its result).

pub mod report;
pub mod scoring;
pub mod tpch;
pub mod verify;
