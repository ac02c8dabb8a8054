//! Custom request headers of a subscription (`"headers": {"X-Api-Key": "..."}`): what a
//! receiver wants on every request besides the signature, often a credential of its own.
//!
//! Invariants: names and values are checked once, here, when a subscription is written (a
//! header hookline sets itself, a hop-by-hop header, bad syntax or a size over the limits is a
//! 400 naming the header); values are treated like secrets: sealed at rest with the signing
//! secrets' key (see the codec), never printed by `Debug`, and rendered as [`REDACTED`] in every
//! API, CLI and lifecycle-event output (only the names are shown).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// What an output shows instead of a header value.
pub const REDACTED: &str = "[redacted]";
/// Most custom headers per subscription.
pub const MAX_HEADERS: usize = 20;
/// Longest header name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest header value.
pub const MAX_VALUE_LEN: usize = 1024;
/// Most bytes of all names and values together.
pub const MAX_TOTAL_LEN: usize = 8192;

/// Hop-by-hop headers and the ones the HTTP client owns.
const FORBIDDEN: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-type",
    "content-length",
    "user-agent",
];

/// Prefixes of headers hookline sets itself (Standard Webhooks, the extra schemes, tracing,
/// CloudEvents binary mode).
const FORBIDDEN_PREFIXES: [&str; 5] = ["webhook-", "x-webhook-", "content-", "hookline-", "ce-"];

/// A subscription's custom headers; `Debug` and `Serialize` show the names only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CustomHeaders(pub BTreeMap<String, String>);

impl std::fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Serialize for CustomHeaders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.keys().map(|k| (k, REDACTED)))
    }
}

impl utoipa::PartialSchema for CustomHeaders {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <BTreeMap<String, String> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for CustomHeaders {}

impl CustomHeaders {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A refused header, naming it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header {name:?}: {why}")]
pub struct BadHeader {
    pub name: String,
    pub why: String,
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks every header (see the module doc for the rules).
pub fn validate(headers: &BTreeMap<String, String>) -> Result<CustomHeaders, BadHeader> {
    let bad = |name: &str, why: &str| BadHeader { name: name.to_string(), why: why.to_string() };
    if headers.len() > MAX_HEADERS {
        return Err(bad("*", &format!("at most {MAX_HEADERS} custom headers")));
    }
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in headers {
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(token_char) {
            return Err(bad(name, &format!("a name is 1-{MAX_NAME_LEN} token characters")));
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN.contains(&lower.as_str())
            || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
            || lower.contains("signature")
            || lower == "traceparent"
            || lower == "tracestate"
        {
            return Err(bad(name, "hookline sets this header itself, or it is hop-by-hop"));
        }
        if !seen.insert(lower) {
            return Err(bad(name, "named twice (header names are case-insensitive)"));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(bad(name, &format!("a value is at most {MAX_VALUE_LEN} bytes")));
        }
        if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
            return Err(bad(name, "a value is printable ASCII (no control characters)"));
        }
        if value == REDACTED {
            return Err(bad(name, "the redacted placeholder was sent back; send the real value"));
        }
        total += name.len() + value.len();
    }
    if total > MAX_TOTAL_LEN {
        return Err(bad("*", &format!("names and values total at most {MAX_TOTAL_LEN} bytes")));
    }
    Ok(CustomHeaders(headers.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<CustomHeaders, BadHeader> {
        validate(&BTreeMap::from([(name.to_string(), value.to_string())]))
    }

    #[test]
    fn ordinary_headers_pass_and_render_redacted() {
        let h = one("X-Api-Key", "s3cret value").unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"X-Api-Key":"[redacted]"}"#);
        assert!(!format!("{h:?}").contains("s3cret"));
    }

    #[test]
    fn forbidden_names_bad_syntax_and_sizes_are_refused_naming_the_header() {
        for name in [
            "Host",
            "Content-Type",
            "content-length",
            "Connection",
            "Transfer-Encoding",
            "webhook-signature",
            "Webhook-Id",
            "X-Signature",
            "X-Webhook-Event-Type",
            "traceparent",
            "bad name",
            "",
            "ä",
        ] {
            let err = one(name, "v").unwrap_err();
            assert_eq!(err.name, name);
        }
        assert!(one("X-A", "line\r\nbreak").is_err());
        assert!(one("X-A", &"v".repeat(MAX_VALUE_LEN + 1)).is_err());
        assert!(one("X-A", REDACTED).is_err());
        let many: BTreeMap<String, String> =
            (0..=MAX_HEADERS).map(|i| (format!("X-{i}"), "v".into())).collect();
        assert!(validate(&many).is_err());
        let twice = BTreeMap::from([("X-A".into(), "1".into()), ("x-a".into(), "2".into())]);
        assert_eq!(validate(&twice).unwrap_err().name, "x-a");
    }
}
