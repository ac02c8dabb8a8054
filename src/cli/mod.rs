//! The command line: one module per subcommand group, each holding its clap arguments and its
//! handler. A front end of [`crate::ops`] like the admin API: clap parses arguments into typed
//! ids (a bad one is exit 2 naming the flag), the handler calls one operation with the admin
//! scope and prints text or JSON, and [`exit_code`] maps the error kind to the exit code.
//!
//! Exit codes: 0 success, 1 failure (a server unreachable, a signature that does not verify),
//! 2 invalid input or configuration (nothing was changed), 3 not found, 4 conflict (the
//! resource is not in a state that allows the change, e.g. activating an active subscription).

pub mod admin;
pub mod attempts;
pub mod console_link;
pub mod dlq;
pub mod publish;
pub mod receive;
pub mod replay;
pub mod serve;
pub mod stats;
pub mod subscriptions;
pub mod tail;
mod test_event;
pub mod verify;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError};
use crate::ops::OpsError;

/// Exit status of a command that succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status of a failure that is not the caller's input (a server down, a bad signature).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of invalid input or configuration; nothing was changed.
pub const EXIT_INVALID: u8 = 2;
/// Exit status when the named resource does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit status when the resource's state does not allow the change; nothing was changed.
pub const EXIT_CONFLICT: u8 = 4;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (a server unreachable, a signature that does not verify)
  2  invalid input or configuration (nothing was changed)
  3  not found (no such subscription, DLQ entry or event)
  4  conflict (e.g. activating an active subscription, publishing an event id again;
     nothing was changed)";

/// Webhook delivery on NATS JetStream and Redis.
#[derive(Debug, Parser)]
#[command(name = "hookline", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file layered over the built-in defaults (env vars HOOKLINE_* win over it).
    #[arg(long, global = true, env = "HOOKLINE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of commands that print records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Readable text.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// The `--output` flag, shared by every command that prints records.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Print readable text or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the delivery service (all roles unless --role is given).
    Serve(serve::ServeArgs),
    /// Manage subscriptions (stored in Redis).
    #[command(subcommand)]
    Subscriptions(subscriptions::SubscriptionsCommand),
    /// Publish an event to `<prefix>.events.<event_type>`.
    Publish(publish::PublishArgs),
    /// Inspect and act on the dead-letter queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// The attempt log.
    #[command(subcommand)]
    Attempts(attempts::AttemptsCommand),
    /// Delivery statistics over 5 min / 1 h / 24 h with backlog and health (one subscription,
    /// or overall).
    Stats(stats::StatsArgs),
    /// Follow delivery attempts live (subscribes to the attempt subjects).
    Tail(tail::TailArgs),
    /// Replay events from the event log: one by id, or a time range.
    Replay(replay::ReplayArgs),
    /// Verify a Standard Webhooks signature of a body read from stdin (exit 0 valid, 1 not).
    Verify(verify::VerifyArgs),
    /// A development receiver that verifies signatures and prints deliveries (used by the demo).
    Receive(receive::ReceiveArgs),
    /// Print a signed, expiring link to the web console (admin, or one tenant's portal).
    ConsoleLink(console_link::ConsoleLinkArgs),
    /// Maintenance of stored data (reseal secrets with the current key).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

impl Command {
    /// Whether this is `serve` (which logs at info; one-shot commands at warn).
    pub fn is_serve(&self) -> bool {
        matches!(self, Command::Serve(_))
    }
}

/// Bad input from the user that clap could not catch: exit code 2, nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Runs one subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args, config).await,
        Command::Subscriptions(cmd) => subscriptions::run(cmd, config).await,
        Command::Publish(args) => publish::run(args, config).await,
        Command::Dlq(cmd) => dlq::run(cmd, config).await,
        Command::Attempts(cmd) => attempts::run(cmd, config).await,
        Command::Stats(args) => stats::run(args, config).await,
        Command::Tail(args) => tail::run(args, config).await,
        Command::Replay(args) => replay::run(args, config).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Receive(args) => receive::run(args).await,
        Command::Admin(cmd) => admin::run(cmd, config).await,
        Command::ConsoleLink(args) => console_link::run(args, config).await,
    }
}

/// The exit code for an error a command returned: its kind decides.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(ops) = e.downcast_ref::<OpsError>() {
        return match ops {
            OpsError::Invalid { .. } | OpsError::TooLarge(_) => EXIT_INVALID,
            OpsError::NotFound(_) => EXIT_NOT_FOUND,
            OpsError::Conflict { .. } => EXIT_CONFLICT,
            OpsError::Unprocessable { .. } | OpsError::Backend(_) => EXIT_FAILURE,
        };
    }
    if e.downcast_ref::<InputError>().is_some() || e.downcast_ref::<ConfigError>().is_some() {
        return EXIT_INVALID;
    }
    EXIT_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_exit_code() {
        let code = |e: OpsError| exit_code(&anyhow::Error::from(e));
        assert_eq!(code(OpsError::invalid("url", "bad")), EXIT_INVALID);
        assert_eq!(code(OpsError::NotFound("x".into())), EXIT_NOT_FOUND);
        assert_eq!(
            code(OpsError::Conflict { code: "conflict", message: "x".into() }),
            EXIT_CONFLICT
        );
        assert_eq!(exit_code(&InputError("x".into()).into()), EXIT_INVALID);
        assert_eq!(exit_code(&anyhow::anyhow!("nats down")), EXIT_FAILURE);
    }

    #[test]
    fn the_exit_code_table_is_in_the_help() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for code in [EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT] {
            assert!(help.contains(&format!("  {code}  ")), "{code} missing from:\n{help}");
        }
    }

    #[test]
    fn every_argument_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, blank: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    blank.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), blank);
            }
        }
        let mut blank = Vec::new();
        walk(&Cli::command(), "hookline", &mut blank);
        assert!(blank.is_empty(), "arguments without help text: {blank:?}");
    }
}
