//! Untrusted input, fuzzed: pipeline files, the `ember` command line, and SQL
//! through Ember's planner get random and mutated input and must answer with
//! an error, never a panic. (Model files are fuzzed in
//! `udfs/tests/model_files.rs`.)
//!
//! The first run found a panic in DataFusion 55's SQL planner (a scalar
//! subquery with an empty select list, `x > (SELECT FROM t)`); Ember now plans
//! every statement through `ember_jobs::sql::plan_statement`, which turns a
//! planner panic into an error, and these properties plan the same way.
//!
//! Each property runs `EMBER_FUZZ_CASES` cases (default 256, so CI stays
//! quick); run longer on demand, e.g.
//! `EMBER_FUZZ_CASES=20000 cargo test --workspace --test fuzz_inputs`. A
//! failure prints the shrunk input that panicked; proptest also saves it
//! under `proptest-regressions/` to be replayed first on the next run.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::OnceLock;

use clap::Parser;
use datafusion::prelude::SessionContext;
use ember_benchmarks::tpch::{query, query_numbers};
use ember_core::config::ember_session_config;
use ember_core::registry::{ember_aggregate_functions, ember_scalar_functions};
use ember_core::session::{ember_runtime_env, ember_session_state};
use ember_jobs::cli::Cli;
use ember_jobs::pipeline::Pipeline;
use ember_jobs::sql::plan_statement;
use ember_tests::data::{tpch, tpch_ddl};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn cases() -> u32 {
    std::env::var("EMBER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> Config {
    Config {
        cases: cases(),
        // The inputs are cheap to regenerate; a failure's seed is printed.
        failure_persistence: None,
        ..Config::default()
    }
}

/// One random edit of a text, applied by [`mutate`].
#[derive(Debug, Clone)]
enum Edit {
    /// Remove the characters in a range (fractions of the length).
    Delete(f64, f64),
    /// Insert a word at a position.
    Insert(f64, String),
    /// Replace a range with a word.
    Replace(f64, f64, String),
    /// Keep only a prefix.
    Truncate(f64),
    /// Duplicate a range right after itself.
    Duplicate(f64, f64),
}

/// Random edits whose inserted and replacing words come from `words` or
/// are random text; `delete_max` and `replace_max` bound the edited span as
/// a fraction of the text.
fn edits_with(
    words: Vec<&'static str>,
    delete_max: f64,
    replace_max: f64,
) -> impl Strategy<Value = Edit> {
    let word = prop_oneof![
        prop::sample::select(words).prop_map(str::to_string),
        "[ -~]{0,12}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop_oneof![
        (0.0..1.0f64, 0.0..delete_max).prop_map(|(a, b)| Edit::Delete(a, b)),
        (0.0..1.0f64, word.clone()).prop_map(|(a, w)| Edit::Insert(a, w)),
        (0.0..1.0f64, 0.0..replace_max, word).prop_map(|(a, b, w)| Edit::Replace(a, b, w)),
        (0.0..1.0f64).prop_map(Edit::Truncate),
        (0.0..1.0f64, 0.0..0.1f64).prop_map(|(a, b)| Edit::Duplicate(a, b)),
    ]
}

fn edit(words: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    edits_with(words.to_vec(), 0.2, 0.05)
}

fn edit_sql() -> impl Strategy<Value = Edit> {
    edits_with(sql_words().to_vec(), 0.1, 0.03)
}

/// Applies `edits` to `text`, always cutting at character boundaries.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        let len = chars.len();
        match e {
            Edit::Delete(a, b) => {
                let start = at(*a, len);
                let end = (start + at(*b, len)).min(len);
                chars.drain(start..end);
            }
            Edit::Insert(a, w) => {
                let start = at(*a, len);
                chars.splice(start..start, w.chars());
            }
            Edit::Replace(a, b, w) => {
                let start = at(*a, len);
                let end = (start + at(*b, len).max(1)).min(len);
                chars.splice(start..end, w.chars());
            }
            Edit::Truncate(a) => chars.truncate(at(*a, len)),
            Edit::Duplicate(a, b) => {
                let start = at(*a, len);
                let end = (start + at(*b, len)).min(len);
                let copy: Vec<char> = chars[start..end].to_vec();
                chars.splice(end..end, copy);
            }
        }
    }
    chars.into_iter().collect()
}

