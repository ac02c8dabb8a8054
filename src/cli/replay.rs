//! `hookline replay`: replay one event by id, or a time range, from the event log.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;
use crate::ids::{EventId, EventType, SubscriptionId};
use crate::ops::{Need, Ops, ReplayRequest, Scope};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// One event by id.
    #[arg(long, conflicts_with_all = ["since", "until", "event_types"], required_unless_present = "since")]
    pub event_id: Option<EventId>,
    /// Start of the range (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// End of the range (RFC 3339; default now).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Only events of these types; repeatable.
    #[arg(long = "event-type")]
    pub event_types: Vec<EventType>,
    /// Only to this subscription (default: every matching one).
    #[arg(long)]
    pub subscription: Option<SubscriptionId>,
}

fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// Queues the replay and prints how many deliveries it queued.
pub async fn run(args: ReplayArgs, config: Config) -> anyhow::Result<()> {
    let request = ReplayRequest {
        event_id: args.event_id,
        since: args.since,
        until: args.until,
        event_types: args.event_types,
        subscription_id: args.subscription,
    };
    let ops = Ops::connect(config, Need::Everything).await?;
    let queued = ops.replay(&Scope::Admin, request).await?;
    println!("queued {queued} deliveries");
    Ok(())
}
