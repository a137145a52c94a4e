//! The `ember` command.

use clap::Parser;
use ember_jobs::cli::Cli;
use ember_jobs::error::one_line;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ember: error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli.run());
    // The embedded cluster's tasks are not waited for.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ember: error: {}", one_line(&e.to_string()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// No logs unless RUST_LOG asks for them: a command reports its outcome in
/// one line, and the embedded scheduler's and executor's logs (which repeat
/// every failure) are for debugging, e.g. `RUST_LOG=info ember sql ...`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
