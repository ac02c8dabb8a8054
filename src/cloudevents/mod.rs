//! CloudEvents 1.0 in and out.
//!
//! In: an event published on `<prefix>.events.<type>` may be a CloudEvent per the NATS protocol
//! binding, in binary mode (attributes in percent-encoded `ce-*` headers, the data as the body,
//! its media type in `content-type`) or structured mode (`content-type:
//! application/cloudevents+json`, the whole event as JSON). [`parse::parse_message`] tells the
//! three shapes apart and maps a CloudEvent onto a [`WebhookEvent`]: `id` -> event id, `type` ->
//! event type, `data` -> payload, `time` -> occurred_at, `source` -> source, extension
//! `tenantid` -> tenant; everything else is kept in the event's [`CeContext`].
//!
//! Out: [`encode`] renders any event as a CloudEvent, structured (JSON) or binary (headers +
//! data), for the `cloudevents` / `cloudevents_binary` body formats and for publishing.
//!
//! Header values are percent-encoded as both bindings say ([`percent`]).

pub mod encode;
pub mod parse;
pub mod percent;

pub use crate::event::CeContext;
pub use parse::{parse_message, parse_structured};

/// The one spec version hookline reads and writes.
pub const SPEC_VERSION: &str = "1.0";
/// Media type of a structured-mode CloudEvent in JSON.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json";
/// The extension that carries the tenant.
pub const TENANT_EXTENSION: &str = "tenantid";

/// True for a media type whose content is JSON: `application/json`, `text/json` or any
/// `+json` suffix (parameters such as `charset` ignored).
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// True when a `content-type` marks a structured-mode CloudEvent (`application/cloudevents`,
/// matched case-insensitively, with any `+format` suffix).
pub fn is_structured(content_type: &str) -> bool {
    content_type.trim().to_ascii_lowercase().starts_with("application/cloudevents")
}

/// An extension attribute name per the spec: lower-case ASCII letters and digits.
pub fn valid_extension_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/vnd.x+json",
            "text/json",
        ] {
            assert!(is_json_media_type(t), "{t}");
        }
        for t in ["text/plain", "application/octet-stream", "application/jsonl", ""] {
            assert!(!is_json_media_type(t), "{t}");
        }
    }

    #[test]
    fn structured_mode_is_the_cloudevents_media_type_in_any_case() {
        assert!(is_structured("application/cloudevents+json"));
        assert!(is_structured("Application/CloudEvents+JSON; charset=utf-8"));
        assert!(!is_structured("application/json"));
    }

    #[test]
    fn extension_names_are_lower_case_letters_and_digits() {
        assert!(valid_extension_name("tenantid"));
        assert!(valid_extension_name("trace2"));
        assert!(!valid_extension_name("Tenant"));
        assert!(!valid_extension_name("tenant_id"));
        assert!(!valid_extension_name(""));
    }
}
