//! `hookline serve`: run the delivery service until SIGTERM or SIGINT.

use tokio_util::sync::CancellationToken;

use crate::app::{App, Role};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Roles to run; repeat for several. Default: fanout, deliver and api.
    #[arg(long = "role", value_enum)]
    pub roles: Vec<Role>,
}

/// Builds the app and runs it until a shutdown signal.
pub async fn run(args: ServeArgs, config: Config) -> anyhow::Result<()> {
    // Signals are caught from the start: a SIGTERM while hookline is still connecting ends in
    // the same clean exit as one later (the app starts with its shutdown already asked for).
    let shutdown = CancellationToken::new();
    let signals = signals();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal(signals).await;
        tracing::info!("shutdown signal received; finishing in-flight deliveries");
        trigger.cancel();
    });
    let app = App::build(config, &args.roles).await?;
    app.run(shutdown).await
}

type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

/// SIGTERM and SIGINT handlers, installed now (`None`: fall back to ctrl-c).
fn signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate()).ok().zip(signal(SignalKind::interrupt()).ok())
}

async fn wait_for_signal(signals: Signals) {
    match signals {
        Some((mut term, mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
