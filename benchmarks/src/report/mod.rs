//! Benchmark reports: every run's time, the best and the median, per query
//! and engine, serialised as JSON, with a Markdown table ([`table`]) and a
//! chart ([`chart`]) drawn from the JSON alone, so a report from another
//! machine or from the Spark runner renders the same way.

mod chart;
mod files;
mod summary;
mod table;

pub use chart::svg_chart;
pub use files::{load_report, write_atomically, write_report_files};
pub use summary::summary_page;
pub use table::{TARGETS, Target, display_name, markdown_table};

use serde::{Deserialize, Serialize};

/// One query on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryReport {
    /// TPC-H query number.
    pub query: usize,
    /// Seconds of every run, in order.
    pub runs_s: Vec<f64>,
    /// Fastest run.
    pub best_s: f64,
    /// Median run.
    pub median_s: f64,
    /// Rows in the answer.
    pub rows: usize,
    /// Whether the answer matched the oracle (absent when not verified).
    pub verified: Option<bool>,
}

impl QueryReport {
    /// A report from the run times.
    pub fn new(query: usize, runs_s: Vec<f64>, rows: usize, verified: Option<bool>) -> Self {
        let mut sorted = runs_s.clone();
        sorted.sort_by(f64::total_cmp);
        let best_s = sorted.first().copied().unwrap_or(f64::NAN);
        let median_s = match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            query,
            runs_s,
            best_s,
            median_s,
            rows,
            verified,
        }
    }
}

/// All queries on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineReport {
    /// `datafusion`, `embedded`, `cluster`, `spark`, ...
    pub engine: String,
    /// What exactly ran: version, master, partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per query.
    pub queries: Vec<QueryReport>,
}

impl EngineReport {
    /// An empty report for `engine`.
    pub fn new(engine: String) -> Self {
        Self {
            engine,
            detail: None,
            queries: Vec::new(),
        }
    }

    /// The report of query `n`.
    pub fn query(&self, n: usize) -> Option<&QueryReport> {
        self.queries.iter().find(|q| q.query == n)
    }

    /// Sum of the best runs.
    pub fn total_best_s(&self) -> f64 {
        self.queries.iter().map(|q| q.best_s).sum()
    }
}

/// A TPC-H run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TpchReport {
    /// Scale factor.
    pub scale_factor: f64,
    /// Target partitions.
    pub partitions: usize,
    /// Runs per query and engine.
    pub runs: usize,
    /// Host name.
    pub host: String,
    /// Cores of the machine.
    pub cores: usize,
    /// Per engine.
    pub engines: Vec<EngineReport>,
}

impl TpchReport {
    /// A report of this machine.
    pub fn new(
        scale_factor: f64,
        partitions: usize,
        runs: usize,
        engines: Vec<EngineReport>,
    ) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            scale_factor,
            partitions,
            runs,
            host,
            cores,
            engines,
        }
    }

    /// The engine named `name`.
    pub fn engine(&self, name: &str) -> Option<&EngineReport> {
        self.engines.iter().find(|e| e.engine == name)
    }

    /// The query numbers of any engine, in order.
    pub fn query_numbers(&self) -> Vec<usize> {
        let mut numbers: Vec<usize> = self
            .engines
            .iter()
            .flat_map(|e| e.queries.iter().map(|q| q.query))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
    }

    /// Adds the engines of `other` (a run of the same scale factor, e.g. the
    /// Spark runner's own report); an engine already present is replaced.
    pub fn merge(&mut self, other: TpchReport) -> Result<(), String> {
        if other.scale_factor != self.scale_factor {
            return Err(format!(
                "scale factor {} does not match {}",
                other.scale_factor, self.scale_factor
            ));
        }
        for engine in other.engines {
            self.engines.retain(|e| e.engine != engine.engine);
            self.engines.push(engine);
        }
        Ok(())
    }

    /// Totals per engine, and each engine's ratio to the first.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        let base = self.engines.first().map(EngineReport::total_best_s);
        for e in &self.engines {
            let total = e.total_best_s();
            let ratio = base.map(|b| total / b).unwrap_or(f64::NAN);
            lines.push(format!(
                "{:<10} total (sum of best runs) {total:>8.3} s  ({ratio:.2}x {})",
                e.engine,
                self.engines
                    .first()
                    .map(|b| b.engine.as_str())
                    .unwrap_or("")
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_and_median() {
        let r = QueryReport::new(1, vec![3.0, 1.0, 2.0], 4, None);
        assert_eq!((r.best_s, r.median_s), (1.0, 2.0));
        let r = QueryReport::new(1, vec![4.0, 1.0, 2.0, 3.0], 4, None);
        assert_eq!(r.median_s, 2.5);
    }
}
