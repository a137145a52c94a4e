//! Ember's engine layer: the one place that knows how a session is built.
//!
//! Ember runs on Apache DataFusion Ballista. A query is planned on the client,
//! planned again into stages on the scheduler and run as tasks on executors, and
//! each of those three processes decodes plans with its own function registry,
//! config options and codecs. If one of them lacks an Ember function or option,
//! the query fails (or, for options, silently runs with defaults) on that
//! process only. This crate therefore builds all three roles from the same
//! parts:
//!
//! * [`registry`]: Ember's functions (from `ember-udfs`) on top of DataFusion's
//!   and Ballista's, for every role;
//! * [`config`]: the `ember.*` option namespace and Ember's engine defaults;
//! * [`codec`]: Ember's logical and physical codecs, wrapping Ballista's;
//! * [`object_store`]: local files and S3 (from the standard AWS environment);
//! * [`data_roots`]: the paths a cluster process may read and write;
//! * [`cooperative`]: cross joins and unnests yield, so cancelled tasks stop;
//! * [`parallel_write`]: `COPY` and inserts write files in the tasks that
//!   compute the rows, not through one writer;
//! * [`dictionary_choice`]: those writers skip Parquet dictionaries for
//!   columns of distinct values, judged from the first batch;
//! * [`write_options`]: a write's format options (`COPY ... OPTIONS`,
//!   `SET datafusion.execution.parquet.*`) resolved into the plan on the
//!   client, so the scheduler plans the write with them;
//! * [`session`]: the session state, runtime and producers for each role;
//! * [`embedded`]: an in-process scheduler and executor, so a command with no
//!   cluster address works with nothing running;
//! * [`client`]: the entry point for users: a [`datafusion::prelude::SessionContext`]
//!   connected to a cluster or to an embedded one;
//! * [`auth`]: the cluster's shared token, required on every port and sent
//!   on every connection;
//! * [`tls`]: certificates, the CA a process trusts, and the scheduler's TLS
//!   listener;
//! * [`access`]: the token and CA a connecting process uses, applied to every
//!   connection Ballista opens;
//! * [`jobs_api`]: the scheduler's REST routes Ember adds (per-task placement
//!   and progress), served by `ember-scheduler` and the embedded scheduler alike.

pub mod access;
pub mod auth;
pub mod client;
pub mod codec;
pub mod config;
pub mod cooperative;
pub mod data_roots;
pub mod dictionary_choice;
pub mod embedded;
pub mod error;
pub mod jobs_api;
pub mod object_store;
pub mod parallel_write;
pub mod registry;
pub mod scheduler_service;
pub mod session;
pub mod tls;
pub mod tree_job;
pub mod write_options;

pub use client::{ClusterTarget, EmberContext};
pub use error::{EmberError, Result};

/// Ember's version, checked between the processes of a cluster.
pub const EMBER_VERSION: &str = env!("CARGO_PKG_VERSION");
