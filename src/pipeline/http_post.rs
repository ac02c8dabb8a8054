//! The HTTP POST of one delivery attempt: build the signed Standard Webhooks request, POST it,
//! and classify the result into an [`Outcome`]. No retry logic here: [`super::deliver`] maps
//! outcomes to ack, retry or dead-letter, and writes the attempt log
//! ([`crate::attempt_log`]).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use crate::attempt_record::FailureKind;
use crate::cloudevents;
use crate::config::DeliveryConfig;
use crate::event::Delivery;
use crate::signing::{canonical_json, seed_hex_signature, signature_header};
use crate::store::subscriptions::{BodyFormat, SignatureScheme, Subscription, Validation};

/// The CloudEvents webhook handshake's header naming the sender: sent with the validation
/// request ([`super::handshake`]) and with every delivery to a subscription that asked for it.
pub const REQUEST_ORIGIN: &str = "webhook-request-origin";

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered { status: u16, duration: Duration, response_body: String },
    /// Worth trying again: non-2xx, timeout, connection failure.
    Failed {
        status: Option<u16>,
        kind: FailureKind,
        /// The receiver answered `webhook-delivery: abort-message`: stop retrying.
        abort: bool,
        error: String,
        /// Honoured delay from `Retry-After` on 429/503.
        retry_after: Option<Duration>,
        duration: Duration,
        response_body: String,
    },
}

impl Outcome {
    /// The HTTP status, if a response came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status, .. } => Some(*status),
            Outcome::Failed { status, .. } => *status,
        }
    }
}

