//! Generated data sets for Ember's demonstrations.
//!
//! * [`churn_data`]: a synthetic subscription business (customers, monthly
//!   billing, messy clickstream telemetry) whose customers cancel for reasons
//!   their behaviour gives away, for the churn example (`ember demo churn`).
//!
//! The business is simulated in `subscriptions`, its telemetry in
//! `clickstream`, from the seeded streams of `random`; [`churn_data`] writes
//! it all (the Parquet tables through `tables`), at once or not at all.

pub mod churn_data;
mod clickstream;
mod random;
mod subscriptions;
mod tables;

pub use churn_data::{ChurnDataConfig, ChurnDataSummary, generate_churn_data};
