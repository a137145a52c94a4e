//! `ember sql`: run statements and print or write their results.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use ember_core::{ClusterTarget, EmberContext};

use crate::error::{JobsError, Result};
use crate::output::{OutputFormat, write_rows};
use crate::sql::{SqlRunner, StatementKind};

/// Flags of `ember sql`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["query", "file"])))]
pub struct SqlArgs {
    /// The SQL to run: one or more statements separated by `;`.
    pub query: Option<String>,

    /// Read the SQL from this file instead.
    #[arg(short, long)]
    pub file: Option<PathBuf>,

    /// Scheduler to run on, `df://HOST:PORT`; without it Ember runs embedded.
    #[arg(long, env = "EMBER_CLUSTER")]
    pub cluster: Option<String>,

    /// How to print query results.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write the query's result as Parquet to this path (a file if it ends in
    /// `.parquet`, else a directory) instead of printing it. The script must
    /// have exactly one query.
    #[arg(short, long)]
    pub output: Option<String>,

    /// Never draw job progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `ember sql`.
pub async fn run(args: SqlArgs) -> Result<()> {
    let sql = match (&args.query, &args.file) {
        (Some(q), _) => q.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| JobsError::io(f, e))?,
        (None, None) => return Err(JobsError::Usage("give a query or --file".into())),
    };
    let target = ClusterTarget::parse(args.cluster.as_deref())?;
    let ember = EmberContext::connect(target).await?;
    let runner = SqlRunner::new(&ember, !args.no_progress);
    let statements = runner.parse(&sql)?;
    if statements.is_empty() {
        return Err(JobsError::Usage("no SQL statement to run".into()));
    }
    let queries = statements.iter().filter(|s| SqlRunner::is_query(s)).count();
    if args.output.is_some() && queries != 1 {
        return Err(JobsError::Usage(format!(
            "--output writes the result of one query, but the SQL has {queries}"
        )));
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let chatty = args.format == OutputFormat::Table && std::io::stderr().is_terminal();
    for (i, statement) in statements.into_iter().enumerate() {
        let index = i + 1;
        let outcome = match (&args.output, SqlRunner::is_query(&statement)) {
            (Some(target), true) => runner.run_to_parquet(index, statement, target).await?,
            _ => runner.run(index, statement).await?,
        };
        match &outcome.kind {
            StatementKind::Query => {
                write_rows(&mut out, args.format, &outcome.schema, &outcome.batches)?;
                if chatty {
                    let rows: usize = outcome.batches.iter().map(|b| b.num_rows()).sum();
                    eprintln!("{rows} row(s) in {:.3} s", outcome.elapsed.as_secs_f64());
                }
            }
            StatementKind::Write { rows, target } => {
                eprintln!(
                    "wrote {rows} row(s) to {target} in {:.3} s",
                    outcome.elapsed.as_secs_f64()
                );
            }
            StatementKind::Command => {}
        }
    }
    out.flush().map_err(|e| JobsError::io("stdout", e))
}
