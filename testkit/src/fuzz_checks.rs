//! The properties the fuzz targets check (`fuzz/fuzz_targets/*.rs` call these), shared with
//! `fuzz_regressions` (tests/it), which replays every saved input of `fuzz/regressions/<target>/`
//! on each `cargo test`. Each check takes raw fuzzer bytes and panics when a property fails; it
//! depends only on hookline, serde_json, base64 and url.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use hookline::egress::{Cidr, EgressPolicy, not_public};
use hookline::event::{Delivery, WebhookEvent, valid_event_type};
use hookline::filter::{EventFilter, pattern_matches};
use hookline::signing::{Secret, canonical_json, verify};

/// A property over raw fuzzer bytes: returns when it holds, panics when it does not.
pub type Check = fn(&[u8]);

/// Every target: name (= `fuzz/fuzz_targets/<name>.rs`) and check.
pub const TARGETS: &[(&str, Check)] = &[
    ("event_parse", event_parse),
    ("signature", signature),
    ("filter", filter),
    ("config", config),
    ("egress", egress),
];

const REASONS: &[&str] = &[
    "payload_too_large",
    "invalid_json",
    "invalid_field",
    "invalid_event_id",
    "invalid_event_type",
    "event_type_mismatch",
];

/// Event and delivery parsing: never a panic; a rejection has a known reason; an accepted event
/// is valid, matches its subject, yields a JSON body and survives a serialize/parse round trip.
pub fn event_parse(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else { return };
    let subject = ["t", "order.created", "a.b-c.d_e"][usize::from(head % 3)];
    let limit = if head & 0x80 != 0 { 256 } else { 1 << 20 };
    match WebhookEvent::parse(rest, subject, limit) {
        Ok(event) => {
            assert!(rest.len() <= limit);
            assert_eq!(event.validate(), Ok(()));
            assert_eq!(event.event_type, *subject);
            assert!(event.occurred_at.is_some(), "a receipt time is filled in");
            serde_json::from_slice::<serde_json::Value>(&event.webhook_body())
                .expect("the webhook body is JSON");
            let again = serde_json::to_vec(&event).expect("an event serializes");
            let reparsed = WebhookEvent::parse(&again, subject, usize::MAX)
                .expect("a serialized event parses again");
            assert_eq!(reparsed, event);
        }
        Err(e) => {
            assert!(REASONS.contains(&e.reason()), "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
    if let Ok(delivery) = Delivery::parse(rest) {
        assert_eq!(
            Delivery::parse(&delivery.to_bytes()).expect("a delivery round-trips"),
            delivery
        );
    }
}

/// Signing and verification: a signature made with a secret verifies (also among other
/// entries), a changed body or another secret does not; parsing any secret or header text never
/// panics; canonical JSON is ASCII, parses back to the same value and is idempotent.
pub fn signature(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(secret) = Secret::parse(&text) {
        assert_eq!(Secret::parse(&secret.expose()).expect("exposed secrets parse"), secret);
    }
    let _ = verify(&Secret::generate(), &text, &text, &text, data, 0, 300);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let canonical = canonical_json(&value);
        assert!(canonical.is_ascii(), "canonical JSON is ASCII");
        let back: serde_json::Value =
            serde_json::from_slice(&canonical).expect("canonical JSON parses");
        assert_eq!(back, value);
        assert_eq!(canonical_json(&back), canonical, "canonical JSON is idempotent");
    }
    if data.len() < 10 {
        return;
    }
    let key_len = 24 + usize::from(data[0]) % 41;
    let ts = i64::from(i32::from_le_bytes([data[1], data[2], data[3], data[4]]));
    let id_len = usize::from(data[5]) % 40;
    let rest = &data[6..];
    let key: Vec<u8> = rest.iter().copied().cycle().take(key_len).collect();
    let (id, body) = rest.split_at(id_len.min(rest.len()));
    let id = String::from_utf8_lossy(id);
    let secret =
        Secret::parse(&format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key)))
            .expect("24-64 byte keys are secrets");
    let signed = secret.sign(&id, ts, body);
    let ts_text = ts.to_string();
    assert_eq!(verify(&secret, &id, &ts_text, &signed, body, ts, 0), Ok(()));
    assert_eq!(
        verify(&secret, &id, &ts_text, &format!("v1,AAAA v2,x {signed} v1,"), body, ts + 300, 300),
        Ok(())
    );
    assert!(
        verify(&secret, &id, &ts_text, &signed, body, ts + 301, 300).is_err(),
        "outside the tolerance"
    );
    let mut changed = body.to_vec();
    match changed.first_mut() {
        Some(b) => *b ^= 1,
        None => changed.push(b'x'),
    }
    assert!(
        verify(&secret, &id, &ts_text, &signed, &changed, ts, 0).is_err(),
        "a changed body fails"
    );
    let mut other_key = key.clone();
    other_key[0] ^= 1;
    let other = Secret::parse(&format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&other_key)
    ))
    .unwrap();
    assert!(verify(&other, &id, &ts_text, &signed, body, ts, 0).is_err(), "another secret fails");
}