/// The exact request an attempt sends: body bytes and headers, built from the event and the
/// subscription alone (so the body is identical on every attempt).
pub struct SignedRequest {
    pub body: Vec<u8>,
    pub headers: Vec<(Cow<'static, str>, String)>,
}

/// The body in the subscription's format (canonical JSON when a scheme needs it), its content
/// type, and the `ce-*` headers of the binary CloudEvents format.
fn body_of(
    sub: &Subscription,
    delivery: &Delivery,
    ce_source: &str,
) -> (Vec<u8>, String, Vec<(String, String)>) {
    let event = &delivery.event;
    let canonical = sub.signature_schemes.contains(&SignatureScheme::XSignatureCanonical);
    let body = match (sub.body_format, canonical) {
        (BodyFormat::Envelope, false) => event.webhook_body(),
        (BodyFormat::Payload, false) => serde_json::to_vec(&event.payload).unwrap_or_default(),
        (BodyFormat::Envelope, true) => {
            let envelope = serde_json::json!({"type": event.event_type, "timestamp": event.timestamp_rfc3339(), "data": event.payload});
            canonical_json(&envelope)
        }
        (BodyFormat::Payload, true) => canonical_json(&event.payload),
        (BodyFormat::Cloudevents, canonical) => {
            let body = cloudevents::encode::structured(event, ce_source, canonical);
            return (body, cloudevents::STRUCTURED_JSON.to_string(), Vec::new());
        }
        (BodyFormat::CloudeventsBinary, canonical) => {
            let b = cloudevents::encode::binary(event, ce_source, canonical);
            return (b.body, b.content_type, b.headers);
        }
    };
    (body, "application/json".to_string(), Vec::new())
}

/// Builds the body (envelope, bare payload or CloudEvent) and every signature header: Standard
/// Webhooks with each live secret, plus the subscription's extra schemes with the current
/// secret. `ce_source` is the CloudEvents source of an event published in another shape.
pub fn sign_request(
    sub: &Subscription,
    delivery: &Delivery,
    now: OffsetDateTime,
    ce_source: &str,
) -> SignedRequest {
    let event = &delivery.event;
    let (body, content_type, ce_headers) = body_of(sub, delivery, ce_source);
    let timestamp = now.unix_timestamp();
    let id = event.event_id.as_str();
    let mut headers: Vec<(Cow<'static, str>, String)> =
        ce_headers.into_iter().map(|(name, value)| (Cow::Owned(name), value)).collect();
    headers.extend([
        ("content-type".into(), content_type),
        ("webhook-id".into(), id.to_string()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        (
            "webhook-signature".into(),
            signature_header(&sub.live_secrets(now), id, timestamp, &body),
        ),
    ]);
    for scheme in &sub.signature_schemes {
        let signature = seed_hex_signature(sub.current_secret(), &body);
        match scheme {
            SignatureScheme::WebhookSha256 => {
                headers.push(("x-webhook-signature".into(), format!("sha256={signature}")));
                headers.push(("x-webhook-event-type".into(), event.event_type.to_string()));
                headers.push(("x-webhook-event-id".into(), id.to_string()));
                let at = now.format(&Rfc3339).unwrap_or_default();
                headers.push(("x-webhook-timestamp".into(), at));
            }
            SignatureScheme::XSignatureCanonical => headers.push(("x-signature".into(), signature)),
        }
    }
    SignedRequest { body, headers }
}

/// Signs and POSTs `delivery` to `sub.url`, with `traceparent` / `tracestate` from `trace` (the
/// attempt's own span id as the parent) when the delivery carries a trace context.
#[tracing::instrument(level = "debug", skip_all, fields(event_id = %delivery.event.event_id, subscription_id = %sub.id))]
pub async fn post(
    http: &reqwest::Client,
    config: &DeliveryConfig,
    sub: &Subscription,
    delivery: &Delivery,
    trace: Option<&crate::trace_context::TraceContext>,
) -> Outcome {
    let signed = sign_request(sub, delivery, OffsetDateTime::now_utc(), &config.cloudevents_source);
    let started = Instant::now();
    let mut request = match endpoint_url(&sub.url) {
        Some(url) => http.post(url),
        None => http.post(&sub.url),
    };
    // The custom headers first: validation keeps them apart from every header set below.
    for (name, value) in &sub.headers.0 {
        request = request.header(name.as_str(), value.as_str());
    }
    for (name, value) in signed.headers {
        request = request.header(name.as_ref(), value);
    }
    if sub.handshake.validation == Validation::Cloudevents {
        request = request.header(REQUEST_ORIGIN, &config.webhook_origin);
    }
    for (name, value) in trace.map(|t| t.http_headers()).unwrap_or_default() {
        request = request.header(name, value);
    }
    match request.body(signed.body).send().await {
        Ok(response) => outcome_of(response, config, started).await,
        Err(e) => not_sent(&e, started),
    }
}

/// A request that got no response: refused by egress control, or a transport failure.
fn not_sent(e: &reqwest::Error, started: Instant) -> Outcome {
    let (kind, error) = match crate::egress::blocked_detail(e) {
        Some(detail) => (FailureKind::Blocked, detail),
        None => describe(e),
    };
    Outcome::Failed {
        status: None,
        kind,
        abort: false,
        error,
        retry_after: None,
        duration: started.elapsed(),
        response_body: String::new(),
    }
}

/// Classifies a response: 2xx delivered, anything else failed (with the receiver's abort
/// request and `Retry-After` on 429/503).
async fn outcome_of(
    response: reqwest::Response,
    config: &DeliveryConfig,
    started: Instant,
) -> Outcome {
    let status = response.status().as_u16();
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
    let abort =
        header("webhook-delivery").is_some_and(|v| v.trim().eq_ignore_ascii_case("abort-message"));
    let retry_after = if matches!(status, 429 | 503) {
        header("retry-after").and_then(parse_retry_after)
    } else {
        None
    };
    let snippet = read_capped(response, config.response_body_limit).await;
    let duration = started.elapsed();
    let response_body = snippet.as_ref().map(|s| s.clone()).unwrap_or_default();
    if (200..300).contains(&status) {
        return Outcome::Delivered { status, duration, response_body };
    }
    let error = match snippet {
        Ok(s) if !s.trim().is_empty() => format!("http status {status}: {}", s.trim()),
        Ok(_) => format!("http status {status}"),
        Err(e) => format!("http status {status} (body unreadable: {})", describe(&e).1),
    };
    let kind = FailureKind::of_status(status);
    Outcome::Failed {
        status: Some(status),
        kind,
        abort,
        error,
        retry_after,
        duration,
        response_body,
    }
}

/// Parsed endpoint URLs by their text: parsing one (with IDNA) cost ~5 % of a delivery's CPU.
/// Keyed by the string itself, so a changed URL is simply another entry.
fn endpoint_url(raw: &str) -> Option<reqwest::Url> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    const MAX: usize = 10_000;
    static URLS: LazyLock<Mutex<HashMap<String, reqwest::Url>>> = LazyLock::new(Mutex::default);
    if let Some(url) = URLS.lock().unwrap_or_else(|p| p.into_inner()).get(raw) {
        return Some(url.clone());
    }
    // Unparsable: let reqwest report it as the attempt's error.
    let url = reqwest::Url::parse(raw).ok()?;
    let mut urls = URLS.lock().unwrap_or_else(|p| p.into_inner());
    if urls.len() >= MAX {
        urls.clear();
    }
    urls.insert(raw.to_string(), url.clone());
    Some(url)
}

/// Reads at most `limit` bytes of the body, then drops the connection's remaining stream.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<String, reqwest::Error> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await? {
            Some(chunk) => buf.extend_from_slice(&chunk[..chunk.len().min(limit - buf.len())]),
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The class and a short, lowercase description of a transport error (no URL credentials).
pub(crate) fn describe(e: &reqwest::Error) -> (FailureKind, String) {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(": ").to_lowercase();
    let (kind, text) = if e.is_timeout() {
        (FailureKind::Timeout, "timeout")
    } else if all.contains("dns")
        || all.contains("lookup address")
        || all.contains("name or service not known")
    {
        (FailureKind::Dns, "dns lookup failed")
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        (FailureKind::Tls, "tls error")
    } else if e.is_connect() {
        (FailureKind::Connect, "connection failed")
    } else if e.is_body() || e.is_decode() {
        (FailureKind::Other, "response body error")
    } else {
        (FailureKind::Other, "http error")
    };
    match chain.last() {
        Some(root) => (kind, format!("{text}: {root}")),
        None => (kind, text.to_string()),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let delta = at - OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates_are_understood() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let future =
            (OffsetDateTime::now_utc() + time::Duration::hours(1)).format(&Rfc2822).unwrap();
        let parsed = parse_retry_after(&future).unwrap();
        assert!(
            parsed > Duration::from_secs(3500) && parsed <= Duration::from_secs(3600),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
