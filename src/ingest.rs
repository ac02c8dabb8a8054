//! Publishing events into hookline: the library side of `hookline publish` (applications with a
//! NATS client publish the same JSON themselves), as a WebhookEvent or as a CloudEvent in
//! structured or binary mode (NATS protocol binding).

use async_nats::HeaderMap;
use async_nats::jetstream;

use crate::cloudevents::{self, encode};
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

/// The shape an event is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventFormat {
    /// WebhookEvent JSON.
    #[default]
    Webhook,
    /// Structured CloudEvent: `content-type: application/cloudevents+json`, the event as JSON.
    Cloudevents,
    /// Binary CloudEvent: attributes in `ce-*` headers, the data as the body.
    CloudeventsBinary,
}

/// Validates `event` and publishes it on `<p>.events.<type>` with `Nats-Msg-Id = event_id`;
/// returns once JetStream has stored it.
pub async fn publish_event(
    js: &jetstream::Context,
    names: &Names,
    event: &WebhookEvent,
    limit: usize,
) -> Result<Published, PublishError> {
    publish_as(js, names, event, limit, EventFormat::Webhook, "", None).await
}

/// [`publish_event`] in `format`; `ce_source` is the CloudEvents source of an event that has
/// none of its own; `trace`, a W3C trace context, is sent as the `traceparent` / `tracestate`
/// headers that every delivery of the event carries on to its webhook requests.
pub async fn publish_as(
    js: &jetstream::Context,
    names: &Names,
    event: &WebhookEvent,
    limit: usize,
    format: EventFormat,
    ce_source: &str,
    trace: Option<&TraceContext>,
) -> Result<Published, PublishError> {
    event.validate()?;
    let mut headers = HeaderMap::new();
    let body = match format {
        EventFormat::Webhook => {
            serde_json::to_vec(event).map_err(|e| InvalidEvent::InvalidJson(e.to_string()))?
        }
        EventFormat::Cloudevents => {
            headers.insert("content-type", cloudevents::STRUCTURED_JSON);
            encode::structured(event, ce_source, false)
        }
        EventFormat::CloudeventsBinary => {
            let binary = encode::binary(event, ce_source, false);
            for (name, value) in &binary.headers {
                headers.insert(name.as_str(), value.as_str());
            }
            headers.insert("content-type", binary.content_type.as_str());
            binary.body
        }
    };
    if body.len() > limit {
        return Err(InvalidEvent::TooLarge { size: body.len(), limit }.into());
    }
    let subject = names.event(&event.event_type);
    let nats_err = |e: &dyn std::fmt::Display| PublishError::Nats {
        event_id: event.event_id.to_string(),
        subject: subject.clone(),
        message: e.to_string(),
    };
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
