//! W3C Trace Context (`traceparent`, `tracestate`): parsing, validation and formatting, and the
//! copy that travels in the headers of every message of an event's path (the published event,
//! its deliveries, retries, deferrals, DLQ entries, redeliveries and replays) to each webhook
//! request.
//!
//! Pure: no I/O and no OpenTelemetry types (the exporter, [`crate::otel`], converts). An invalid
//! `traceparent` is ignored, never an error: the event is delivered as if it had none (W3C
//! Trace Context, "if the vendor failed to parse traceparent, it must not attempt to parse
//! tracestate"). hookline always writes version `00`; it reads a later version's first five
//! fields as the spec asks.

use async_nats::HeaderMap;

use crate::event::WebhookEvent;

/// The W3C header names (lowercase in HTTP; read case-insensitively from NATS headers).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Longest `tracestate` carried on (the spec's 32 members of at most 256 characters fit well
/// under a NATS header line; anything longer is dropped, the `traceparent` kept).
pub const MAX_TRACESTATE_LEN: usize = 8192;

/// A valid trace context: ids never all zero, `state` an unchanged, header-safe `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, the trace every span of the event belongs to.
    pub trace_id: [u8; 16],
    /// 8 bytes, the span the next one is a child of.
    pub parent_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
    /// The `tracestate` header as received, if any and valid.
    pub state: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` (and its `tracestate`); `None` when `traceparent` is invalid.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let tp = traceparent.trim_matches(|c| c == ' ' || c == '\t');
        let version = hex_byte(tp.get(0..2)?)?;
        // Version ff is invalid; 00 is exactly 55 characters; a later version may add fields
        // after a dash at 55.
        let well_sized = match version {
            0xff => false,
            0x00 => tp.len() == 55,
            _ => tp.len() == 55 || (tp.len() > 55 && tp.as_bytes()[55] == b'-'),
        };
        if !well_sized {
            return None;
        }
        let b = tp.as_bytes();
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(tp.get(3..35)?)?;
        let parent_id: [u8; 8] = hex_bytes(tp.get(36..52)?)?;
        let flags = hex_byte(tp.get(53..55)?)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        let state = tracestate.map(str::trim).filter(|s| valid_tracestate(s)).map(str::to_string);
        Some(TraceContext { trace_id, parent_id, flags, state })
    }

    /// A new trace (random ids), sampled: the root of an event published without one.
    pub fn fresh() -> TraceContext {
        TraceContext { trace_id: random_nonzero(), parent_id: new_span_id(), flags: 1, state: None }
    }

    /// The same trace (flags and `tracestate` too) with `span_id` as the parent of what follows.
    pub fn child(&self, span_id: [u8; 8]) -> TraceContext {
        TraceContext { parent_id: span_id, ..self.clone() }
    }

    /// The `traceparent` value (version `00`).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// Reads the context from NATS message headers; `None` when absent or invalid.
    pub fn from_nats(headers: Option<&HeaderMap>) -> Option<TraceContext> {
        let headers = headers?;
        let traceparent = nats_header(headers, TRACEPARENT)?;
        TraceContext::parse(&traceparent, nats_header(headers, TRACESTATE).as_deref())
    }

    /// The trace context an event was published with: the `traceparent` / `tracestate` headers
    /// of its NATS message, else the CloudEvents distributed-tracing extension attributes of an
    /// event published as a CloudEvent (`traceparent`, `tracestate`; in binary mode the
    /// `ce-traceparent` header); `None` when neither is there or valid.
    pub fn of_event(headers: Option<&HeaderMap>, event: &WebhookEvent) -> Option<TraceContext> {
        TraceContext::from_nats(headers).or_else(|| {
            let ext = &event.cloudevent.as_ref()?.extensions;
            let text = |name: &str| ext.get(name).and_then(|v| v.as_str());
            TraceContext::parse(text(TRACEPARENT)?, text(TRACESTATE))
        })
    }

    /// Writes `traceparent` (and `tracestate` when set) into NATS message headers.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent().as_str());
        if let Some(state) = &self.state {
            headers.insert(TRACESTATE, state.as_str());
        }
    }

    /// The HTTP headers of a request carrying this context (its `parent_id` the attempt's
    /// span id).
    pub fn http_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(TRACEPARENT, self.traceparent())];
        if let Some(state) = &self.state {
            out.push((TRACESTATE, state.clone()));
        }
        out
    }
}

/// A random, non-zero span id.
pub fn new_span_id() -> [u8; 8] {
    random_nonzero()
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = std::array::from_fn(|_| rand::random::<u8>());
        if bytes != [0; N] {
            return bytes;
        }
    }
}

/// A header's value by exact name, else case-insensitively (publishers write `Traceparent` too).
fn nats_header(headers: &HeaderMap, name: &str) -> Option<String> {
    if let Some(v) = headers.get(name) {
        return Some(v.as_str().to_string());
    }
    headers
        .iter()
        .find(|(k, _)| AsRef::<str>::as_ref(*k).eq_ignore_ascii_case(name))
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str().to_string())
}

/// Lowercase hex only, as the spec's `HEXDIGLC`.
fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn hex_byte(s: &str) -> Option<u8> {
    hex_bytes::<1>(s).map(|[b]| b)
}

/// A `tracestate` carried on unchanged: printable ASCII (no CR/LF, safe in a NATS header),
/// bounded, and every non-empty member a `key=value`.
fn valid_tracestate(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TRACESTATE_LEN
        && s.bytes().all(|c| (0x20..0x7f).contains(&c))
        && s.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .all(|m| m.split_once('=').is_some_and(|(k, v)| !k.is_empty() && !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let tc = TraceContext::parse(VALID, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            .expect("valid");
        assert_eq!(tc.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(tc.parent_id), "00f067aa0ba902b7");
        assert_eq!(tc.flags, 1);
        assert_eq!(tc.state.as_deref(), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert_eq!(tc.traceparent(), VALID);
    }

    #[test]
    fn invalid_traceparents_are_rejected() {
        let bad = [
            "",
            "00",
            // all-zero trace id, all-zero parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // uppercase hex, non-hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            // version ff, version 00 with extra fields, too short ids
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            // wrong separators, bad flags
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "not a traceparent at all, but long enough to have fifty-five chars",
        ];
        for tp in bad {
            assert_eq!(TraceContext::parse(tp, Some("a=b")), None, "{tp:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let tp = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let tc = TraceContext::parse(tp, None).expect("later version");
        assert_eq!(tc.traceparent(), VALID, "written back as version 00");
        let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceContext::parse(glued, None), None);
    }

    #[test]
    fn a_bad_tracestate_is_dropped_and_the_traceparent_kept() {
        for state in ["", "a=b\r\nx: y", "novalue", &"k=v,".repeat(3000)] {
            let tc = TraceContext::parse(VALID, Some(state)).expect("traceparent valid");
            assert_eq!(tc.state, None, "{state:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_replaces_the_parent() {
        let tc = TraceContext::parse(VALID, Some("a=b")).unwrap();
        let span = new_span_id();
        let headers = tc.child(span).http_headers();
        let sent = TraceContext::parse(&headers[0].1, None).unwrap();
        assert_eq!(sent.trace_id, tc.trace_id);
        assert_eq!(sent.parent_id, span);
        assert_ne!(new_span_id(), span);
        assert_eq!(headers[1], (TRACESTATE, "a=b".to_string()));
    }

    #[test]
    fn nats_headers_are_read_case_insensitively_and_written_back() {
        let mut h = HeaderMap::new();
        h.insert("Traceparent", VALID);
        h.insert("TraceState", "a=b");
        let tc = TraceContext::from_nats(Some(&h)).expect("found");
        assert_eq!(tc.state.as_deref(), Some("a=b"));
        let mut out = HeaderMap::new();
        tc.insert_into(&mut out);
        assert_eq!(out.get(TRACEPARENT).map(|v| v.as_str()), Some(VALID));
        assert_eq!(TraceContext::from_nats(None), None);
        assert_eq!(TraceContext::from_nats(Some(&HeaderMap::new())), None);
    }

    #[test]
    fn a_fresh_trace_is_valid_and_sampled() {
        let tc = TraceContext::fresh();
        assert_eq!(TraceContext::parse(&tc.traceparent(), None), Some(tc.clone()));
        assert_eq!(tc.flags & 1, 1);
    }

    #[test]
    fn a_cloudevents_tracing_extension_is_read_when_the_message_has_no_trace_headers() {
        let mut event: WebhookEvent = serde_json::from_value(serde_json::json!({
            "event_id": "evt_1", "event_type": "order.created", "payload": {}
        }))
        .unwrap();
        assert_eq!(TraceContext::of_event(None, &event), None);
        let mut ce = crate::event::CeContext::json();
        ce.extensions.insert(TRACEPARENT.into(), VALID.into());
        ce.extensions.insert(TRACESTATE.into(), "rojo=1".into());
        event.cloudevent = Some(ce);
        let from_ext = TraceContext::of_event(None, &event).expect("the extension is read");
        assert_eq!(from_ext.traceparent(), VALID);
        assert_eq!(from_ext.state.as_deref(), Some("rojo=1"));
        // The message's own headers win over the extension.
        let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, other);
        let from_headers = TraceContext::of_event(Some(&headers), &event).unwrap();
        assert_eq!(from_headers.traceparent(), other);
    }
}
