//! Publishing events into hookline: the library side of `hookline publish` (applications with a
//! NATS client publish the same JSON themselves).

use async_nats::HeaderMap;
use async_nats::jetstream;

use crate::event::{InvalidEvent, WebhookEvent};
use crate::subjects::Names;
use crate::trace_context::TraceContext;

/// A publish that failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    #[error("publishing event {event_id} to {subject}: {message}")]
    Nats { event_id: String, subject: String, message: String },
}

/// The result of a publish: where it went and whether JetStream saw the id before.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Published {
    pub event_id: String,
    pub subject: String,
    pub stream_sequence: u64,
    pub duplicate: bool,
}

/// Validates `event` and publishes it on `<p>.events.<type>` with `Nats-Msg-Id = event_id`;
/// returns once JetStream has stored it.
pub async fn publish_event(
    js: &jetstream::Context,
    names: &Names,
    event: &WebhookEvent,
    limit: usize,
) -> Result<Published, PublishError> {
    publish_event_traced(js, names, event, limit, None).await
}

/// [`publish_event`] with a W3C trace context, sent as the `traceparent` / `tracestate`
/// headers that every delivery of the event carries on to its webhook requests.
pub async fn publish_event_traced(
    js: &jetstream::Context,
    names: &Names,
    event: &WebhookEvent,
    limit: usize,
    trace: Option<&TraceContext>,
) -> Result<Published, PublishError> {
    event.validate()?;
    let body = serde_json::to_vec(event).map_err(|e| InvalidEvent::InvalidJson(e.to_string()))?;
    if body.len() > limit {
        return Err(InvalidEvent::TooLarge { size: body.len(), limit }.into());
    }
    let subject = names.event(&event.event_type);
    let nats_err = |e: &dyn std::fmt::Display| PublishError::Nats {
        event_id: event.event_id.to_string(),
        subject: subject.clone(),
        message: e.to_string(),
    };
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.as_str());
    if let Some(trace) = trace {
        trace.insert_into(&mut headers);
    }
    let ack = js
        .publish_with_headers(subject.clone(), headers, body.into())
        .await
        .map_err(|e| nats_err(&e))?
        .await
        .map_err(|e| nats_err(&e))?;
    Ok(Published {
        event_id: event.event_id.to_string(),
        subject,
        stream_sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// A fresh event id: `evt_` + a time-ordered UUID.
pub fn new_event_id() -> String {
    crate::ids::EventId::generate().into_string()
}
