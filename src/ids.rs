//! Typed ids and names that cross hookline's boundaries: [`SubscriptionId`], [`EventId`],
//! [`EventType`], [`EventTypeFilter`] and [`TenantId`].
//!
//! The bottom layer: it imports nothing from the crate. Each type holds the one copy of its
//! grammar; a value of the type is proof that the text passed it, so input is parsed once where
//! it enters (API bodies, paths and query strings, CLI arguments, NATS messages) and carried
//! typed from there. Every type parses with `FromStr` / `TryFrom<String>`, deserializes with the
//! same check, serializes as its text, and states its grammar in the OpenAPI document (pattern
//! and lengths), so a generated client validates as the server does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted event id, event type, filter or tenant id.
pub const MAX_NAME_LEN: usize = 128;

/// Text that is not a valid id or name of its kind; says which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct InvalidId {
    /// What was being parsed (`subscription id`, `event_type`, ...).
    pub kind: &'static str,
    /// The rejected text.
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// One segment of an event type: letters, digits, `_` or `-`, at least one.
fn segment_ok(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Defines a string newtype with its check, conversions, serde and OpenAPI schema.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, kind = $kind:literal, rule = $rule:literal,
     pattern = $pattern:literal, example = $example:literal, min = $min:expr, max = $max:expr,
     check = $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What the text must look like (used in error messages).
            pub const RULE: &'static str = $rule;
            /// The grammar as an ECMA-262 regular expression (the OpenAPI `pattern`).
            pub const PATTERN: &'static str = $pattern;

            /// Whether `s` is valid, without allocating.
            pub fn is_valid(s: &str) -> bool {
                let check: fn(&str) -> bool = $check;
                (($min)..=($max)).contains(&s.len()) && check(s)
            }

            /// Checks `s`, naming the rule it breaks.
            pub fn parse(s: &str) -> Result<$name, InvalidId> {
                if $name::is_valid(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(InvalidId { kind: $kind, value: s.to_string(), rule: $rule })
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<$name, InvalidId> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<$name, InvalidId> {
                if $name::is_valid(&s) {
                    Ok($name(s))
                } else {
                    Err(InvalidId { kind: $kind, value: s, rule: $rule })
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($rule))
                    .pattern(Some($pattern))
                    .min_length(Some($min))
                    .max_length(Some($max))
                    .examples([serde_json::Value::from($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

name_type!(
    /// A subscription's id: `sub_` and 1-64 letters or digits (a subject token and a key part).
    SubscriptionId,
    kind = "subscription id",
    rule = "sub_ followed by 1-64 letters or digits",
    pattern = "^sub_[A-Za-z0-9]{1,64}$",
    example = "sub_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b",
    min = 5,
    max = 68,
    check = |s| s.strip_prefix("sub_").is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphanumeric()))
);

name_type!(
    /// An event's id: also its `Nats-Msg-Id`, its `webhook-id` and a Redis key part.
    EventId,
    kind = "event_id",
    rule = "1-128 characters of letters, digits, '_', '-' or ':'",
    pattern = "^[A-Za-z0-9_:-]{1,128}$",
    example = "evt_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b",
    min = 1,
    max = MAX_NAME_LEN,
    check = |s| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
);

name_type!(
    /// An event's type, e.g. `order.created`: the last tokens of its subject.
    EventType,
    kind = "event_type",
    rule = "dot-separated segments of letters, digits, '_' or '-'",
    pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
    example = "order.created",
    min = 1,
    max = MAX_NAME_LEN,
    check = |s| s.split('.').all(segment_ok)
);

name_type!(
    /// A subscription's event-type filter: an [`EventType`] or a NATS wildcard (`*` for one
    /// segment, a last `>` for one or more).
    EventTypeFilter,
    kind = "event type filter",
    rule = "segments are letters, digits, '_', '-', or a whole '*' or '>' ('>' last only)",
    pattern = "^(([A-Za-z0-9_-]+|\\*)\\.)*([A-Za-z0-9_-]+|\\*|>)$",
    example = "order.*",
    min = 1,
    max = MAX_NAME_LEN,
    check = |s| filter_problem(s).is_none()
);

name_type!(
    /// A tenant: scopes subscriptions, events and tenant tokens.
    TenantId,
    kind = "tenant_id",
    rule = "1-128 characters of letters, digits, '_', '-', '.' or ':'",
    pattern = "^[A-Za-z0-9_.:-]{1,128}$",
    example = "acme",
    min = 1,
    max = MAX_NAME_LEN,
    check = |s| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
);

/// Why `s` is not an event-type filter (`None`: it is one).
pub fn filter_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Some("must be 1-128 characters");
    }
    let segments: Vec<&str> = s.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "" => return Some("empty segment"),
            "*" => {}
            ">" if i + 1 == segments.len() => {}
            ">" => return Some("'>' must be the last segment"),
            seg if segment_ok(seg) => {}
            _ => return Some("segments are letters, digits, '_', '-', or a whole '*' or '>'"),
        }
    }
    None
}

impl EventTypeFilter {
    /// Whether the filter has a wildcard segment.
    pub fn is_wildcard(&self) -> bool {
        self.0.split('.').any(|s| s == "*" || s == ">")
    }
}

impl SubscriptionId {
    /// A fresh id: `sub_` and a time-ordered UUID.
    pub fn generate() -> SubscriptionId {
        SubscriptionId(format!("sub_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl EventId {
    /// A fresh id: `evt_` and a time-ordered UUID.
    pub fn generate() -> EventId {
        EventId(format!("evt_{}", uuid::Uuid::now_v7().simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_ids_are_sub_and_letters_or_digits() {
        assert!(SubscriptionId::is_valid("sub_0192abc"));
        for bad in ["sub_", "sub_a.b", "x_1", "", "sub_a b", &format!("sub_{}", "a".repeat(65))] {
            assert!(SubscriptionId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SubscriptionId::is_valid(SubscriptionId::generate().as_str()));
    }

    #[test]
    fn event_types_are_dot_separated_segments() {
        for ok in ["a", "order.created", "a-b.c_d.E9"] {
            assert!(EventType::is_valid(ok), "{ok:?} refused");
        }
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "ä", &"a".repeat(129)] {
            assert!(EventType::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn filters_allow_whole_segment_wildcards_and_a_last_gt() {
        for ok in ["order.*", "order.>", ">", "*", "a.*.c", "a.b"] {
            assert!(EventTypeFilter::is_valid(ok), "{ok:?} refused");
        }
        for bad in ["", "a..b", "a.>.b", "a.b*", "a b", "a.>x", "ä"] {
            assert!(EventTypeFilter::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EventTypeFilter::parse("a.*").unwrap().is_wildcard());
        assert!(!EventTypeFilter::parse("a.b").unwrap().is_wildcard());
    }

    #[test]
    fn event_ids_and_tenants_have_their_own_alphabets() {
        assert!(EventId::is_valid("evt_1:a-b"));
        assert!(!EventId::is_valid("evt.1"));
        assert!(TenantId::is_valid("acme.eu:1"));
        assert!(!TenantId::is_valid("bad tenant"));
        assert!(!TenantId::is_valid(""));
    }

    #[test]
    fn deserializing_checks_and_errors_name_the_kind_and_rule() {
        let err = serde_json::from_str::<SubscriptionId>("\"\"").unwrap_err().to_string();
        assert!(err.contains("invalid subscription id \"\""), "{err}");
        let ok: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"acme\"");
        assert_eq!("acme".parse::<TenantId>().unwrap().to_string(), "acme");
    }
}