// ----- pipeline files -----

const TOML_WORDS: &[&str] = &[
    "[[steps]]",
    "[tables.x]",
    "[params]",
    "name",
    "=",
    "\"\"",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "depends_on",
    "retries",
    "-1",
    "99999999999999999999",
    "timeout",
    "\"0s\"",
    "\"-5m\"",
    "\"1y\"",
    "kind",
    "\"sql\"",
    "\"score\"",
    "\"train\"",
    "sql",
    "\"{{ ds }}\"",
    "{{",
    "}}",
    "\"{{ nope }}\"",
    "path",
    "\"/\"",
    "\"../..\"",
    "expect",
    "columns",
    "min_rows",
    "1e400",
    "nan",
    "inf",
    "true",
    "max_parallel",
    "0",
    "schedule",
    "\"* * *\"",
    "on_failure",
    "retry_delay",
    "\n",
    "#",
    "\\u0000",
    "\"\"\"",
    "output",
    "format",
    "\"json\"",
    "\"csv\"",
];

fn churn_pipeline() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/examples/churn/churn.toml");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

#[test]
fn the_unmutated_pipeline_is_valid() {
    Pipeline::parse(Path::new("/fuzz/churn.toml"), churn_pipeline()).expect("churn.toml parses");
}

proptest! {
    #![proptest_config(config())]

    /// Mutated pipeline files load or fail with an error naming the file.
    #[test]
    fn mutated_pipeline_files_never_panic(edits in prop::collection::vec(edit(TOML_WORDS), 1..6)) {
        let text = mutate(churn_pipeline(), &edits);
        if let Err(e) = Pipeline::parse(Path::new("/fuzz/churn.toml"), &text) {
            let message = e.to_string();
            prop_assert!(message.contains("churn.toml"), "the error does not name the file: {message}");
        }
    }

    /// Random text as a pipeline file.
    #[test]
    fn random_pipeline_files_never_panic(text in "[ -~\n]{0,400}") {
        if let Err(e) = Pipeline::parse(Path::new("/fuzz/random.toml"), &text) {
            prop_assert!(e.to_string().contains("random.toml"), "{e}");
        }
    }
}

// ----- the command line -----

const CLI_WORDS: &[&str] = &[
    "sql",
    "score",
    "train",
    "cluster",
    "up",
    "down",
    "status",
    "run",
    "runs",
    "list",
    "show",
    "schedule",
    "backfill",
    "demo",
    "churn",
    "--cluster",
    "df://",
    "df://h:0",
    "df://:1",
    "http://x",
    "--model",
    "--input",
    "--output",
    "--label",
    "--features",
    "a,,b",
    ",",
    "--model-out",
    "--ds",
    "2026-02-30",
    "2026-13-01",
    "--from",
    "--to",
    "--param",
    "=",
    "k=",
    "=v",
    "--executors",
    "0",
    "-1",
    "18446744073709551616",
    "--memory-limit",
    "lots",
    "--vcores",
    "--sf",
    "-f",
    "-e",
    "SELECT 1",
    "--format",
    "xml",
    "--help",
    "-h",
    "--version",
    "--",
    "",
    " ",
    "\u{0}",
    "é",
    "--params",
    "--timeout",
    "1y",
    "--page",
];

proptest! {
    #![proptest_config(config())]

    /// Any argument list parses or gives clap's error; none panics.
    #[test]
    fn random_command_lines_never_panic(
        args in prop::collection::vec(
            prop_oneof![prop::sample::select(CLI_WORDS).prop_map(str::to_string), "[ -~]{0,10}"],
            0..8,
        )
    ) {
        let mut argv = vec!["ember".to_string()];
        argv.extend(args);
        if let Err(e) = Cli::try_parse_from(&argv) {
            // Rendering the error (usage, suggestions) must not panic either.
            let _ = e.render().to_string();
        }
    }
}

// ----- SQL through the planner -----

