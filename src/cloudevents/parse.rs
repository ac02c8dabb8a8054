//! Reading a message of the events stream: a WebhookEvent, or a CloudEvent in binary or
//! structured mode (NATS protocol binding), each mapped onto a [`WebhookEvent`].
//!
//! Every way a CloudEvent can be wrong is an [`InvalidEvent`] with its own reason: a missing
//! required attribute, a spec version other than 1.0, a header that does not decode, data that is
//! not JSON though its content type says so, or any other bad attribute.

use async_nats::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    CeContext, SPEC_VERSION, TENANT_EXTENSION, is_json_media_type, is_structured, percent,
    valid_extension_name,
};
use crate::event::{InvalidEvent, MAX_JSON_DEPTH, WebhookEvent, check_source, check_tenant};
use crate::ids::{EventId, EventType};

/// The data of a CloudEvent as read, before its content type is applied.
enum Data {
    Absent,
    /// `data` of a structured event.
    Json(Value),
    /// The body of a binary event.
    Body(Vec<u8>),
    /// `data_base64` of a structured event, decoded.
    Base64(Vec<u8>),
}

/// Parses a message of `<prefix>.events.<subject_type>`: structured CloudEvent when its
/// `content-type` is `application/cloudevents...`, binary CloudEvent when it has a `ce-*`
/// header, a WebhookEvent otherwise.
pub fn parse_message(
    headers: Option<&HeaderMap>,
    body: &[u8],
    subject_type: &str,
    limit: usize,
) -> Result<WebhookEvent, InvalidEvent> {
    let Some(headers) = headers else {
        return WebhookEvent::parse(body, subject_type, limit);
    };
    if header(headers, "content-type").is_some_and(is_structured) {
        return parse_structured(body, Some(subject_type), limit);
    }
    if headers.iter().any(|(name, _)| is_ce_header(name.as_ref())) {
        return parse_binary(headers, body, subject_type, limit);
    }
    WebhookEvent::parse(body, subject_type, limit)
}

/// A structured-mode CloudEvent (JSON event format). `subject_type`, when given, must equal
/// its `type`.
pub fn parse_structured(
    body: &[u8],
    subject_type: Option<&str>,
    limit: usize,
) -> Result<WebhookEvent, InvalidEvent> {
    check_size(body, limit)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| InvalidEvent::InvalidJson(e.to_string()))?;
    let Value::Object(mut attrs) = value else {
        return Err(InvalidEvent::CeAttribute(
            "a structured cloudevent must be a JSON object".into(),
        ));
    };
    let data = match (attrs.remove("data"), attrs.remove("data_base64")) {
        (Some(d), Some(b)) if !d.is_null() && !b.is_null() => {
            return Err(InvalidEvent::CeAttribute("data and data_base64 are both set".into()));
        }
        (Some(d), _) if !d.is_null() => Data::Json(d),
        (_, Some(Value::String(b))) => Data::Base64(BASE64.decode(b.as_bytes()).map_err(|e| {
            InvalidEvent::CeAttribute(format!("data_base64 is not valid base64: {e}"))
        })?),
        (_, Some(b)) if !b.is_null() => {
            return Err(InvalidEvent::CeAttribute("data_base64 must be a string".into()));
        }
        _ => Data::Absent,
    };
    build(attrs, data, subject_type)
}

/// A binary-mode CloudEvent: attributes in `ce-*` headers, the data as the body, its media type
/// in `content-type` (or `ce-datacontenttype`).
fn parse_binary(
    headers: &HeaderMap,
    body: &[u8],
    subject_type: &str,
    limit: usize,
) -> Result<WebhookEvent, InvalidEvent> {
    if body.len() > limit {
        return Err(InvalidEvent::TooLarge { size: body.len(), limit });
    }
    let mut attrs = Map::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        let Some(raw) = values.first() else { continue };
        if !is_ce_header(name) {
            continue;
        }
        let value = percent::decode(raw.as_ref()).map_err(|e| InvalidEvent::CeEncoding {
            header: name.to_ascii_lowercase(),
            detail: e.to_string(),
        })?;
        attrs.insert(name[3..].to_ascii_lowercase(), Value::String(value));
    }
    if let Some(content_type) = header(headers, "content-type") {
        attrs.insert("datacontenttype".into(), Value::String(content_type.trim().to_string()));
    }
    let data = if body.is_empty() { Data::Absent } else { Data::Body(body.to_vec()) };
    build(attrs, data, Some(subject_type))
}

