//! The harness of Ember's multi-process tests.
//!
//! [`cluster::TestCluster`] starts the real `ember-scheduler` and
//! `ember-executor` binaries on free loopback ports and waits until every
//! executor has registered. A cluster is stopped when its value is dropped,
//! which happens when a test passes or panics; the processes also carry
//! Linux's parent-death signal, so even a test binary that is killed leaves
//! nothing running. [`cluster::shared`] gives every test of one test binary
//! the same two-executor cluster.
//!
//! The binaries are found next to the test executable (`cargo test` builds
//! them, since the scheduler and executor crates have their own tests), or in
//! `$EMBER_BIN_DIR`.

// The harness of tests: a failure to start a cluster or read a fixture fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cluster;
pub mod command;
pub mod data;
pub mod scoring_fixtures;
pub mod sql;
pub mod training_fixtures;

/// Where tests run a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In-process scheduler and executor.
    Embedded,
    /// The shared cluster of separate processes.
    Cluster,
}
