//! TPC-H: data, queries, the row counts the specification gives, and the
//! `ember-bench tpch` run.

mod generate;
mod queries;
mod run;

pub use generate::{GenerateError, TPCH_TABLES, generate, generate_cached};
pub use queries::{TpchQuery, query, query_numbers, scale_invariant_row_count, sf1_row_count};
pub use run::{Engine, TpchArgs, run};
