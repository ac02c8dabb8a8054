//! A subscription as named text fields, and back (a record that does not decode is reported as
//! corrupt, naming the subscription and the field). The same fields are the bucket's value (a
//! JSON object) and the Redis hash (plus `rev` and the index bookkeeping). The `secrets` field
//! holds each secret in the form [`SecretBox`] writes: sealed with the current key, or plain
//! without one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::headers::CustomHeaders;
use super::{SigningSecret, Subscription};
use crate::secret_box::SecretBox;
use crate::store::StoreError;

pub(super) fn encode(sub: &Subscription, sealer: &SecretBox) -> Vec<(&'static str, String)> {
    let ts = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    vec![
        ("id", sub.id.clone()),
        ("url", sub.url.clone()),
        ("event_types", serde_json::to_string(&sub.event_types).unwrap_or_else(|_| "[]".into())),
        ("tenant_id", sub.tenant_id.clone().unwrap_or_default()),
        ("description", sub.description.clone()),
        ("active", if sub.active { "1" } else { "0" }.to_string()),
        ("metadata", serde_json::to_string(&sub.metadata).unwrap_or_else(|_| "{}".into())),
        (
            "signature_schemes",
            serde_json::to_string(&sub.signature_schemes).unwrap_or_else(|_| "[]".into()),
        ),
        (
            "body_format",
            serde_json::to_string(&sub.body_format).unwrap_or_else(|_| "\"envelope\"".into()),
        ),
        ("secrets", encode_secrets(&sub.id, &sub.secrets, sealer)),
        ("max_in_flight", sub.max_in_flight.map(|n| n.to_string()).unwrap_or_default()),
        ("max_rps", sub.max_rps.map(|n| n.to_string()).unwrap_or_default()),
        ("disabled_reason", sub.disabled_reason.clone().unwrap_or_default()),
        (
            "ordering",
            serde_json::to_string(&sub.ordering).unwrap_or_else(|_| "\"unordered\"".into()),
        ),
        ("headers", encode_headers(&sub.id, &sub.headers, sealer)),
        ("validation", json_text(&sub.handshake.validation)),
        ("validation_status", sub.handshake.status.as_ref().map(json_text).unwrap_or_default()),
        (
            "allowed_rate_per_minute",
            sub.handshake.allowed_rate.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("filter", sub.filter.as_ref().map(|f| f.document().to_string()).unwrap_or_default()),
        (
            "retry_schedule",
            sub.retry_schedule
                .as_deref()
                .map(|s| serde_json::to_string(&super::schedule_strings(s)).unwrap_or_default())
                .unwrap_or_default(),
        ),
        ("created_at", ts(sub.created_at)),
        ("updated_at", ts(sub.updated_at)),
    ]
}

/// A unit enum as its JSON string (`"cloudevents"`), the form the other enum fields use.
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The bucket's value: the fields as one JSON object.
pub(super) fn to_value(sub: &Subscription, sealer: &SecretBox) -> bytes::Bytes {
    let map: std::collections::BTreeMap<&str, String> = encode(sub, sealer).into_iter().collect();
    serde_json::to_vec(&map).unwrap_or_default().into()
}

/// A bucket entry (a put) back into a subscription, with the entry's revision.
pub(super) fn from_entry(
    entry: &async_nats::jetstream::kv::Entry,
    opener: &SecretBox,
) -> Result<Subscription, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt { id: entry.key.clone(), why };
    let map: std::collections::HashMap<String, String> = serde_json::from_slice(&entry.value)
        .map_err(|e| corrupt(format!("bucket value is not a JSON object of strings: {e}")))?;
    let mut sub = decode(&entry.key, map.into_iter().collect(), opener)?;
    sub.revision = entry.revision;
    Ok(sub)
}

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    secret: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

