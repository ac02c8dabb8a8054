//! The `hookline` binary: parse the command line, load configuration, start logging, run the
//! subcommand, map errors to exit codes ([`hookline::cli::exit_code`]: 1 failure, 2 invalid
//! input or configuration, 3 not found, 4 conflict).

use std::process::ExitCode;

use clap::Parser;
use hookline::cli::Cli;
use hookline::config::Config;

/// mimalloc instead of glibc's malloc: allocation and free were ~17 % of hookline's CPU per
/// delivery under load with glibc (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(hookline::cli::EXIT_INVALID);
        }
    };
    // One thread: Tokio's current-thread scheduler (no work-stealing bookkeeping, no wake-ups
    // across threads).
    let mut runtime = match config.runtime.threads() {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    runtime.enable_all();
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(cli, config)),
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let level = if cli.command.is_serve() { "info" } else { "warn" };
    hookline::telemetry::init(config.log.format, level);
    match hookline::cli::run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(hookline::cli::exit_code(&e))
        }
    }
}
