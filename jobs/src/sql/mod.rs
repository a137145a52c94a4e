//! Running SQL on Ember: scripts of many statements, and writes that appear
//! complete or not at all.

pub mod bad_input;
pub mod guarded_plan;
pub mod runner;
pub mod staged_output;

pub use guarded_plan::plan_statement;
pub use runner::{SqlRunner, StatementKind, StatementOutcome};
pub use staged_output::StagedOutput;