/// A client-side Ember session (the state the scheduler plans with) with the
/// TPC-H tables registered. Planning needs only the schemas.
fn planner() -> (&'static tokio::runtime::Runtime, &'static SessionContext) {
    static PLANNER: OnceLock<(tokio::runtime::Runtime, SessionContext)> = OnceLock::new();
    let (rt, ctx) = PLANNER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let state = ember_session_state(ember_session_config(), ember_runtime_env(None).unwrap())
            .expect("Ember session state");
        let ctx = SessionContext::new_with_state(state);
        let ddl = tpch_ddl(&tpch(0.1, 4));
        rt.block_on(async {
            for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                ctx.sql(statement).await.expect("register TPC-H");
            }
        });
        (rt, ctx)
    });
    (rt, ctx)
}

fn sql_words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<&'static str> = vec![
            "SELECT",
            "FROM",
            "WHERE",
            "GROUP BY",
            "ORDER BY",
            "HAVING",
            "JOIN",
            "ON",
            "UNION ALL",
            "(",
            ")",
            ",",
            "*",
            "/",
            "0",
            "-1",
            "NULL",
            "'x'",
            "CAST(",
            "AS",
            "INTERVAL '1' YEAR",
            "l_quantity",
            "o_orderkey",
            "no_such_column",
            "no_such_table",
            "OVER (",
            "PARTITION BY",
            "DISTINCT",
            "LIMIT",
            "OFFSET",
            "-9223372036854775808",
            "1e309",
            "CASE WHEN",
            "END",
            "EXISTS",
            "IN (",
            "SELECT 1",
            "ARRAY[",
            "]",
            "struct(",
            "named_struct(",
            "::",
            "{",
            "'models/none.json'",
            "'s3://nowhere/m.json'",
            "[1,2]",
            "NaN",
            "'NaN'",
        ];
        let functions = ember_scalar_functions()
            .iter()
            .map(|f| f.name().to_string())
            .chain(
                ember_aggregate_functions()
                    .iter()
                    .map(|f| f.name().to_string()),
            )
            .collect::<Vec<_>>();
        for name in functions {
            words.push(Box::leak(format!("{name}(").into_boxed_str()));
        }
        words
    })
}

fn tpch_query_text(n: usize) -> &'static str {
    query(n).expect("query").sql
}

/// Plans `sql` the way `ember sql` and pipeline steps do (parse, then
/// [`plan_statement`]), then optimizes it and builds the physical plan as the
/// scheduler would. Errors are the expected outcome of most inputs; a panic
/// fails.
fn plan(sql: &str) -> Outcome {
    let (rt, ctx) = planner();
    rt.block_on(async {
        let state = ctx.state();
        let Ok(statement) =
            state.sql_to_statement(sql, &datafusion::common::config::Dialect::Generic)
        else {
            return Outcome::Rejected;
        };
        let logical = match plan_statement(state, statement).await {
            Ok(logical) => logical,
            Err(e) if e.to_string().contains("the SQL planner failed") => {
                return Outcome::PlannerPanicCaught;
            }
            Err(_) => return Outcome::Rejected,
        };
        match ctx.execute_logical_plan(logical).await {
            Err(_) => Outcome::Rejected,
            Ok(df) => match df.create_physical_plan().await {
                Ok(_) => Outcome::Planned,
                Err(_) => Outcome::Rejected,
            },
        }
    })
}

/// How a fuzzed statement ended (no panic either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Planned,
    Rejected,
    /// DataFusion's planner panicked and `plan_statement` made it an error.
    PlannerPanicCaught,
}

