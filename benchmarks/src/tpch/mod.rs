//! TPC-H: data, queries and the row counts the specification gives.

mod generate;
mod queries;

pub use generate::{GenerateError, TPCH_TABLES, generate, generate_cached};
pub use queries::{TpchQuery, query, query_numbers, scale_invariant_row_count, sf1_row_count};
