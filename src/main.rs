//! The `hookline` binary: parse the command line, load configuration, start logging, run the
//! subcommand, map errors to exit codes (2: invalid input or configuration, 1: anything else).

use std::process::ExitCode;

use clap::Parser;
use hookline::cli::Cli;
use hookline::commands::InputError;
use hookline::config::{Config, ConfigError};

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
            return ExitCode::from(2);
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
    let level =
        if matches!(cli.command, hookline::cli::Command::Serve { .. }) { "info" } else { "warn" };
    hookline::telemetry::init(config.log.format, level);
    match hookline::commands::run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A failed `verify` is exit 1 like any other failure; only bad input is 2.
            if e.downcast_ref::<InputError>().is_some() || e.downcast_ref::<ConfigError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
