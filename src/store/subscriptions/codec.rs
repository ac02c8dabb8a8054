//! A subscription as named text fields, and back (a record that does not decode is reported as
//! corrupt, naming the subscription and the field). The same fields are the bucket's value (a
//! JSON object) and the Redis hash (plus `rev` and the index bookkeeping).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{SigningSecret, Subscription};
use crate::signing::Secret;
use crate::store::StoreError;

pub(super) fn encode(sub: &Subscription) -> Vec<(&'static str, String)> {
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
        ("secrets", encode_secrets(&sub.secrets)),
        ("max_in_flight", sub.max_in_flight.map(|n| n.to_string()).unwrap_or_default()),
        ("max_rps", sub.max_rps.map(|n| n.to_string()).unwrap_or_default()),
        ("disabled_reason", sub.disabled_reason.clone().unwrap_or_default()),
        (
            "ordering",
            serde_json::to_string(&sub.ordering).unwrap_or_else(|_| "\"unordered\"".into()),
        ),
        ("created_at", ts(sub.created_at)),
        ("updated_at", ts(sub.updated_at)),
    ]
}

/// The bucket's value: the fields as one JSON object.
pub(super) fn to_value(sub: &Subscription) -> bytes::Bytes {
    let map: std::collections::BTreeMap<&str, String> = encode(sub).into_iter().collect();
    serde_json::to_vec(&map).unwrap_or_default().into()
}

/// A bucket entry (a put) back into a subscription, with the entry's revision.
pub(super) fn from_entry(
    entry: &async_nats::jetstream::kv::Entry,
) -> Result<Subscription, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt { id: entry.key.clone(), why };
    let map: std::collections::HashMap<String, String> = serde_json::from_slice(&entry.value)
        .map_err(|e| corrupt(format!("bucket value is not a JSON object of strings: {e}")))?;
    let mut sub = decode(&entry.key, map.into_iter().collect())?;
    sub.revision = entry.revision;
    Ok(sub)
}

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    secret: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

fn encode_secrets(secrets: &[SigningSecret]) -> String {
    let stored: Vec<StoredSecret> = secrets
        .iter()
        .map(|s| StoredSecret { secret: s.secret.expose(), expires_at: s.expires_at })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

fn decode_secrets(text: &str) -> Option<Vec<SigningSecret>> {
    let stored: Vec<StoredSecret> = serde_json::from_str(text).ok()?;
    let secrets = stored
        .into_iter()
        .map(|s| {
            Secret::parse(&s.secret)
                .ok()
                .map(|secret| SigningSecret { secret, expires_at: s.expires_at })
        })
        .collect::<Option<Vec<_>>>()?;
    (!secrets.is_empty()).then_some(secrets)
}

pub(super) fn decode(id: &str, fields: Vec<(String, String)>) -> Result<Subscription, StoreError> {
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
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        secrets: decode_secrets(&get("secrets")?)
            .ok_or_else(|| corrupt("field secrets holds no valid whsec_ secret".into()))?,
        revision: map.get("rev").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_through_their_stored_form() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let secrets = vec![
            SigningSecret { secret: Secret::generate(), expires_at: None },
            SigningSecret { secret: Secret::generate(), expires_at: Some(now) },
        ];
        assert_eq!(decode_secrets(&encode_secrets(&secrets)), Some(secrets));
        assert_eq!(decode_secrets("[]"), None);
    }
}
