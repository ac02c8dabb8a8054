//! The messages that flow through hookline: [`WebhookEvent`] (published by applications) and
//! [`Delivery`] (one event bound to one subscription), with the id and type grammars.
//!
//! Parsing never panics: every way an input can be wrong maps to an [`InvalidEvent`] whose
//! `reason()` is the machine-readable code written to the DLQ's `Hookline-Reason` header.
//!
//! Both messages hold typed ids ([`EventId`], [`EventType`], [`TenantId`], [`SubscriptionId`]),
//! so a value is proof its ids are valid. JSON is read into a private wire struct of `String`s
//! (`EventWire`, `DeliveryWire`) and converted by one function that names the field that is
//! wrong as an [`InvalidEvent`] (a serde error could not carry the DLQ reason).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{EventId, EventType, SubscriptionId, TenantId};

mod ce_context;
mod invalid;
pub use ce_context::CeContext;
pub use invalid::InvalidEvent;

/// Longest accepted event id, type, source or tenant id.
pub const MAX_ID_LEN: usize = crate::ids::MAX_NAME_LEN;
/// Deepest accepted JSON nesting of an event.
pub const MAX_JSON_DEPTH: usize = 64;

/// An event as applications publish it on `<prefix>.events.<event_type>`. Deserializing checks
/// its fields as [`WebhookEvent::parse`] does; `parse` adds the size, depth and subject checks
/// and the receipt time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EventWire")]
pub struct WebhookEvent {
    /// Unique id; also the `Nats-Msg-Id` and the `webhook-id` header.
    pub event_id: EventId,
    /// Dot-separated type, e.g. `order.created`.
    pub event_type: EventType,
    /// Any JSON; delivered as `data`.
    pub payload: serde_json::Value,
    /// When it happened (defaults to receipt time).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub occurred_at: Option<OffsetDateTime>,
    /// Free-form origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Tenant; when set, only subscriptions of that tenant (or of none) receive it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The CloudEvents attributes of an event published as a CloudEvent (absent otherwise, so
    /// a WebhookEvent's JSON is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudevent: Option<CeContext>,
}

/// An event as read: the same fields and defaults as [`WebhookEvent`], unchecked.
#[derive(Deserialize)]
struct EventWire {
    event_id: String,
    event_type: String,
    payload: serde_json::Value,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    cloudevent: Option<CeContext>,
}

impl TryFrom<EventWire> for WebhookEvent {
    type Error = InvalidEvent;

    /// Checks in a fixed order (id, type, source, tenant), so the first wrong field is the one
    /// reported. Each id moves into its type without a copy.
    fn try_from(w: EventWire) -> Result<WebhookEvent, InvalidEvent> {
        let EventWire { event_id, event_type, payload, occurred_at, source, tenant_id, cloudevent } =
            w;
        let event_id =
            EventId::try_from(event_id).map_err(|e| InvalidEvent::BadEventId(e.value))?;
        let event_type =
            EventType::try_from(event_type).map_err(|e| InvalidEvent::BadEventType(e.value))?;
        check_source(source.as_deref())?;
        let tenant_id = tenant_id.map(|t| check_tenant(t, "tenant_id")).transpose()?;
        Ok(WebhookEvent {
            event_id,
            event_type,
            payload,
            occurred_at,
            source,
            tenant_id,
            cloudevent,
        })
    }
}

/// A tenant id read from `field`, checked.
pub(crate) fn check_tenant(t: String, field: &'static str) -> Result<TenantId, InvalidEvent> {
    if t.len() > MAX_ID_LEN {
        return Err(InvalidEvent::TooLong { field });
    }
    TenantId::try_from(t).map_err(|e| InvalidEvent::BadField(e.to_string()))
}

/// The one check the types do not carry: `source` is free-form but bounded.
pub(crate) fn check_source(source: Option<&str>) -> Result<(), InvalidEvent> {
    match source {
        Some(s) if s.len() > MAX_ID_LEN => Err(InvalidEvent::TooLong { field: "source" }),
        _ => Ok(()),
    }
}

/// One event bound to one subscription: the body of every deliveries and DLQ message. It is
/// self-contained so a DLQ entry can be replayed by republishing its body.
///
/// On the wire the event's fields and `subscription_id` sit side by side. Serde's `flatten` would
/// say that in one line but buffers every field (payload included) and parses it twice; the
/// explicit [`DeliveryWire`] / [`DeliveryRef`] below do it in one pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "DeliveryWire")]
pub struct Delivery {
    pub event: WebhookEvent,
    /// Target subscription.
    pub subscription_id: SubscriptionId,
}

/// A delivery as read: [`EventWire`]'s fields and `subscription_id`, unchecked.
#[derive(Deserialize)]
struct DeliveryWire {
    event_id: String,
    event_type: String,
    payload: serde_json::Value,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    subscription_id: String,
    #[serde(default)]
    cloudevent: Option<CeContext>,
}

impl TryFrom<DeliveryWire> for Delivery {
    type Error = InvalidEvent;

