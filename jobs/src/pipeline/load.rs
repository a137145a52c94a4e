//! Reading and validating a pipeline file, before anything runs.
//!
//! Everything that can be known from the file alone is checked here, so a
//! nightly run never fails at step 7 for a typo that was there all along:
//! unknown keys (with line and column), duplicate or unsafe names, steps with
//! no kind or two, dangling or cyclic `depends_on`, tables read before the
//! step that writes them has run (a missing `depends_on`), bad durations,
//! cron expressions and time zones, and transform fields that do not fit
//! their kind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{PipelineError, Result};
use super::spec::{PipelineSpec, StepSpec};

/// Default number of steps running at once.
pub const DEFAULT_MAX_PARALLEL: usize = 4;
/// Default wait before a step's first retry.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file as written.
    pub spec: PipelineSpec,
    /// The pipeline file (absolute).
    pub path: PathBuf,
    /// Its directory: relative paths in the file are read from here.
    pub dir: PathBuf,
    /// For each step (by index in `spec.steps`), the indexes it depends on.
    pub deps: Vec<Vec<usize>>,
    /// Step indexes in an order where every step follows its dependencies.
    pub order: Vec<usize>,
    /// The run-level timeout.
    pub timeout: Option<Duration>,
    /// Per step: the attempt timeout.
    pub step_timeouts: Vec<Option<Duration>>,
    /// Per step: the first retry delay.
    pub retry_delays: Vec<Duration>,
}

impl Pipeline {
    /// Reads and validates the pipeline file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let absolute = std::path::absolute(path).map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&absolute, &text)
    }

    /// Validates pipeline `text`, as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let spec: PipelineSpec = toml::from_str(text).map_err(|e| PipelineError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(&e, text),
        })?;
        let invalid = |message: String| PipelineError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        check_name("pipeline name", &spec.name).map_err(&invalid)?;
        let index = step_index(&spec).map_err(&invalid)?;
        let deps = dependencies(&spec, &index).map_err(&invalid)?;
        let order = topological_order(&spec, &deps).map_err(&invalid)?;
        check_placeholders(&spec).map_err(&invalid)?;
        let sql_reads = sql_reads(&spec).map_err(&invalid)?;
        check_tables(&spec, &deps, &sql_reads).map_err(&invalid)?;
        for step in &spec.steps {
            check_step(step, &index).map_err(&invalid)?;
        }
        let timeout = spec
            .timeout
            .as_deref()
            .map(|t| parse_duration("pipeline timeout", t))
            .transpose()
            .map_err(&invalid)?;
        let mut step_timeouts = Vec::new();
        let mut retry_delays = Vec::new();
        for step in &spec.steps {
            let what = format!("step '{}': timeout", step.name);
            step_timeouts.push(
                step.timeout
                    .as_deref()
                    .map(|t| parse_duration(&what, t))
                    .transpose()
                    .map_err(&invalid)?,
            );
            let what = format!("step '{}': retry_delay", step.name);
            retry_delays.push(
                step.retry_delay
                    .as_deref()
                    .map(|t| parse_duration(&what, t))
                    .transpose()
                    .map_err(&invalid)?
                    .unwrap_or(DEFAULT_RETRY_DELAY),
            );
        }
        if let Some(schedule) = &spec.schedule {
            super::schedule_spec::ParsedSchedule::parse(schedule).map_err(&invalid)?;
        }
        if let Some(hook) = &spec.on_failure
            && hook.command.is_some() == hook.url.is_some()
        {
            return Err(invalid(
                "on_failure: give exactly one of `command` or `url`".to_string(),
            ));
        }
        if spec.max_parallel == Some(0) {
            return Err(invalid("max_parallel must be at least 1".to_string()));
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self {
            spec,
            path: path.to_path_buf(),
            dir,
            deps,
            order,
            timeout,
            step_timeouts,
            retry_delays,
        })
    }

    /// The step names, in file order.
    pub fn step_names(&self) -> Vec<String> {
        self.spec.steps.iter().map(|s| s.name.clone()).collect()
    }

    /// The index of step `name`.
    pub fn step(&self, name: &str) -> Option<usize> {
        self.spec.steps.iter().position(|s| s.name == name)
    }

    /// Steps at most this many run at once.
    pub fn max_parallel(&self) -> usize {
        self.spec.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL)
    }
}

/// toml's message already carries line, column and the offending line; it
/// is kept whole, on as many lines as it has.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.to_string();
    if message.contains("line ") {
        return message.trim_end().to_string();
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", message.trim_end())
        }
        None => message.trim_end().to_string(),
    }
}

fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{name}' must be non-empty and use only letters, digits, '_' and '-'"
        ))
    }
}

fn step_index(spec: &PipelineSpec) -> std::result::Result<BTreeMap<String, usize>, String> {
    if spec.steps.is_empty() {
        return Err("the pipeline has no steps (add a [[step]] table)".to_string());
    }
    let mut index = BTreeMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        check_name("step name", &step.name)?;
        if index.insert(step.name.clone(), i).is_some() {
            return Err(format!("two steps are named '{}'", step.name));
        }
    }
    Ok(index)
}

fn dependencies(
    spec: &PipelineSpec,
    index: &BTreeMap<String, usize>,
) -> std::result::Result<Vec<Vec<usize>>, String> {
    spec.steps
        .iter()
        .map(|step| {
            step.depends_on
                .iter()
                .map(|d| match index.get(d) {
                    Some(&i) if d != &step.name => Ok(i),
                    Some(_) => Err(format!("step '{}' depends on itself", step.name)),
                    None => Err(format!(
                        "step '{}' depends on '{d}', which is not a step of this pipeline (steps: {})",
                        step.name,
                        index.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                })
                .collect()
        })
        .collect()
}

/// Depth-first order; a cycle is reported as the path that closes it.
fn topological_order(
    spec: &PipelineSpec,
    deps: &[Vec<usize>],
) -> std::result::Result<Vec<usize>, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        spec: &PipelineSpec,
    ) -> std::result::Result<(), String> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Open => {
                let from = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[from..]
                    .iter()
                    .map(|&s| spec.steps[s].name.as_str())
                    .collect();
                cycle.push(spec.steps[i].name.as_str());
                return Err(format!("depends_on forms a cycle: {}", cycle.join(" -> ")));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        stack.push(i);
        for &d in &deps[i] {
            visit(d, deps, marks, stack, order, spec)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    for i in 0..deps.len() {
        visit(i, deps, &mut marks, &mut Vec::new(), &mut order, spec)?;
    }
    Ok(order)
}

fn ancestors(i: usize, deps: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = deps[i].clone();
    while let Some(d) = todo.pop() {
        if seen.insert(d) {
            todo.extend(deps[d].iter().copied());
        }
    }
    seen
}

/// Names outputs may not take: directories Ember writes itself.
const RESERVED_OUTPUTS: &[&str] = &["models"];

/// Every `{{ name }}` in the file names a built-in value or a parameter,
/// so a typo fails before step 1, not at step 7.
fn check_placeholders(spec: &PipelineSpec) -> std::result::Result<(), String> {
    use super::template::{BUILTIN, placeholders};
    for name in spec.params.keys() {
        if BUILTIN.contains(&name.as_str()) {
            return Err(format!(
                "[params] '{name}' is a built-in placeholder; choose another name"
            ));
        }
    }
    let known = |name: &str| BUILTIN.contains(&name) || spec.params.contains_key(name);
    let check = |owner: &str, text: &str| -> std::result::Result<(), String> {
        for name in placeholders(text) {
            if !known(&name) {
                let mut names: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
                names.extend(spec.params.keys().cloned());
                return Err(format!(
                    "{owner}: unknown placeholder '{{{{ {name} }}}}' (known: {})",
                    names.join(", ")
                ));
            }
        }
        Ok(())
    };
    if let Some(dir) = &spec.output_dir {
        check("output_dir", dir)?;
    }
    for (name, table) in &spec.tables {
        check(&format!("table '{name}'"), &table.path)?;
    }
    for step in &spec.steps {
        let owner = format!("step '{}'", step.name);
        let mut texts: Vec<&str> = Vec::new();
        if let Some(s) = &step.sql {
            texts.push(&s.query);
        }
        if let Some(e) = &step.expect {
            texts.extend(e.assert.iter().map(String::as_str));
        }
        if let Some(c) = &step.check {
            texts.extend(c.expect.assert.iter().map(String::as_str));
        }
        if let Some(s) = &step.score {
            texts.push(&s.model);
        }
        if let Some(t) = &step.train {
            texts.extend(t.params.values().filter_map(|v| v.as_str()));
        }
        for text in texts {
            check(&owner, text)?;
        }
    }
    Ok(())
}

/// The tables each SQL step's query names, found by parsing it (with
/// stand-in placeholder values). A query that does not parse is an error
/// here, before anything runs.
fn sql_reads(spec: &PipelineSpec) -> std::result::Result<Vec<Vec<String>>, String> {
    use datafusion::sql::parser::DFParser;
    use datafusion::sql::resolve::resolve_table_references;
    let values = super::template::sample_values(&spec.params);
    spec.steps
        .iter()
        .map(|step| {
            let Some(sql) = &step.sql else {
                return Ok(vec![]);
            };
            let text = values
                .render(&step.name, &sql.query)
                .map_err(|e| e.to_string())?;
            let statements = DFParser::parse_sql(&text)
                .map_err(|e| format!("step '{}': the query does not parse: {e}", step.name))?;
            if statements.len() != 1 {
                return Err(format!(
                    "step '{}': the query must be one statement, found {}",
                    step.name,
                    statements.len()
                ));
            }
            let mut tables = Vec::new();
            for statement in &statements {
                let (refs, _ctes) = resolve_table_references(statement, true)
                    .map_err(|e| format!("step '{}': {e}", step.name))?;
                tables.extend(refs.iter().map(|r| r.table().to_string()));
            }
            Ok(tables)
        })
        .collect()
}

/// Every output name is unique; every table a step reads is an input
/// table or the output of a step it depends on (directly or not). For SQL
/// steps, tables that are neither (a catalog table) are left to the planner.
fn check_tables(
    spec: &PipelineSpec,
    deps: &[Vec<usize>],
    sql_reads: &[Vec<String>],
) -> std::result::Result<(), String> {
    let mut producer: BTreeMap<String, usize> = BTreeMap::new();
    for (name, table) in &spec.tables {
        check_name("table name", name)?;
        if let Some(format) = &table.format
            && !matches!(format.as_str(), "parquet" | "json" | "csv")
        {
            return Err(format!(
                "table '{name}': format '{format}' is not one of parquet, json, csv"
            ));
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        for output in step.writes() {
            check_name(&format!("step '{}': output", step.name), &output)?;
            if RESERVED_OUTPUTS.contains(&output.as_str()) {
                return Err(format!(
                    "step '{}': output name '{output}' is reserved (trained models are written under <output_dir>/{output}/)",
                    step.name
                ));
            }
            if spec.tables.contains_key(&output) {
                return Err(format!(
                    "step '{}' writes '{output}', which is also an input table",
                    step.name
                ));
            }
            if let Some(&other) = producer.get(&output) {
                return Err(format!(
                    "steps '{}' and '{}' both write '{output}'",
                    spec.steps[other].name, step.name
                ));
            }
            producer.insert(output, i);
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        let before = ancestors(i, deps);
        let from_sql = sql_reads.get(i).cloned().unwrap_or_default();
        for (table, typed) in step
            .reads()
            .into_iter()
            .map(|t| (t, true))
            .chain(from_sql.into_iter().map(|t| (t, false)))
        {
            if spec.tables.contains_key(&table) {
                continue;
            }
            if !typed && !producer.contains_key(&table) {
                continue;
            }
            if producer.get(&table) == Some(&i) {
                continue;
            }
            match producer.get(&table) {
                Some(p) if before.contains(p) => {}
                Some(&p) => {
                    return Err(format!(
                        "step '{}' reads '{table}', written by step '{}', but does not depend on it (add it to depends_on)",
                        step.name, spec.steps[p].name
                    ));
                }
                None => {
                    return Err(format!(
                        "step '{}' reads '{table}', which is neither an input table nor a step's output",
                        step.name
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_step(step: &StepSpec, index: &BTreeMap<String, usize>) -> std::result::Result<(), String> {
    let kinds = step.kind_names();
    match kinds.as_slice() {
        [_] => {}
        [] => {
            return Err(format!(
                "step '{}' has no kind: add one of [step.sql], [step.features], [step.train], [step.score], [step.check]",
                step.name
            ));
        }
        many => {
            return Err(format!(
                "step '{}' has several kinds ({}); give one",
                step.name,
                many.join(", ")
            ));
        }
    }
    if step.expect.is_some() && step.writes().is_empty() {
        return Err(format!(
            "step '{}': `expect` checks a step's output tables, and this step writes none (use a [step.check] for an existing table)",
            step.name
        ));
    }
    if let Some(features) = &step.features {
        for t in &features.transforms {
            super::steps::features::Transform::from_spec(&step.name, t)?;
        }
        if features.apply.is_empty() {
            return Err(format!(
                "step '{}': features.apply names no table",
                step.name
            ));
        }
    }
    if let Some(train) = &step.train
        && let Some(model) = &train.model
        && !matches!(model.as_str(), "gbdt" | "linear" | "logistic")
    {
        return Err(format!(
            "step '{}': train.model '{model}' is not one of gbdt, linear, logistic",
            step.name
        ));
    }
    if let Some(score) = &step.score
        && let Some(&_producer) = index.get(&score.model)
        && !step.depends_on.contains(&score.model)
    {
        return Err(format!(
            "step '{}' scores with the model of step '{}' but does not depend on it",
            step.name, score.model
        ));
    }
    Ok(())
}

/// Parses `"90s"`, `"10m"`, `"1h 30m"`, `"250ms"`.
pub fn parse_duration(what: &str, text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{what}: '{text}' is not a duration ({e}); write e.g. \"90s\", \"10m\", \"1h 30m\"")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline> {
        Pipeline::parse(Path::new("/p/pipe.toml"), text)
    }

    const TWO_STEPS: &str = r#"
name = "demo"
[tables.raw]
path = "raw/"

[[step]]
name = "clean"
[step.sql]
query = "SELECT * FROM raw"
output = "clean"

[[step]]
name = "count"
depends_on = ["clean"]
[step.check]
table = "clean"
expect = { min_rows = 1 }
"#;

    #[test]
    fn a_valid_pipeline_orders_steps_after_their_dependencies() {
        let p = parse(TWO_STEPS).unwrap();
        assert_eq!(p.order, vec![0, 1]);
        assert_eq!(p.deps, vec![vec![], vec![0]]);
    }

    #[test]
    fn a_misspelled_key_is_an_error_with_line_and_column() {
        let text = TWO_STEPS.replace("depends_on", "depends_om");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("depends_om") && e.contains("line 14"), "{e}");
        assert!(e.contains("column"), "{e}");
    }

    #[test]
    fn dangling_and_cyclic_dependencies_are_rejected() {
        let e = parse(&TWO_STEPS.replace("[\"clean\"]", "[\"cleen\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("depends on 'cleen'") && e.contains("not a step"),
            "{e}"
        );

        let cyclic = TWO_STEPS.replace(
            "name = \"clean\"\n",
            "name = \"clean\"\ndepends_on = [\"count\"]\n",
        );
        let e = parse(&cyclic).unwrap_err().to_string();
        assert!(
            e.contains("cycle") && e.contains("clean -> count -> clean"),
            "{e}"
        );
    }

    #[test]
    fn reading_an_output_without_depending_on_its_step_is_rejected() {
        let text = TWO_STEPS.replace("depends_on = [\"clean\"]\n", "");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("reads 'clean'") && e.contains("add it to depends_on"),
            "{e}"
        );
    }

    #[test]
    fn sql_queries_are_parsed_and_their_tables_checked_before_anything_runs() {
        let text = format!(
            "{TWO_STEPS}\n[[step]]\nname = \"report\"\n[step.sql]\noutput = \"report\"\nquery = \"SELECT count(*) FROM clean WHERE d = '{{{{ ds }}}}'\"\n"
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("step 'report' reads 'clean'") && e.contains("add it to depends_on"),
            "{e}"
        );
        let ok = text.replace(
            "name = \"report\"\n",
            "name = \"report\"\ndepends_on = [\"clean\"]\n",
        );
        parse(&ok).unwrap();
        let broken = ok.replace("SELECT count(*) FROM", "SELEC count(*) FROM");
        let e = parse(&broken).unwrap_err().to_string();
        assert!(e.contains("step 'report': the query does not parse"), "{e}");
    }

    #[test]
    fn unknown_placeholders_and_reserved_names_are_rejected_when_loading() {
        let e = parse(&TWO_STEPS.replace(
            "SELECT * FROM raw",
            "SELECT * FROM raw WHERE d = '{{ dss }}'",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("step 'clean': unknown placeholder '{{ dss }}'")
                && e.contains("ds, ds_nodash"),
            "{e}"
        );
        let e = parse(&TWO_STEPS.replace("output = \"clean\"", "output = \"models\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("output name 'models' is reserved"), "{e}");
    }

    #[test]
    fn steps_need_exactly_one_kind_and_valid_durations() {
        let text = TWO_STEPS.replace(
            "[step.check]\ntable = \"clean\"\nexpect = { min_rows = 1 }\n",
            "",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("step 'count' has no kind"), "{e}");

        let text = TWO_STEPS.replace(
            "name = \"count\"\n",
            "name = \"count\"\ntimeout = \"ten minutes\"\n",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("step 'count': timeout") && e.contains("not a duration"),
            "{e}"
        );
    }
}
