//! Event-type filters of subscriptions, with NATS wildcard rules: `*` matches one segment, `>`
//! (last segment only) matches one or more remaining segments. No filter means every event.

/// A validated event-type filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventFilter {
    /// Matches this type only.
    Exact(String),
    /// Contains `*` or `>`.
    Pattern(String),
}

/// Why a filter is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event type filter {filter:?}: {why}")]
pub struct InvalidFilter {
    pub filter: String,
    pub why: &'static str,
}

impl EventFilter {
    /// Parses `order.created`, `order.*`, `order.>`.
    pub fn parse(s: &str) -> Result<EventFilter, InvalidFilter> {
        // The grammar is [`EventTypeFilter`]'s; this names the broken rule.
        if let Some(why) = crate::ids::filter_problem(s) {
            return Err(InvalidFilter { filter: s.to_string(), why });
        }
        let wildcard = s.split('.').any(|seg| seg == "*" || seg == ">");
        Ok(if wildcard {
            EventFilter::Pattern(s.to_string())
        } else {
            EventFilter::Exact(s.to_string())
        })
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        match self {
            EventFilter::Exact(s) | EventFilter::Pattern(s) => s,
        }
    }

    /// Whether `event_type` is selected by this filter.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            EventFilter::Exact(s) => s == event_type,
            EventFilter::Pattern(p) => pattern_matches(p, event_type),
        }
    }
}

/// NATS subject matching of a (valid) pattern against a (valid) type.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    let mut types = event_type.split('.');
    for p in pattern.split('.') {
        match (p, types.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    types.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        EventFilter::parse(p).unwrap().matches(t)
    }

    #[test]
    fn exact_filters_match_only_their_type() {
        assert!(m("order.created", "order.created"));
        assert!(!m("order.created", "order.created.v2"));
        assert!(!m("order.created", "order"));
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        assert!(m("order.*", "order.created"));
        assert!(!m("order.*", "order"));
        assert!(!m("order.*", "order.created.v2"));
        assert!(m("*.created", "invoice.created"));
        assert!(m("*", "ping"));
        assert!(!m("*", "a.b"));
    }

    #[test]
    fn gt_matches_one_or_more_trailing_segments() {
        assert!(m("order.>", "order.created"));
        assert!(m("order.>", "order.created.v2"));
        assert!(!m("order.>", "order"));
        assert!(!m("order.>", "invoice.created"));
        assert!(m(">", "anything.at.all"));
    }

    #[test]
    fn invalid_filters_are_rejected_with_a_reason() {
        for bad in ["", "a..b", "a.>.b", "a.b*", "a b", "a.>x", "ä"] {
            assert!(EventFilter::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(EventFilter::parse("a.*.c").unwrap(), EventFilter::Pattern("a.*.c".into()));
        assert_eq!(EventFilter::parse("a.b").unwrap(), EventFilter::Exact("a.b".into()));
    }
}