    /// The event's checks first, then the subscription id's.
    fn try_from(w: DeliveryWire) -> Result<Delivery, InvalidEvent> {
        let DeliveryWire {
            event_id,
            event_type,
            payload,
            occurred_at,
            source,
            tenant_id,
            subscription_id,
            cloudevent,
        } = w;
        let wire =
            EventWire { event_id, event_type, payload, occurred_at, source, tenant_id, cloudevent };
        let event = WebhookEvent::try_from(wire)?;
        let subscription_id = SubscriptionId::try_from(subscription_id).map_err(|e| {
            InvalidEvent::BadField(format!(
                "subscription_id {:?} is not a subscription id",
                e.value
            ))
        })?;
        Ok(Delivery { event, subscription_id })
    }
}

/// A delivery as written: the event's fields, then `subscription_id`.
#[derive(Serialize)]
struct DeliveryRef<'a> {
    event_id: &'a str,
    event_type: &'a str,
    payload: &'a serde_json::Value,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    occurred_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    subscription_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloudevent: Option<&'a CeContext>,
}

impl<'a> DeliveryRef<'a> {
    fn new(e: &'a WebhookEvent, subscription_id: &'a str) -> DeliveryRef<'a> {
        DeliveryRef {
            event_id: &e.event_id,
            event_type: &e.event_type,
            payload: &e.payload,
            occurred_at: e.occurred_at,
            source: e.source.as_deref(),
            tenant_id: e.tenant_id.as_deref(),
            subscription_id,
            cloudevent: e.cloudevent.as_ref(),
        }
    }
}

impl Serialize for Delivery {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DeliveryRef::new(&self.event, &self.subscription_id).serialize(serializer)
    }
}

/// True when `id` is usable as event id (the rule is [`EventId`]'s).
pub fn valid_event_id(id: &str) -> bool {
    EventId::is_valid(id)
}

/// True when `t` is an event type (the rule is [`EventType`]'s).
pub fn valid_event_type(t: &str) -> bool {
    EventType::is_valid(t)
}

/// Deepest nesting of `{`/`[` in JSON text, ignoring brackets inside strings. Checked before
/// parsing so a hostile document cannot blow the parser's stack.
pub(crate) fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl WebhookEvent {
    /// Parses and validates a published event. `subject_type` is the type taken from the
    /// subject it arrived on; the body's `event_type` must equal it.
    pub fn parse(
        bytes: &[u8],
        subject_type: &str,
        limit: usize,
    ) -> Result<WebhookEvent, InvalidEvent> {
        if bytes.len() > limit {
            return Err(InvalidEvent::TooLarge { size: bytes.len(), limit });
        }
        if json_depth(bytes) > MAX_JSON_DEPTH {
            return Err(InvalidEvent::TooDeep);
        }
        // One pass for a well-formed event; only a failure is parsed again, into a `Value`
        // first, to tell invalid JSON from a missing or wrong field. The ids are checked after
        // reading strings, so a bad one is its own reason, not a serde error.
        let wire: EventWire = match serde_json::from_slice(bytes) {
            Ok(wire) => wire,
            Err(_) => {
                let value: serde_json::Value = serde_json::from_slice(bytes)
                    .map_err(|e| InvalidEvent::InvalidJson(e.to_string()))?;
                serde_json::from_value(value).map_err(|e| InvalidEvent::BadField(e.to_string()))?
            }
        };
        let mut event = WebhookEvent::try_from(wire)?;
        if event.event_type != *subject_type {
            return Err(InvalidEvent::TypeMismatch {
                body: event.event_type.into_string(),
                subject: subject_type.to_string(),
            });
        }
        if event.occurred_at.is_none() {
            event.occurred_at = Some(OffsetDateTime::now_utc());
        }
        Ok(event)
    }

    /// Checks what the field types do not prove: the length of `source` (the ids are valid by
    /// construction).
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        check_source(self.source.as_deref())
    }

    /// Unix seconds of `occurred_at` (or now).
    pub fn timestamp_rfc3339(&self) -> String {
        let at = self.occurred_at.unwrap_or_else(OffsetDateTime::now_utc);
        at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    }

    /// The Standard Webhooks body: `{"type", "timestamp", "data"}`. Built from the event alone,
    /// so it is byte-identical on every attempt.
    pub fn webhook_body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            timestamp: String,
            data: &'a serde_json::Value,
        }
        let body = Body {
            kind: &self.event_type,
            timestamp: self.timestamp_rfc3339(),
            data: &self.payload,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl Delivery {
    /// Parses a deliveries/DLQ message body.
    pub fn parse(bytes: &[u8]) -> Result<Delivery, InvalidEvent> {
        if json_depth(bytes) > MAX_JSON_DEPTH {
            return Err(InvalidEvent::TooDeep);
        }
        let wire: DeliveryWire =
            serde_json::from_slice(bytes).map_err(|e| InvalidEvent::InvalidJson(e.to_string()))?;
        Delivery::try_from(wire)
    }

    /// The JSON body of a deliveries message.
    pub fn to_bytes(&self) -> Vec<u8> {
        Delivery::bytes_for(&self.event, &self.subscription_id)
    }

    /// The body of `event`'s delivery to one subscription, without building a [`Delivery`]
    /// (fan-out writes one per matching subscription from the same event).
    pub fn bytes_for(event: &WebhookEvent, subscription_id: &str) -> Vec<u8> {
        serde_json::to_vec(&DeliveryRef::new(event, subscription_id)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
