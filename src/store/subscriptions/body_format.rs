//! [`BodyFormat`]: what a subscription's POST body carries (the HTTP request is built by
//! `pipeline::http_post`).

use serde::{Deserialize, Serialize};

/// What the POST body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `{"type", "timestamp", "data"}` (Standard Webhooks).
    #[default]
    Envelope,
    /// The event's payload alone.
    Payload,
    /// A CloudEvent in structured mode: `Content-Type: application/cloudevents+json`, the whole
    /// event as JSON.
    Cloudevents,
    /// A CloudEvent in binary mode (HTTP binding): `ce-*` headers, the data as the body with
    /// its own content type.
    CloudeventsBinary,
}