fn encode_secrets(id: &str, secrets: &[SigningSecret], sealer: &SecretBox) -> String {
    let stored: Vec<StoredSecret> = secrets
        .iter()
        .map(|s| StoredSecret { secret: sealer.seal(id, &s.secret), expires_at: s.expires_at })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

/// The secrets of subscription `id`; the error says why not (never echoing a secret).
fn decode_secrets(id: &str, text: &str, opener: &SecretBox) -> Result<Vec<SigningSecret>, String> {
    // serde_json's message may quote the value (a secret): say where, never what.
    let stored: Vec<StoredSecret> = serde_json::from_str(text)
        .map_err(|e| format!("not a JSON list of secrets (column {})", e.column()))?;
    let secrets = stored
        .into_iter()
        .map(|s| {
            let secret = opener.open(id, &s.secret).map_err(|e| e.to_string())?;
            Ok(SigningSecret { secret, expires_at: s.expires_at })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if secrets.is_empty() {
        return Err("holds no secret".into());
    }
    Ok(secrets)
}

/// The custom headers as sealed JSON ("" when there are none).
fn encode_headers(id: &str, headers: &CustomHeaders, sealer: &SecretBox) -> String {
    if headers.is_empty() {
        return String::new();
    }
    sealer.seal_text(id, &serde_json::to_string(&headers.0).unwrap_or_else(|_| "{}".into()))
}

/// The custom headers of subscription `id` (the error never echoes a value).
fn decode_headers(id: &str, text: &str, opener: &SecretBox) -> Result<CustomHeaders, String> {
    if text.is_empty() {
        return Ok(CustomHeaders::default());
    }
    let plain = opener.open_text(id, text).map_err(|e| e.to_string())?;
    serde_json::from_str(&plain)
        .map(CustomHeaders)
        .map_err(|e| format!("not a JSON object of strings (column {})", e.column()))
}

/// Whether every secret of a stored `secrets` field is already in the form `sealer` writes (a
/// field that does not parse counts as current: decoding reports it).
pub(super) fn secrets_current(text: &str, sealer: &SecretBox) -> bool {
    serde_json::from_str::<Vec<StoredSecret>>(text)
        .map_or(true, |stored| stored.iter().all(|s| sealer.is_current(&s.secret)))
}

/// [`secrets_current`] of a bucket value.
pub(super) fn value_secrets_current(value: &[u8], sealer: &SecretBox) -> bool {
    let Ok(map) = serde_json::from_slice::<std::collections::HashMap<String, String>>(value) else {
        return true;
    };
    let headers_current = map.get("headers").is_none_or(|h| h.is_empty() || sealer.is_current(h));
    headers_current && map.get("secrets").is_none_or(|s| secrets_current(s, sealer))
}

pub(super) fn decode(
    id: &str,
    fields: Vec<(String, String)>,
    opener: &SecretBox,
) -> Result<Subscription, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt { id: id.to_string(), why };
    let map: std::collections::HashMap<String, String> = fields.into_iter().collect();
    let get = |k: &str| map.get(k).cloned().ok_or_else(|| corrupt(format!("field {k} missing")));
    let time = |k: &str| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::parse(&get(k)?, &Rfc3339).map_err(|e| corrupt(format!("field {k}: {e}")))
    };
    let event_types: Vec<String> = serde_json::from_str(&get("event_types")?)
        .map_err(|e| corrupt(format!("field event_types: {e}")))?;
    let tenant = get("tenant_id")?;
    Ok(Subscription {
        id: id.to_string(),
        url: get("url")?,
        event_types,
        tenant_id: (!tenant.is_empty()).then_some(tenant),
        description: get("description")?,
        metadata: map
            .get("metadata")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        active: get("active")? == "1",
        signature_schemes: map
            .get("signature_schemes")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        body_format: map
            .get("body_format")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        max_in_flight: map.get("max_in_flight").and_then(|v| v.parse().ok()),
        max_rps: map.get("max_rps").and_then(|v| v.parse().ok()),
        disabled_reason: map.get("disabled_reason").filter(|v| !v.is_empty()).cloned(),
        ordering: map
            .get("ordering")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        handshake: super::Handshake {
            validation: map
                .get("validation")
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default(),
            status: map.get("validation_status").and_then(|m| serde_json::from_str(m).ok()),
            allowed_rate: map.get("allowed_rate_per_minute").and_then(|v| v.parse().ok()),
        },
        headers: decode_headers(id, map.get("headers").map_or("", String::as_str), opener)
            .map_err(|why| corrupt(format!("field headers: {why}")))?,
        filter: match map.get("filter").filter(|v| !v.is_empty()) {
            None => None,
            // Compiled once here: the in-process cache keeps the compiled copy.
            Some(text) => serde_json::from_str(text)
                .map_err(|e| e.to_string())
                .and_then(|doc| super::options::compile_filter(&doc).map_err(|e| e.to_string()))
                .map_err(|why| corrupt(format!("field filter: {why}")))?,
        },
        retry_schedule: match map.get("retry_schedule").filter(|v| !v.is_empty()) {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Vec<String>>(text)
                    .map_err(|e| e.to_string())
                    .and_then(|t| crate::config::parse_schedule(&t))
                    .map_err(|why| corrupt(format!("field retry_schedule: {why}")))?,
            ),
        },
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        secrets: decode_secrets(id, &get("secrets")?, opener)
            .map_err(|why| corrupt(format!("field secrets: {why}")))?,
        revision: map.get("rev").and_then(|v| v.parse().ok()).unwrap_or(0),
        key_type: Default::default(),
        public_key: None,
    }
    .with_derived_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_box::KeySpec;
    use crate::signing::Secret;

    fn sealer(key: &str) -> SecretBox {
        SecretBox::new(Some(KeySpec::parse(key).unwrap()), vec![]).unwrap()
    }

    #[test]
    fn secrets_round_trip_through_their_stored_form() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let secrets = vec![
            SigningSecret { secret: Secret::generate(), expires_at: None },
            SigningSecret { secret: Secret::generate(), expires_at: Some(now) },
        ];
        let plain = SecretBox::plain();
        assert_eq!(
            decode_secrets("sub_a", &encode_secrets("sub_a", &secrets, &plain), &plain),
            Ok(secrets.clone())
        );
        assert!(decode_secrets("sub_a", "[]", &plain).is_err());
        let sealed = sealer("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let text = encode_secrets("sub_a", &secrets, &sealed);
        for s in &secrets {
            assert!(!text.contains(&s.secret.expose()[6..]), "{text}");
        }
        assert!(secrets_current(&text, &sealed) && !secrets_current(&text, &plain));
        assert_eq!(decode_secrets("sub_a", &text, &sealed), Ok(secrets.clone()));
        let err = decode_secrets("sub_a", &text, &plain).unwrap_err();
        assert!(err.contains("\"k1\""), "names the missing key id: {err}");
        let exposed = secrets[0].secret.expose();
        let err = decode_secrets("sub_a", &format!("\"{exposed}\""), &plain).unwrap_err();
        assert!(!err.contains(&exposed[6..]), "a corrupt field is not echoed: {err}");
    }
}
