//! `hookline publish`: publish one event (the same validation and dedupe as the API), as a
//! WebhookEvent or a CloudEvent.

use super::{InputError, OutputArg};
use crate::config::Config;
use crate::ids::{EventId, EventType, TenantId};
use crate::ingest::EventFormat;
use crate::ops::{Need, NewEvent, Ops, Scope};
use crate::trace_context::TraceContext;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Dot-separated event type, e.g. order.created.
    pub event_type: EventType,
    /// The payload as JSON text.
    pub payload: String,
    /// Event id (default: a fresh evt_<uuid>); also the JetStream dedupe id.
    #[arg(long)]
    pub event_id: Option<EventId>,
    /// Tenant of the event.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Free-form source of the event (a CloudEvent's default: delivery.cloudevents_source).
    #[arg(long)]
    pub source: Option<String>,
    /// Shape of the published message: WebhookEvent JSON, or a CloudEvent in structured
    /// (application/cloudevents+json) or binary (ce-* headers) mode.
    #[arg(long, value_enum, default_value_t = EventFormat::Webhook)]
    pub format: EventFormat,
    /// W3C trace context to publish the event with, e.g.
    /// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01: every webhook request of the
    /// event carries its trace id.
    #[arg(long)]
    pub traceparent: Option<String>,
    /// W3C tracestate sent along with --traceparent, unchanged.
    #[arg(long, requires = "traceparent")]
    pub tracestate: Option<String>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Publishes and prints where the event went; an id already published is a conflict (exit 4),
/// as the API's 409.
pub async fn run(args: PublishArgs, config: Config) -> anyhow::Result<()> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .map_err(|e| InputError(format!("payload is not valid JSON: {e}")))?;
    let trace = match &args.traceparent {
        Some(tp) => Some(TraceContext::parse(tp, args.tracestate.as_deref()).ok_or_else(|| {
            InputError(format!("--traceparent {tp:?} is not a valid W3C traceparent"))
        })?),
        None => None,
    };
    let event = NewEvent {
        event_id: args.event_id,
        event_type: args.event_type,
        payload,
        occurred_at: None,
        source: args.source,
        tenant_id: args.tenant,
        format: args.format,
        cloudevent: None,
        trace,
    };
    let ops = Ops::connect(config, Need::Streams).await?;
    let published = ops.publish(&Scope::Admin, event).await?;
    match args.output.output {
        super::Output::Json => println!("{}", serde_json::to_string(&published)?),
        super::Output::Text => println!(
            "published {} to {} (stream sequence {})",
            published.event_id, published.subject, published.stream_sequence
        ),
    }
    Ok(())
}