/// Checks the attributes and maps them onto a [`WebhookEvent`]; what has no field of its own
/// stays in the [`CeContext`].
fn build(
    mut attrs: Map<String, Value>,
    data: Data,
    subject_type: Option<&str>,
) -> Result<WebhookEvent, InvalidEvent> {
    let specversion = required(&mut attrs, "specversion")?;
    let id = required(&mut attrs, "id")?;
    let source = required(&mut attrs, "source")?;
    let kind = required(&mut attrs, "type")?;
    if specversion != SPEC_VERSION {
        return Err(InvalidEvent::CeSpecVersion(specversion));
    }
    let event_id = EventId::try_from(id).map_err(|e| InvalidEvent::BadEventId(e.value))?;
    let event_type = EventType::try_from(kind).map_err(|e| InvalidEvent::BadEventType(e.value))?;
    if let Some(subject) = subject_type.filter(|s| event_type != **s) {
        return Err(InvalidEvent::TypeMismatch {
            body: event_type.into_string(),
            subject: subject.to_string(),
        });
    }
    check_source(Some(&source))?;
    let occurred_at = match optional(&mut attrs, "time")? {
        Some(t) => OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
            InvalidEvent::CeAttribute(format!("time {t:?} is not an RFC 3339 timestamp: {e}"))
        })?,
        None => OffsetDateTime::now_utc(),
    };
    let mut datacontenttype = optional(&mut attrs, "datacontenttype")?;
    let dataschema = optional(&mut attrs, "dataschema")?;
    let subject = optional(&mut attrs, "subject")?;
    let tenant_id =
        optional(&mut attrs, TENANT_EXTENSION)?.map(|t| check_tenant(t, "tenantid")).transpose()?;
    let extensions = extensions(attrs)?;
    let (payload, data_base64) = resolve(data, &mut datacontenttype)?;
    Ok(WebhookEvent {
        event_id,
        event_type,
        payload,
        occurred_at: Some(occurred_at),
        source: Some(source),
        tenant_id,
        cloudevent: Some(CeContext {
            specversion,
            datacontenttype,
            dataschema,
            subject,
            extensions,
            data_base64,
        }),
    })
}

/// The payload for `data` under its declared content type, and whether it is held as base64.
/// Data of no declared type is JSON when it parses as JSON; other non-JSON data gets a type.
fn resolve(data: Data, content_type: &mut Option<String>) -> Result<(Value, bool), InvalidEvent> {
    let declared_json = content_type.as_deref().map(is_json_media_type);
    let (bytes, from_body) = match data {
        Data::Absent => return Ok((Value::Null, false)),
        Data::Json(Value::String(s)) if declared_json == Some(false) => {
            return Ok((Value::String(s), false));
        }
        Data::Json(v) => return Ok((v, false)),
        Data::Body(b) => (b, true),
        Data::Base64(b) => (b, false),
    };
    if declared_json != Some(false) {
        let parsed = check_depth(&bytes)
            .and_then(|()| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
        match (parsed, content_type.as_deref()) {
            (Ok(v), _) => return Ok((v, false)),
            (Err(detail), Some(t)) => {
                return Err(InvalidEvent::CeDataNotJson { content_type: t.to_string(), detail });
            }
            (Err(_), None) => {}
        }
    }
    match String::from_utf8(bytes) {
        Ok(text) if from_body => {
            content_type.get_or_insert_with(|| "text/plain".into());
            Ok((Value::String(text), false))
        }
        Ok(text) => {
            content_type.get_or_insert_with(|| "application/octet-stream".into());
            Ok((Value::String(BASE64.encode(text.as_bytes())), true))
        }
        Err(e) => {
            content_type.get_or_insert_with(|| "application/octet-stream".into());
            Ok((Value::String(BASE64.encode(e.as_bytes())), true))
        }
    }
}

/// The extension attributes left once the known ones are taken: names of lower-case letters and
/// digits, values strings, numbers or booleans (a null is an absent attribute).
fn extensions(
    attrs: Map<String, Value>,
) -> Result<std::collections::BTreeMap<String, Value>, InvalidEvent> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in attrs {
        if !valid_extension_name(&name) {
            return Err(InvalidEvent::CeAttribute(format!(
                "extension name {name:?} must be lower-case letters and digits"
            )));
        }
        match value {
            Value::Null => {}
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                out.insert(name, value);
            }
            _ => {
                return Err(InvalidEvent::CeAttribute(format!(
                    "extension {name} must be a string, number or boolean"
                )));
            }
        }
    }
    Ok(out)
}

/// A required string attribute, taken out of `attrs`.
fn required(attrs: &mut Map<String, Value>, name: &'static str) -> Result<String, InvalidEvent> {
    match optional(attrs, name)? {
        None => Err(InvalidEvent::CeMissingAttribute(name)),
        Some(s) if s.is_empty() => Err(InvalidEvent::CeAttribute(format!("{name} is empty"))),
        Some(s) => Ok(s),
    }
}

/// An optional string attribute, taken out of `attrs` (null is absent).
fn optional(attrs: &mut Map<String, Value>, name: &str) -> Result<Option<String>, InvalidEvent> {
    match attrs.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidEvent::CeAttribute(format!("{name} must be a string"))),
    }
}

fn check_size(body: &[u8], limit: usize) -> Result<(), InvalidEvent> {
    if body.len() > limit {
        return Err(InvalidEvent::TooLarge { size: body.len(), limit });
    }
    check_depth(body).map_err(|_| InvalidEvent::TooDeep)
}

fn check_depth(bytes: &[u8]) -> Result<(), String> {
    if crate::event::json_depth(bytes) > MAX_JSON_DEPTH {
        return Err(format!("nested deeper than {MAX_JSON_DEPTH} levels"));
    }
    Ok(())
}

fn is_ce_header(name: &str) -> bool {
    name.len() > 3 && name.as_bytes()[..3].eq_ignore_ascii_case(b"ce-")
}

/// The first value of header `name`, matched case-insensitively.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| AsRef::<str>::as_ref(*n).eq_ignore_ascii_case(name))
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_ref())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
