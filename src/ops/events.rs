//! Publishing an event (the NATS path's validation and dedupe, for callers without a NATS
//! client): `<p>.events.<type>` with `Nats-Msg-Id = event_id`, done once JetStream stored it,
//! as a WebhookEvent or a CloudEvent (structured or binary).

use super::{Ops, OpsError, Scope};
use crate::event::{CeContext, InvalidEvent, WebhookEvent};
use crate::ids::{EventId, EventType, TenantId};
use crate::ingest::{EventFormat, PublishError, Published};

/// An event to publish, as a front end parsed it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Default: a fresh `evt_<uuid>`.
    pub event_id: Option<EventId>,
    pub event_type: EventType,
    pub payload: serde_json::Value,
    /// Default: now.
    pub occurred_at: Option<time::OffsetDateTime>,
    pub source: Option<String>,
    /// Forced to the scope's tenant for a tenant scope.
    pub tenant_id: Option<TenantId>,
    /// The shape it is published in.
    pub format: EventFormat,
    /// The other attributes of an event given as a CloudEvent.
    pub cloudevent: Option<CeContext>,
    /// W3C trace context to publish the event with (a valid `traceparent`; an invalid one is
    /// dropped by the front end).
    pub trace: Option<crate::trace_context::TraceContext>,
}

fn invalid(e: InvalidEvent) -> OpsError {
    let field = match &e {
        InvalidEvent::BadEventId(_) => "event_id",
        InvalidEvent::BadEventType(_) => "event_type",
        InvalidEvent::TooLong { field } => field,
        InvalidEvent::TooLarge { .. } => return OpsError::TooLarge(e.to_string()),
        _ => "payload",
    };
    OpsError::invalid(field, e.to_string())
}

impl Ops {
    /// Publishes `event`. An id JetStream already holds (inside the duplicate window) is a
    /// conflict, `duplicate_event`: nothing new was stored, and every front end says so alike.
    pub async fn publish(&self, scope: &Scope, event: NewEvent) -> Result<Published, OpsError> {
        let tenant_id = scope.scope_tenant(event.tenant_id, "publish events")?;
        let ce_source = &self.config.delivery.cloudevents_source;
        // Published as a CloudEvent, it is one from the start: its own attributes, or JSON data
        // and the configured source.
        let (cloudevent, source) = match (event.format, event.cloudevent) {
            (EventFormat::Webhook, cloudevent) => (cloudevent, event.source),
            (_, cloudevent) => (
                Some(cloudevent.unwrap_or_else(CeContext::json)),
                Some(event.source.unwrap_or_else(|| ce_source.clone())),
            ),
        };
        let format = event.format;
        let trace = event.trace;
        let event = WebhookEvent {
            event_id: event.event_id.unwrap_or_else(EventId::generate),
            event_type: event.event_type,
            payload: event.payload,
            occurred_at: Some(event.occurred_at.unwrap_or_else(time::OffsetDateTime::now_utc)),
            source,
            tenant_id,
            cloudevent,
        };
        event.validate().map_err(invalid)?;
        let limit = self.config.delivery.max_payload_bytes;
        let js = self.js()?;
        let published = crate::ingest::publish_as(
            js,
            &self.names,
            &event,
            limit,
            format,
            ce_source,
            trace.as_ref(),
        )
        .await
        .map_err(|e| match e {
            PublishError::Invalid(i) => invalid(i),
            other => OpsError::Backend(super::BackendError::Nats(other.to_string())),
        })?;
        if published.duplicate {
            return Err(OpsError::Conflict {
                code: "duplicate_event",
                message: format!(
                    "event {} was already published (stream sequence {})",
                    published.event_id, published.stream_sequence
                ),
            });
        }
        Ok(published)
    }
}