/// Filters: parsing never panics; a parsed filter matches exactly what NATS subject matching
/// (a plain reference implementation) matches, for every valid event type.
pub fn filter(data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let pattern = String::from_utf8_lossy(&data[..split]);
    let event_type = String::from_utf8_lossy(data.get(split + 1..).unwrap_or_default());
    let _ = pattern_matches(&pattern, &event_type);
    let Ok(filter) = EventFilter::parse(&pattern) else { return };
    assert_eq!(filter.as_str(), pattern);
    if valid_event_type(&event_type) {
        let pattern_segments: Vec<&str> = pattern.split('.').collect();
        let type_segments: Vec<&str> = event_type.split('.').collect();
        assert_eq!(
            filter.matches(&event_type),
            reference_match(&pattern_segments, &type_segments),
            "{pattern:?} vs {event_type:?}"
        );
    }
}

fn reference_match(pattern: &[&str], subject: &[&str]) -> bool {
    match (pattern.split_first(), subject.split_first()) {
        (Some((&">", [])), Some(_)) => true,
        (Some((p, ps)), Some((s, ss))) => (*p == "*" || p == s) && reference_match(ps, ss),
        (None, None) => true,
        _ => false,
    }
}

/// Configuration: any TOML text on top of the defaults either fails with an error or yields a
/// configuration whose invariants hold.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = hookline::config::Config::with_overrides(text) else { return };
    assert!(!config.retry.schedule.is_empty());
    assert!((0.0..1.0).contains(&config.retry.jitter));
    assert!(
        config.delivery.ack_wait
            >= config.delivery.request_timeout + std::time::Duration::from_secs(1)
    );
    assert!(config.delivery.concurrency >= 1 && config.delivery.fanout_concurrency >= 1);
    assert!(
        config.streams.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    );
    assert!(
        EgressPolicy::from_config(&config.egress).is_ok(),
        "a valid config has a valid egress policy"
    );
    assert!(config.secrets.secret_box().is_ok(), "a valid config has usable [secrets] keys");
    let _ = format!("{config:?}");
}

/// Egress: CIDR parsing never panics and round-trips; the classifier judges an IPv4 address and
/// its IPv4-mapped and NAT64 forms alike; a URL accepted by the strict static check has no
/// non-public IP literal.
pub fn egress(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(cidr) = Cidr::parse(&text) {
        let shown = cidr.to_string();
        assert_eq!(Cidr::parse(&shown).map(|c| c.to_string()), Ok(shown));
    }
    if data.len() >= 16 {
        let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        let _ = not_public(IpAddr::V6(v6));
    }
    if data.len() >= 4 {
        let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
        let blocked = not_public(IpAddr::V4(v4)).is_some();
        assert_eq!(not_public(IpAddr::V6(v4.to_ipv6_mapped())).is_some(), blocked, "mapped {v4}");
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(
            0x64,
            0xff9b,
            0,
            0,
            0,
            0,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d]),
        );
        assert_eq!(not_public(IpAddr::V6(nat64)).is_some(), blocked, "nat64 {v4}");
    }
    if let Ok(url) = url::Url::parse(&text)
        && EgressPolicy::default().check_static(&url).is_ok()
    {
        assert!(matches!(url.scheme(), "http" | "https"));
        if let Some(ip) = hookline::egress::literal_ip(&url) {
            assert_eq!(not_public(ip), None, "{url} passed with a non-public literal");
        }
    }
}
