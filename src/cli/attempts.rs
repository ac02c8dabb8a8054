//! `hookline attempts list`: the attempt log, newest first, paginated.

use clap::Subcommand;
use time::OffsetDateTime;

use super::{Output, OutputArg};
use crate::attempt_log::{AttemptPage, AttemptRecord, AttemptStatus};
use crate::config::Config;
use crate::ids::{EventId, SubscriptionId};
use crate::ops::{AttemptFilter, Need, Ops, Scope};

#[derive(Debug, Subcommand)]
pub enum AttemptsCommand {
    /// Attempts, newest first.
    List {
        /// Only attempts to this subscription.
        #[arg(long)]
        subscription: Option<SubscriptionId>,
        /// Only attempts of this event.
        #[arg(long)]
        event_id: Option<EventId>,
        /// Only attempts with this outcome: succeeded, failed, dead_lettered,
        /// skipped_duplicate, deferred or aborted.
        #[arg(long, value_parser = parse_status)]
        status: Option<AttemptStatus>,
        /// Page size (1-500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Cursor from a previous page (printed as `--before N` under the table).
        #[arg(long)]
        before: Option<u64>,
        #[command(flatten)]
        output: OutputArg,
    },
}

fn parse_status(s: &str) -> Result<AttemptStatus, String> {
    crate::ops::parse_status("status", s).map_err(|e| e.to_string())
}

/// Runs `attempts list`.
pub async fn run(cmd: AttemptsCommand, config: Config) -> anyhow::Result<()> {
    let AttemptsCommand::List { subscription, event_id, status, limit, before, output } = cmd;
    let ops = Ops::connect(config, Need::Everything).await?;
    let filter = AttemptFilter { subscription_id: subscription, event_id, status, limit, before };
    let page = ops.attempts(&Scope::Admin, filter).await?;
    match output.output {
        Output::Json => println!("{}", serde_json::to_string(&page)?),
        Output::Text if page.items.is_empty() => println!("no attempts"),
        Output::Text => print_table(&page),
    }
    Ok(())
}

/// A record's time at a fixed width (milliseconds, UTC), so the columns line up.
pub fn at(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

fn print_table(page: &AttemptPage) {
    println!(
        "{:<24} {:<37} {:<28} {:>3} {:<17} {:>6} {:>7}  ERROR",
        "AT", "SUBSCRIPTION", "EVENT ID", "#", "STATUS", "HTTP", "MS"
    );
    for r in &page.items {
        let http = r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:<37} {:<28} {:>3} {:<17} {:>6} {:>7}  {}",
            at(r.at),
            r.subscription_id,
            r.event_id,
            r.attempt,
            r.status.as_str(),
            http,
            r.duration_ms,
            r.error.as_deref().unwrap_or("")
        );
    }
    if let Some(c) = page.next_cursor {
        println!("(more: --before {c})");
    }
}

/// One human-readable line for an attempt record (for `tail`).
pub fn tail_line(r: &AttemptRecord) -> String {
    let http = r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
    let mut line = format!(
        "{} {:<17} {} {} #{} {} {}ms",
        at(r.at),
        r.status.as_str(),
        r.subscription_id,
        r.event_id,
        r.attempt,
        http,
        r.duration_ms
    );
    if let Some(e) = &r.error {
        line.push_str(&format!(" error={e}"));
    }
    if let Some(next) = r.next_retry_at {
        line.push_str(&format!(" next={}", at(next)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_one_width_whatever_their_fraction() {
        let whole = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let nanos = time::macros::datetime!(2026-01-02 03:04:05.123456789 UTC);
        assert_eq!(at(whole), "2026-01-02T03:04:05.000Z");
        assert_eq!(at(nanos).len(), at(whole).len());
    }
}
