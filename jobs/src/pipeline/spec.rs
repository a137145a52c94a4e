//! The pipeline file, as written: TOML read with serde.
//!
//! Every struct denies unknown fields, so a misspelled key (`depends_om`,
//! `retires`) is an error with its line and column instead of a setting
//! silently ignored at 3 a.m. Text fields may hold `{{ name }}` placeholders
//! (see [`super::template`]); they are filled in per run, so the types here
//! keep them as strings.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name (history, outputs and schedules are keyed by it).
    pub name: String,
    /// What the pipeline is for, shown by `ember runs show`.
    #[serde(default)]
    pub description: Option<String>,
    /// Where step outputs go (relative to the pipeline file); default `output`.
    #[serde(default)]
    pub output_dir: Option<String>,
    /// Limit on the whole run (`"30m"`, `"2h"`); steps still running are cancelled.
    #[serde(default)]
    pub timeout: Option<String>,
    /// How many steps may run at once (default 4).
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// Custom values for `{{ name }}` placeholders; `--param name=value` overrides.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// When `ember schedule` runs the pipeline.
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// What to do when a run fails after its retries.
    #[serde(default)]
    pub on_failure: Option<HookSpec>,
    /// Input tables, by name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// The steps, in any order; `depends_on` orders them.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepSpec>,
}

/// When a pipeline runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// A cron expression (5 fields, or 6 with seconds), e.g. `"0 2 * * *"`.
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Which missed runs to make up after downtime: `all`, `latest` (default) or `none`.
    #[serde(default)]
    pub catchup: Option<String>,
}

/// A failure hook: a shell command, or an HTTP POST, given the run as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// Run by `sh -c`, with the run's JSON on stdin and `EMBER_RUN_ID`, `EMBER_PIPELINE`, `EMBER_DS`, `EMBER_ERROR` set.
    #[serde(default)]
    pub command: Option<String>,
    /// Receives a POST with the run's JSON as the body.
    #[serde(default)]
    pub url: Option<String>,
}

/// An input table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// A file or directory (relative to the pipeline file), or an object-store URL.
    pub path: String,
    /// `parquet` (default), `json` (newline-delimited) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
    /// A contract the table must meet before any step reads it.
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the pipeline.
    pub name: String,
    /// Steps that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Extra attempts after a failure (default 0).
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry (default `"1s"`), doubled for each further one.
    #[serde(default)]
    pub retry_delay: Option<String>,
    /// Limit on one attempt (`"10m"`); the running job is cancelled.
    #[serde(default)]
    pub timeout: Option<String>,
    /// A contract the step's output tables must meet.
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
    /// An SQL step.
    #[serde(default)]
    pub sql: Option<SqlStepSpec>,
    /// A feature-engineering step.
    #[serde(default)]
    pub features: Option<FeaturesStepSpec>,
    /// A training step.
    #[serde(default)]
    pub train: Option<TrainStepSpec>,
    /// A scoring step.
    #[serde(default)]
    pub score: Option<ScoreStepSpec>,
    /// A data-contract step.
    #[serde(default)]
    pub check: Option<CheckStepSpec>,
}

/// ETL: a query whose rows become a named output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStepSpec {
    /// One `SELECT` (or `WITH ... SELECT`) query.
    pub query: String,
    /// The output table's name.
    pub output: String,
    /// Write under `ds=<date>/` so each date's output is kept and replaced alone.
    #[serde(default)]
    pub partition_by_date: bool,
}

/// Declared transforms: fitted on one table, applied to others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesStepSpec {
    /// The table the transforms are fitted on (usually the training rows).
    pub fit_on: String,
    /// Input table → output table, for every table the fitted transforms apply to.
    pub apply: BTreeMap<String, String>,
    /// The transforms, applied in order.
    pub transforms: Vec<TransformSpec>,
    /// Write outputs under `ds=<date>/`.
    #[serde(default)]
    pub partition_by_date: bool,
}

