//! `hookline admin reseal|reindex`: maintenance of stored data, as an operator (admin scope).

use clap::Subcommand;

use super::{Output, OutputArg};
use crate::config::Config;
use crate::ops::{Need, Ops};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Rewrite every subscription whose secrets are not sealed with secrets.encryption_key
    /// (plain, or sealed with an older key); afterwards older keys can leave
    /// secrets.decryption_keys. Prints how many were rewritten.
    Reseal {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Rebuild the Redis subscription index from the subscriptions bucket (the source of
    /// truth) now. Running processes hold events until it is complete. Prints how many
    /// subscriptions the index holds.
    Reindex {
        #[command(flatten)]
        output: OutputArg,
    },
}

/// Runs one `admin` subcommand.
pub async fn run(cmd: AdminCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Reseal { output } => {
            let ops = Ops::connect(config, Need::Subscriptions).await?;
            let report = ops.reseal_subscriptions().await?;
            if output.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let now = match &report.key_id {
                    Some(id) => format!("every secret is sealed with key {id}"),
                    None => "every secret is stored plain (no secrets.encryption_key)".into(),
                };
                println!(
                    "resealed {} of {} subscriptions; {now}",
                    report.rewritten, report.examined
                );
            }
            Ok(())
        }
        AdminCommand::Reindex { output } => {
            let ops = Ops::connect(config, Need::Subscriptions).await?;
            let n = ops.reindex_subscriptions().await?;
            if output.output == Output::Json {
                println!("{}", serde_json::json!({ "indexed": n }));
            } else {
                println!("rebuilt the subscription index from the bucket: {n} subscriptions");
            }
            Ok(())
        }
    }
}
