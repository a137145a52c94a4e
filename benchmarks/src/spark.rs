//! Apache Spark as one more engine of `ember-bench tpch`.
//!
//! Spark runs in its own process: `benchmarks/spark/tpch_spark.py --serve`,
//! started once per benchmark so its JVM stays warm, answers one query per
//! request line. `ember-bench` asks it for a run of a query between Ember's
//! runs of the same query, so Spark and Ember alternate run by run and
//! machine noise hits both. The runner times each run itself (SQL submitted
//! to every row collected in the driver, the rule Ember's runs follow) so the
//! pipe between the processes is not in the figure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{BenchError, Result};

/// How to start the Spark runner.
#[derive(Debug, Clone)]
pub struct SparkOptions {
    /// The Python with `pyspark` installed.
    pub python: PathBuf,
    /// `tpch_spark.py`.
    pub runner: PathBuf,
    /// `local[N]` or `spark://HOST:7077`.
    pub master: String,
    /// `spark.sql.shuffle.partitions`.
    pub partitions: usize,
    /// The TPC-H tables, one Parquet directory each: a path or a URL.
    pub data_dir: String,
    /// Spark driver memory, e.g. `4g`.
    pub driver_memory: String,
    /// Extra `KEY=VALUE` Spark settings.
    pub conf: Vec<String>,
}

impl SparkOptions {
    /// The runner shipped in this repository.
    pub fn default_runner() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("spark/tpch_spark.py")
    }
}

/// A running Spark runner; stopped when dropped.
pub struct SparkServer {
    child: Child,
    requests: Option<ChildStdin>,
    replies: BufReader<ChildStdout>,
    /// Spark's version and master, as the runner reported them.
    pub detail: String,
}

#[derive(Debug, Deserialize)]
struct Ready {
    spark: String,
    master: String,
    partitions: usize,
}

#[derive(Debug, Deserialize)]
struct Reply {
    seconds: Option<f64>,
    rows: Option<usize>,
    error: Option<String>,
}

impl SparkServer {
    /// Starts the runner and waits until Spark has registered the tables.
    pub fn start(options: &SparkOptions) -> Result<Self> {
        if !options.runner.is_file() {
            return Err(BenchError::Spark(format!(
                "{}: no Spark runner there (--spark-runner)",
                options.runner.display()
            )));
        }
        let mut command = Command::new(&options.python);
        command
            .arg(&options.runner)
            .arg("--serve")
            .args(["--data-dir", &options.data_dir])
            .args(["--master", &options.master])
            .args(["--partitions", &options.partitions.to_string()])
            .args(["--driver-memory", &options.driver_memory]);
        for setting in &options.conf {
            command.args(["--conf", setting]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                BenchError::Spark(format!(
                    "cannot run {} (--spark-python): {e}",
                    options.python.display()
                ))
            })?;
        let (Some(requests), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BenchError::Spark("the runner's pipes are missing".into()));
        };
        let mut server = SparkServer {
            child,
            requests: Some(requests),
            replies: BufReader::new(replies),
            detail: String::new(),
        };
        let line = server.read_line()?;
        let ready: Ready = serde_json::from_str(&line).map_err(|e| {
            BenchError::Spark(format!(
                "unexpected first line from the runner: {line:?} ({e})"
            ))
        })?;
        server.detail = format!(
            "Apache Spark {} {}, shuffle partitions {}",
            ready.spark, ready.master, ready.partitions
        );
        Ok(server)
    }

    /// Runs query `n` once; returns its seconds and the rows of its answer.
    pub fn run(&mut self, n: usize) -> Result<(f64, usize)> {
        let requests = self
            .requests
            .as_mut()
            .ok_or_else(|| BenchError::Spark("the runner is stopped".into()))?;
        writeln!(requests, "{{\"query\": {n}}}")
            .and_then(|()| requests.flush())
            .map_err(|e| BenchError::Spark(format!("the runner stopped listening: {e}")))?;
        let line = self.read_line()?;
        let reply: Reply = serde_json::from_str(&line)
            .map_err(|e| BenchError::Spark(format!("unexpected reply {line:?} ({e})")))?;
        match reply {
            Reply {
                error: Some(error), ..
            } => Err(BenchError::Spark(error)),
            Reply {
                seconds: Some(seconds),
                rows: Some(rows),
                ..
            } => Ok((seconds, rows)),
            _ => Err(BenchError::Spark(format!("incomplete reply {line:?}"))),
        }
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = self
            .replies
            .read_line(&mut line)
            .map_err(|e| BenchError::Spark(format!("reading the runner's reply: {e}")))?;
        if read == 0 {
            let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(BenchError::Spark(format!(
                "the runner exited ({status}); its error is above (is pyspark installed in --spark-python? Java 17 on the PATH?)"
            )));
        }
        Ok(line.trim().to_string())
    }
}

impl Drop for SparkServer {
    fn drop(&mut self) {
        // Closing stdin ends the runner's loop and stops Spark; kill it if it lingers.
        drop(self.requests.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