/// One transform of a column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// The input column.
    pub column: String,
    /// `standard`, `min_max`, `impute`, `ordinal`, `one_hot`, `quantile` or `hash`.
    pub kind: String,
    /// The output column (default: replace `column`; `one_hot` makes `<output>_<category>` columns).
    #[serde(default)]
    pub output: Option<String>,
    /// `impute`: `mean`, `median` or `constant`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// `impute` with `strategy = "constant"`: the value.
    #[serde(default)]
    pub value: Option<f64>,
    /// `quantile`: the number of buckets; `hash`: the number of buckets.
    #[serde(default)]
    pub buckets: Option<u32>,
    /// `ordinal` / `one_hot`: keep only the most frequent categories.
    #[serde(default)]
    pub max_categories: Option<u32>,
}

/// Train one model over a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainStepSpec {
    /// The training rows.
    pub input: String,
    /// The label column.
    pub label: String,
    /// Feature columns (default: every numeric column but the label and `exclude`).
    #[serde(default)]
    pub features: Vec<String>,
    /// Columns never used as features (ids, keys).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `gbdt` (default), `linear` or `logistic`.
    #[serde(default)]
    pub model: Option<String>,
    /// Training parameters, XGBoost's names (`max_depth = 4`, `eta = 0.1`).
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// Score a table with a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreStepSpec {
    /// A train step of this pipeline (its model from this run), or a model path.
    pub model: String,
    /// The rows to score.
    pub input: String,
    /// The output table's name.
    pub output: String,
    /// The prediction column's name (default `prediction`).
    #[serde(default)]
    pub column: Option<String>,
    /// Input columns kept in the output (default: all).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Write under `ds=<date>/`.
    #[serde(default)]
    pub partition_by_date: bool,
    /// Compare the scored rows with the training rows.
    #[serde(default)]
    pub drift: Option<DriftSpec>,
}

/// A population-stability check between training and scoring data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// The table the model was trained on.
    pub baseline: String,
    /// Columns compared (default: the model's features).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Quantile bins of the baseline (default 10).
    #[serde(default)]
    pub bins: Option<u32>,
    /// PSI above which a warning is recorded (default 0.1).
    #[serde(default)]
    pub warn: Option<f64>,
    /// PSI above which the step fails (default 0.25).
    #[serde(default)]
    pub fail: Option<f64>,
}

/// Check a table against a contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStepSpec {
    /// The table checked.
    pub table: String,
    /// The contract.
    pub expect: ExpectSpec,
}

/// A data contract.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Column → type (`Int64`, `Float64`, `Utf8`/`string`, `Boolean`, `Date32`, ...).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Fewest rows allowed.
    #[serde(default)]
    pub min_rows: Option<u64>,
    /// Most rows allowed.
    #[serde(default)]
    pub max_rows: Option<u64>,
    /// Column → largest allowed fraction of nulls (0 to 1).
    #[serde(default)]
    pub max_null_fraction: BTreeMap<String, f64>,
    /// SQL conditions every row must meet, e.g. `"auc >= 0.7"`.
    #[serde(default)]
    pub assert: Vec<String>,
}

impl StepSpec {
    /// The step's kind, if exactly one kind table is given.
    pub fn kind_names(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.sql.is_some() {
            kinds.push("sql");
        }
        if self.features.is_some() {
            kinds.push("features");
        }
        if self.train.is_some() {
            kinds.push("train");
        }
        if self.score.is_some() {
            kinds.push("score");
        }
        if self.check.is_some() {
            kinds.push("check");
        }
        kinds
    }

    /// Tables this step reads (by name), as declared.
    pub fn reads(&self) -> Vec<String> {
        let mut tables = Vec::new();
        if let Some(f) = &self.features {
            tables.push(f.fit_on.clone());
            tables.extend(f.apply.keys().cloned());
        }
        if let Some(t) = &self.train {
            tables.push(t.input.clone());
        }
        if let Some(s) = &self.score {
            tables.push(s.input.clone());
            if let Some(d) = &s.drift {
                tables.push(d.baseline.clone());
            }
        }
        if let Some(c) = &self.check {
            tables.push(c.table.clone());
        }
        tables
    }

    /// Tables this step writes (by name).
    pub fn writes(&self) -> Vec<String> {
        let mut tables = Vec::new();
        if let Some(s) = &self.sql {
            tables.push(s.output.clone());
        }
        if let Some(f) = &self.features {
            tables.extend(f.apply.values().cloned());
        }
        if let Some(s) = &self.score {
            tables.push(s.output.clone());
        }
        tables
    }
}
