//! The command line: clap definitions and the thin glue from each subcommand to the library.
//!
//! Exit codes: 0 success, 1 failure (a server unreachable, a signature that does not verify),
//! 2 invalid input or configuration (nothing was changed).

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::Role;

/// Webhook delivery on NATS JetStream and Redis.
#[derive(Debug, Parser)]
#[command(name = "hookline", version, about)]
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
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the delivery service (all roles unless --role is given).
    Serve {
        /// Roles to run; repeat for several. Default: fanout, deliver and api.
        #[arg(long = "role", value_enum)]
        roles: Vec<Role>,
    },
    /// Manage subscriptions (stored in Redis).
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Publish an event to `<prefix>.events.<event_type>`.
    Publish {
        /// Dot-separated event type, e.g. order.created.
        event_type: String,
        /// The payload as JSON text.
        payload: String,
        /// Event id (default: a fresh evt_<uuid>); also the JetStream dedupe id.
        #[arg(long)]
        event_id: Option<String>,
        /// Tenant of the event.
        #[arg(long)]
        tenant: Option<String>,
        /// Free-form source of the event.
        #[arg(long)]
        source: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Inspect and act on the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The attempt log.
    #[command(subcommand)]
    Attempts(AttemptsCommand),
    /// Delivery statistics over 5 min / 1 h / 24 h (one subscription, or overall).
    Stats {
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Follow delivery attempts live (subscribes to the attempt subjects).
    Tail {
        /// Only this subscription.
        #[arg(long)]
        subscription: Option<String>,
        /// Only failures (failed, dead-lettered, deferred, aborted).
        #[arg(long)]
        failures: bool,
        /// Stop after this many lines (default: run until interrupted).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Replay events from the event log: one by id, or a time range.
    Replay {
        /// One event by id.
        #[arg(long, conflicts_with_all = ["since", "until", "event_types"], required_unless_present = "since")]
        event_id: Option<String>,
        /// Start of the range (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// End of the range (RFC 3339; default now).
        #[arg(long)]
        until: Option<String>,
        /// Only events of these types; repeatable.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// Only to this subscription (default: every matching one).
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Verify a Standard Webhooks signature of a body read from stdin (exit 0 valid, 1 not).
    Verify {
        /// The endpoint's secret, whsec_...
        #[arg(long, env = "HOOKLINE_VERIFY_SECRET")]
        secret: String,
        /// The webhook-id header.
        #[arg(long)]
        id: String,
        /// The webhook-timestamp header (Unix seconds).
        #[arg(long)]
        timestamp: String,
        /// The webhook-signature header (space-separated v1,<base64> entries).
        #[arg(long)]
        signature: String,
        /// Accepted clock difference in seconds.
        #[arg(long, default_value_t = crate::signing::DEFAULT_TOLERANCE_SECS)]
        tolerance: u64,
    },
    /// A development receiver that verifies signatures and prints deliveries (used by the demo).
    Receive(crate::cli_receive::ReceiveArgs),
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Create a subscription; prints its id and its secret (shown only here).
    Create {
        #[command(flatten)]
        fields: SubscriptionFields,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List subscriptions (without secrets).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only those that receive this event type.
        #[arg(long)]
        event_type: Option<String>,
        /// Only active (true) or inactive (false) ones.
        #[arg(long)]
        active: Option<bool>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one subscription (without its secret).
    Get {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Change a subscription's url, filters, tenant or description.
    Update {
        id: String,
        #[command(flatten)]
        fields: SubscriptionFields,
        /// Remove every event-type filter (receive all events).
        #[arg(long, conflicts_with = "event_types")]
        all_events: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a subscription.
    Delete { id: String },
    /// Resume deliveries to a subscription.
    Activate { id: String },
    /// Stop deliveries to a subscription (new events are not fanned out to it).
    Deactivate { id: String },
    /// Make a new secret; the old one keeps signing for api.secret_rotation_grace_hours.
    RotateSecret {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttemptsCommand {
    /// Attempts, newest first.
    List {
        #[arg(long)]
        subscription: Option<String>,
        #[arg(long)]
        event_id: Option<String>,
        /// succeeded, failed, dead_lettered or skipped_duplicate.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub struct SubscriptionFields {
    /// Endpoint URL (http or https); required by create.
    #[arg(long)]
    pub url: Option<String>,
    /// Event-type filter: exact (order.created) or NATS wildcard (order.*, order.>); repeatable.
    /// None means every event.
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    /// Tenant: the subscription then receives only events of that tenant (and tenant-less ones).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// Extra signature scheme besides Standard Webhooks; repeatable.
    #[arg(long = "signature-scheme", value_enum)]
    pub signature_schemes: Vec<SchemeArg>,
    /// POST body: the Standard Webhooks envelope or the bare payload.
    #[arg(long, value_enum)]
    pub body_format: Option<BodyFormatArg>,
    /// Most requests in flight to this endpoint at once (overrides health.max_in_flight_per_endpoint; 0 clears).
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Most requests per second to this endpoint (overrides health.max_rps_per_endpoint; 0 = unlimited).
    #[arg(long)]
    pub max_rps: Option<u32>,
    /// Delivery order: unordered (default) or fifo (one at a time, in publish order).
    #[arg(long, value_enum)]
    pub ordering: Option<OrderingArg>,
    /// Metadata entry key=value; repeatable.
    #[arg(long = "metadata", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,
}

/// `--signature-scheme` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// X-Webhook-Signature: sha256=<hex> (+ X-Webhook-Event-Type/-ID/-Timestamp).
    WebhookSha256,
    /// X-Signature: <hex> over a canonical JSON body.
    XSignature,
}

/// `--ordering` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderingArg {
    Unordered,
    Fifo,
}

/// `--body-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BodyFormatArg {
    Envelope,
    Payload,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered deliveries, oldest first.
    List {
        #[arg(long)]
        subscription: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one entry with its headers.
    Get {
        sequence: u64,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Put entries back on the delivery path with a fresh attempt budget.
    Redeliver {
        /// DLQ stream sequences (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        sequences: Vec<u64>,
        /// Every entry (of --subscription, if given).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Delete entries (all, or those of --subscription).
    Purge {
        #[arg(long)]
        subscription: Option<String>,
    },
}

/// Reads stdin fully (for `verify`).
pub fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    Ok(body)
}
