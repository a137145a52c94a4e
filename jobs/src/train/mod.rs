//! The training driver behind `ember train`: one model over a whole table.
//!
//! The driver keeps the model and asks the engine for small merged summaries:
//! gradient-boosted trees need a sketch pass, a binning pass and then one
//! histogram query per tree level (or, on a cluster, one job per tree); logistic regression one Newton-sums query
//! per iteration; least squares one moments query. Rows never come to the
//! driver — partitions reduce them where they are and the engine merges the
//! partial results ([`ember_udfs::training::distributed`]).
//!
//! Data path (why it is shaped this way): after the sketch pass, the training
//! rows are rewritten once as a compact *binned* table — a row key, the label
//! and one `UInt16` bin per feature. The first tree level reads all of it;
//! every process keeps the batches it read, with their margins, gradients and
//! tree positions (`ember_udfs::training::distributed::gbdt_resident`), and
//! later levels read only the row keys, so no level re-decodes bins and no
//! round rewrites the table. A batch not kept where its partition ran is
//! reported missing and the level is asked again with every column, which
//! rebuilds it. Embedded, the binned table is held in memory (a `MemTable`)
//! and the level queries run on DataFusion in this process: a level is a few
//! milliseconds of work, and a Ballista job per level would cost more in
//! scheduling than in compute. On a cluster the binned table is Parquet under
//! the work directory (which must be shared storage when executors run on
//! other hosts); the first tree is grown with one level query per level
//! (which makes the executors keep the rows), and every later tree in one
//! Ballista job, a *tree job* ([`ember_core::tree_job`]): one stage per
//! level, whose tasks exchange their partitions' histograms through a hash
//! shuffle and each choose the same splits, so no level waits for a job to
//! be planned or for the driver. A tree job that finds a partition's rows
//! missing where its task ran returns no tree, and that tree is grown with
//! level queries instead; after three such jobs in a row, or one that
//! fails (a binned table of more than 32 partitions, for one), the rest of
//! the run uses level queries only.
//!
//! Determinism: bins come from an order-independent sketch and histograms
//! sum fixed-point integers, so embedded and cluster runs give bit-identical
//! trees. Linear and logistic models sum floating-point moments and agree to
//! rounding (≈1e-12 relative).

mod engine;
mod gbdt;
mod linear;
mod logistic;
mod model_file;

pub use engine::TrainEngine;
pub use gbdt::train_gbdt;
pub use linear::train_linear;
pub use logistic::train_logistic;
pub use model_file::write_model_file;

/// Progress of a training run, reported after each step.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainProgress {
    /// A preparatory pass finished (sketch, binning, ...).
    Pass(&'static str),
    /// `done` of `total` boosting rounds or Newton iterations finished.
    Step {
        /// Finished steps.
        done: usize,
        /// Planned steps (an upper bound for Newton iterations).
        total: usize,
    },
    /// Trees grown in one cluster job each (reported once, at the end, on a
    /// cluster): `jobs` tree jobs ran, of which `missing` found a
    /// partition's rows not kept where its task ran, and that tree was grown
    /// with level queries instead.
    TreeJobs {
        /// Tree jobs run.
        jobs: usize,
        /// Tree jobs that found rows missing.
        missing: usize,
    },
    /// Tree levels that had to re-read the binned table because the
    /// processes that ran them did not keep its rows (reported once, at the
    /// end, when there were any).
    Reread {
        /// Levels re-read.
        levels: usize,
        /// Levels in all.
        total: usize,
    },
}

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
