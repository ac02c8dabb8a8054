//! `hookline dlq list|get|redeliver|purge`: the dead-letter queue, as an operator (admin scope).

use clap::Subcommand;

use super::{Output, OutputArg};
use crate::config::Config;
use crate::ids::SubscriptionId;
use crate::ops::{Need, Ops, RedeliverTarget, Scope};
use crate::pipeline::dlq::DlqEntry;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered deliveries, oldest first.
    List {
        /// Only entries of this subscription.
        #[arg(long)]
        subscription: Option<SubscriptionId>,
        /// At most this many entries (1-1000).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show one entry with its headers.
    Get {
        /// The entry's DLQ stream sequence (the SEQ column of `dlq list`).
        sequence: u64,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Put entries back on the delivery path with a fresh attempt budget.
    Redeliver {
        /// DLQ stream sequences (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        sequences: Vec<u64>,
        /// Every entry (of --subscription, if given).
        #[arg(long)]
        all: bool,
        /// With --all: only entries of this subscription.
        #[arg(long)]
        subscription: Option<SubscriptionId>,
    },
    /// Delete entries (all, or those of --subscription).
    Purge {
        /// Only entries of this subscription.
        #[arg(long)]
        subscription: Option<SubscriptionId>,
    },
}

/// Runs one `dlq` subcommand.
pub async fn run(cmd: DlqCommand, config: Config) -> anyhow::Result<()> {
    let ops = Ops::connect(config, Need::Streams).await?;
    let admin = Scope::Admin;
    match cmd {
        DlqCommand::List { subscription, limit, output } => {
            let entries = ops.dlq_list(&admin, subscription.as_ref(), limit).await?;
            match output.output {
                Output::Json => println!("{}", serde_json::to_string(&entries)?),
                Output::Text if entries.is_empty() => println!("dlq is empty"),
                Output::Text => print_table(&entries),
            }
        }
        DlqCommand::Get { sequence, output } => {
            let e = ops.dlq_get(&admin, sequence).await?;
            match output.output {
                Output::Json => println!("{}", serde_json::to_string(&e)?),
                Output::Text => print_entry(&e),
            }
        }
        DlqCommand::Redeliver { sequences, all, subscription } => {
            if let [seq] = sequences[..] {
                // One entry: its own error (not found, not redeliverable) decides the exit code.
                let e = ops.dlq_redeliver_one(&admin, seq).await?;
                println!("re-queued {seq}: event {} to {}", e.event_id, e.subscription_id);
                println!("1 re-queued, 0 failed");
                return Ok(());
            }
            let target = if all {
                RedeliverTarget::All(subscription)
            } else {
                RedeliverTarget::Sequences(sequences)
            };
            let result = ops.dlq_redeliver(&admin, target).await?;
            for seq in &result.redelivered {
                println!("re-queued {seq}");
            }
            for f in &result.failed {
                eprintln!("error: {}", f.error);
            }
            let failed = result.failed.len();
            println!("{} re-queued, {failed} failed", result.redelivered.len());
            if failed > 0 {
                anyhow::bail!(
                    "{failed} {} could not be redelivered",
                    if failed == 1 { "entry" } else { "entries" }
                );
            }
        }
        DlqCommand::Purge { subscription } => {
            let purged = ops.dlq_purge(&admin, subscription.as_ref()).await?;
            println!("purged {purged} entries");
        }
    }
    Ok(())
}

fn print_table(entries: &[DlqEntry]) {
    println!(
        "{:>6}  {:<37} {:<36} {:<20} {:<22} {:>8} {:>6}",
        "SEQ", "SUBSCRIPTION", "EVENT ID", "EVENT TYPE", "REASON", "ATTEMPTS", "STATUS"
    );
    for e in entries {
        let status = e.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:>6}  {:<37} {:<36} {:<20} {:<22} {:>8} {:>6}",
            e.sequence, e.subscription_id, e.event_id, e.event_type, e.reason, e.attempts, status
        );
    }
}

fn print_entry(e: &DlqEntry) {
    println!("sequence:     {}", e.sequence);
    println!("subscription: {}", e.subscription_id);
    println!("event:        {} ({})", e.event_id, e.event_type);
    println!("reason:       {} — {}", e.reason, e.detail);
    println!("attempts:     {}", e.attempts);
    println!(
        "last status:  {}",
        e.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
    );
}
