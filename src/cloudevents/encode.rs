//! Rendering an event as a CloudEvent: structured (the JSON event format) or binary (`ce-*`
//! headers, percent-encoded, plus the data and its media type). The same rendering serves the
//! HTTP deliveries of the `cloudevents` body formats and `hookline publish` to NATS.
//!
//! An event that arrived as a CloudEvent keeps its attributes (id, source, type, time,
//! extensions); any other event gets `source` from `delivery.cloudevents_source`, id = event id,
//! time = occurred_at and a `tenantid` extension when it has a tenant.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

use super::{SPEC_VERSION, TENANT_EXTENSION, is_json_media_type, percent};
use crate::event::WebhookEvent;
use crate::signing::canonical_json;

/// A binary-mode rendering: `ce-*` headers (values percent-encoded), the data's media type and
/// the data itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The event's data as it goes out.
enum OutData<'a> {
    Json(&'a Value),
    Text(&'a str),
    /// Held as base64 in the payload.
    Base64(&'a str),
}

/// The data and its media type.
fn data_of(event: &WebhookEvent) -> (OutData<'_>, String) {
    let Some(ce) = &event.cloudevent else {
        return (OutData::Json(&event.payload), "application/json".into());
    };
    let declared = ce.datacontenttype.clone();
    match &event.payload {
        Value::String(s) if ce.data_base64 => {
            (OutData::Base64(s), declared.unwrap_or_else(|| "application/octet-stream".into()))
        }
        Value::String(s) if declared.as_deref().is_some_and(|t| !is_json_media_type(t)) => {
            (OutData::Text(s), declared.unwrap_or_default())
        }
        payload => (OutData::Json(payload), declared.unwrap_or_else(|| "application/json".into())),
    }
}

/// The context attributes in spec order, extensions last (without `datacontenttype`, which
/// each mode places itself).
fn attributes(event: &WebhookEvent, default_source: &str) -> Vec<(String, Value)> {
    let ce = event.cloudevent.as_ref();
    let source = match ce {
        Some(_) => event.source.as_deref().unwrap_or(default_source),
        None => default_source,
    };
    let specversion = ce.map_or(SPEC_VERSION, |c| c.specversion.as_str());
    let mut attrs = vec![
        ("specversion".to_string(), Value::from(specversion)),
        ("id".to_string(), Value::from(event.event_id.as_str())),
        ("source".to_string(), Value::from(source)),
        ("type".to_string(), Value::from(event.event_type.as_str())),
    ];
    if let Some(ce) = ce {
        for (name, value) in [("dataschema", &ce.dataschema), ("subject", &ce.subject)] {
            if let Some(v) = value {
                attrs.push((name.to_string(), Value::from(v.as_str())));
            }
        }
    }
    if let Some(at) = event.occurred_at.and_then(|t| t.format(&Rfc3339).ok()) {
        attrs.push(("time".to_string(), Value::from(at)));
    }
    if let Some(tenant) = &event.tenant_id {
        attrs.push((TENANT_EXTENSION.to_string(), Value::from(tenant.as_str())));
    }
    if let Some(ce) = ce {
        attrs.extend(ce.extensions.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    attrs
}

/// The structured-mode body (`application/cloudevents+json`). `canonical`: sorted keys,
/// compact, ASCII (for the `x_signature_canonical` scheme).
pub fn structured(event: &WebhookEvent, default_source: &str, canonical: bool) -> Vec<u8> {
    let mut map: Map<String, Value> = attributes(event, default_source).into_iter().collect();
    let (data, content_type) = data_of(event);
    map.insert("datacontenttype".into(), Value::from(content_type));
    match data {
        OutData::Json(v) => map.insert("data".into(), v.clone()),
        OutData::Text(s) => map.insert("data".into(), Value::from(s)),
        OutData::Base64(s) => map.insert("data_base64".into(), Value::from(s)),
    };
    let value = Value::Object(map);
    if canonical { canonical_json(&value) } else { serde_json::to_vec(&value).unwrap_or_default() }
}

/// The binary-mode rendering. `canonical` applies to JSON data.
pub fn binary(event: &WebhookEvent, default_source: &str, canonical: bool) -> Binary {
    let headers = attributes(event, default_source)
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (format!("ce-{name}"), percent::encode(&text))
        })
        .collect();
    let (data, content_type) = data_of(event);
    let body = match data {
        OutData::Json(v) if canonical => canonical_json(v),
        OutData::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
        OutData::Text(s) => s.as_bytes().to_vec(),
        OutData::Base64(s) => BASE64.decode(s).unwrap_or_else(|_| s.as_bytes().to_vec()),
    };
    Binary { headers, content_type, body }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
