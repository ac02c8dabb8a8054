//! `hookline tail`: follow delivery attempts live on the attempt subjects (core NATS; nothing
//! is stored or acknowledged).

use anyhow::Context as _;
use futures::StreamExt;

use crate::attempt_record::records_of;
use crate::config::Config;
use crate::ids::SubscriptionId;

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Only this subscription.
    #[arg(long)]
    pub subscription: Option<SubscriptionId>,
    /// Only failures (failed, dead-lettered, deferred, aborted).
    #[arg(long)]
    pub failures: bool,
    /// Stop after this many lines (default: run until interrupted).
    #[arg(long)]
    pub count: Option<usize>,
}

/// Prints one line per attempt until interrupted or `--count` lines.
pub async fn run(args: TailArgs, config: Config) -> anyhow::Result<()> {
    let names = config.streams.names();
    let client = crate::topology::connect(&config.nats).await?;
    let subject = match &args.subscription {
        Some(s) => names.attempts(s),
        None => names.attempts_wildcard(),
    };
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    eprintln!("following {subject} (ctrl-c to stop)");
    let mut printed = 0;
    while let Some(msg) = sub.next().await {
        // One message holds one or more records of a subscription (JSON Lines).
        for r in records_of(&msg.payload) {
            if args.failures && !r.status.is_failure() {
                continue;
            }
            println!("{}", super::attempts::tail_line(&r));
            printed += 1;
            if args.count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
    }
    Ok(())
}