/// Counts planned and rejected statements, so a run can show that both
/// kinds of input were exercised.
static PLANNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static REJECTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CAUGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count(outcome: Outcome) {
    let counter = match outcome {
        Outcome::Planned => &PLANNED,
        Outcome::Rejected => &REJECTED,
        Outcome::PlannerPanicCaught => &CAUGHT,
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Every TPC-H query unmutated plans: the fuzzed planner is a working one.
#[test]
fn the_unmutated_queries_plan() {
    for n in query_numbers() {
        let q = query(n).expect("query");
        // Query 15 is several statements (a view); plan its answer.
        let statements: Vec<&str> = q
            .sql
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if statements.len() == 1 {
            assert_eq!(plan(statements[0]), Outcome::Planned, "q{n}");
        }
    }
    assert_eq!(
        plan("SELECT feature_hash(l_comment) AS h, ln(l_quantity) FROM lineitem"),
        Outcome::Planned
    );
}

proptest! {
    #![proptest_config(config())]

    /// TPC-H queries with random edits, some inserting Ember's functions with
    /// wrong arguments.
    #[test]
    fn mutated_tpch_queries_plan_or_fail_without_panicking(
        n in query_numbers(),
        edits in prop::collection::vec(edit_sql(), 1..5),
    ) {
        count(plan(&mutate(tpch_query_text(n), &edits)));
    }

    /// Ember's functions called with random arguments.
    #[test]
    fn ember_functions_with_random_arguments_fail_without_panicking(
        f in prop::sample::select(sql_words().to_vec()),
        args in prop::collection::vec(
            prop_oneof![
                Just("l_quantity".to_string()),
                Just("l_comment".to_string()),
                Just("l_shipdate".to_string()),
                Just("NULL".to_string()),
                Just("'[\"a\", 1]'".to_string()),
                Just("'{\"max_depth\": -1}'".to_string()),
                Just("'models/none.json'".to_string()),
                Just("ARRAY[1.0, 2.0]".to_string()),
                Just("named_struct('a', 1)".to_string()),
                any::<i64>().prop_map(|v| v.to_string()),
                any::<f64>().prop_map(|v| format!("{v:?}")),
                "'[ -~]{0,8}'",
            ],
            0..5,
        ),
    ) {
        if let Some(name) = f.strip_suffix('(') {
            count(plan(&format!("SELECT {name}({}) FROM lineitem", args.join(", "))));
        }
    }
}

/// Well-formed expressions over `lineitem`'s columns of every type, with
/// DataFusion's and Ember's functions: most plan, so the optimizer and the
/// physical planner see them, not only the parser.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_orderkey",
            "l_linenumber",
            "l_comment",
            "l_shipmode",
            "l_shipdate",
            "l_returnflag",
            "NULL",
            "0",
            "-1",
            "1e308",
            "'2026-01-01'",
            "'x'",
            "''",
            "TRUE",
            "ARRAY[1.5, NULL]",
            "9223372036854775807",
        ])
        .prop_map(str::to_string),
        any::<i32>().prop_map(|v| v.to_string()),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        let name = prop::sample::select(vec![
            "abs",
            "coalesce",
            "substr",
            "length",
            "upper",
            "round",
            "ln",
            "sqrt",
            "power",
            "date_trunc",
            "to_date",
            "concat",
            "nullif",
            "greatest",
            "least",
            "feature_hash",
            "one_hot",
            "ordinal_encode",
            "quantile_bucket",
            "min_max_scale",
            "standard_scale",
            "impute",
            "days_since",
            "predict",
            "predict_raw",
            "make_array",
            "array_length",
        ]);
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "=", "<", "AND", "OR", "||", "LIKE"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (name, prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "BIGINT",
                    "DOUBLE",
                    "VARCHAR",
                    "DATE",
                    "DECIMAL(38, 10)",
                    "BOOLEAN"
                ])
            )
                .prop_map(|(e, t)| format!("CAST({e} AS {t})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("CASE WHEN {c} THEN {a} ELSE {b} END")),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    /// Generated well-formed queries: projections, filters, grouping and
    /// ordering by random expressions.
    #[test]
    fn generated_queries_plan_or_fail_without_panicking(
        select in expression(),
        filter in expression(),
        group in prop::bool::ANY,
        order in prop::bool::ANY,
    ) {
        let mut sql = format!("SELECT {select} AS e, count(*) AS n FROM lineitem WHERE {filter}");
        sql.push_str(if group { " GROUP BY 1" } else { " GROUP BY l_orderkey" });
        if order {
            sql.push_str(" ORDER BY 1 DESC NULLS FIRST LIMIT 10");
        }
        count(plan(&sql));
    }
}

/// Runs after the properties in the same binary only by chance, so it just
/// reports: the counts go to the test log (`--nocapture`).
#[test]
fn zz_report_sql_outcomes() {
    eprintln!(
        "SQL fuzz so far: {} planned, {} rejected, {} planner panics turned into errors",
        PLANNED.load(std::sync::atomic::Ordering::Relaxed),
        REJECTED.load(std::sync::atomic::Ordering::Relaxed),
        CAUGHT.load(std::sync::atomic::Ordering::Relaxed)
    );
}
