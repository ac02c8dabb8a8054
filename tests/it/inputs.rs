//! Input limits at their edges, through the public API (no servers): event id length and
//! charset, event type grammar, JSON depth (counted before parsing), the size limit, and
//! deliveries read back from the stream. Every rejection is an `InvalidEvent` with its DLQ
//! reason, never a panic.

use hookline::event::{Delivery, InvalidEvent, MAX_ID_LEN, MAX_JSON_DEPTH, WebhookEvent};

fn event(id: &str, event_type: &str) -> String {
    serde_json::json!({"event_id": id, "event_type": event_type, "payload": {"a": 1}}).to_string()
}

fn reason(json: &str, subject_type: &str, limit: usize) -> Result<(), &'static str> {
    WebhookEvent::parse(json.as_bytes(), subject_type, limit).map(|_| ()).map_err(|e| e.reason())
}

#[test]
fn event_ids_are_1_to_128_characters_of_letters_digits_underscore_dash_colon() {
    let longest = "a".repeat(MAX_ID_LEN);
    for ok in ["e", "evt_1", "A-b_c:9", longest.as_str()] {
        assert_eq!(reason(&event(ok, "t"), "t", 1 << 20), Ok(()), "{ok:?}");
    }
    let too_long = "a".repeat(MAX_ID_LEN + 1);
    // Subject and key metacharacters, whitespace, control characters, non-ASCII.
    for bad in [
        "",
        too_long.as_str(),
        "a.b",
        "a*",
        "a>",
        "a b",
        "a\tb",
        "a\nb",
        "a\0b",
        "é",
        "a/b",
        "a\\b",
        "\u{202e}x",
    ] {
        assert_eq!(reason(&event(bad, "t"), "t", 1 << 20), Err("invalid_event_id"), "{bad:?}");
    }
}

#[test]
fn event_types_are_dot_separated_segments_and_must_match_the_subject() {
    let long_type = format!("{}.b", "a".repeat(MAX_ID_LEN));
    for bad in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "ä", long_type.as_str()] {
        assert_eq!(reason(&event("e1", bad), bad, 1 << 20), Err("invalid_event_type"), "{bad:?}");
    }
    assert_eq!(
        reason(&event("e1", "order.created"), "order.deleted", 1 << 20),
        Err("event_type_mismatch")
    );
}

#[test]
fn json_nesting_is_limited_to_64_levels_counted_before_parsing() {
    let nested = |levels: usize| {
        let inner = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        format!(r#"{{"event_id":"e1","event_type":"t","payload":{inner}}}"#)
    };
    // The envelope object is one level.
    assert_eq!(reason(&nested(MAX_JSON_DEPTH - 1), "t", 1 << 20), Ok(()));
    assert_eq!(reason(&nested(MAX_JSON_DEPTH), "t", 1 << 20), Err("invalid_json"));
    // Far beyond any parser's stack: rejected by the pre-scan, no stack overflow.
    let hostile = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    assert_eq!(
        WebhookEvent::parse(hostile.as_bytes(), "t", 4 << 20).unwrap_err(),
        InvalidEvent::TooDeep
    );
    let unclosed = "{\"a\":".repeat(100_000);
    assert_eq!(
        WebhookEvent::parse(unclosed.as_bytes(), "t", 4 << 20).unwrap_err(),
        InvalidEvent::TooDeep
    );
    // Brackets inside strings (escaped quotes included) do not count.
    let in_strings = format!(
        r#"{{"event_id":"e1","event_type":"t","payload":"{}\"{}"}}"#,
        "[".repeat(200),
        "{".repeat(200)
    );
    assert_eq!(reason(&in_strings, "t", 1 << 20), Ok(()));
    // Deliveries read back from the stream get the same guard.
    let deep_delivery = format!(
        r#"{{"subscription_id":"sub_1","event_id":"e","event_type":"t","payload":{}}}"#,
        "[".repeat(500)
    );
    assert_eq!(Delivery::parse(deep_delivery.as_bytes()).unwrap_err(), InvalidEvent::TooDeep);
}

#[test]
fn the_size_limit_is_inclusive_and_checked_before_parsing() {
    let body = event("e1", "t");
    assert_eq!(reason(&body, "t", body.len()), Ok(()));
    assert_eq!(reason(&body, "t", body.len() - 1), Err("payload_too_large"));
    // Not even looked at: garbage over the limit is "too large", not "invalid json".
    assert_eq!(reason(&"\u{0}".repeat(2048), "t", 1024), Err("payload_too_large"));
}

#[test]
fn malformed_documents_are_rejected_with_a_reason_never_a_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"null",
        b"[]",
        b"\"str\"",
        b"{",
        b"{\"event_id\":1,\"event_type\":\"t\",\"payload\":1}",
        b"{\"event_id\":\"e\",\"event_type\":\"t\"}",
        b"{\"event_id\":\"e\",\"event_type\":\"t\",\"payload\":1,\"occurred_at\":\"2024-13-45T99:00:00Z\"}",
        b"{\"event_id\":\"e\",\"event_type\":\"t\",\"payload\":1,\"tenant_id\":7}",
        b"\xff\xfe{}",
        b"{\"event_id\":\"e\",\"event_type\":\"t\",\"payload\":\"\\ud800\"}",
    ];
    for bytes in cases {
        let err = WebhookEvent::parse(bytes, "t", 1 << 20).map(|_| ()).unwrap_err();
        assert!(
            ["invalid_json", "invalid_field"].contains(&err.reason()),
            "{:?} -> {err:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let long_source = serde_json::json!({"event_id": "e", "event_type": "t", "payload": 1, "source": "s".repeat(129)}).to_string();
    assert_eq!(reason(&long_source, "t", 1 << 20), Err("invalid_field"));
}

#[test]
fn payload_numbers_are_delivered_with_the_digits_that_were_published() {
    // Found by the `signature` fuzz target (canonical JSON did not round-trip): without
    // serde_json's float_roundtrip, ~10 % of full-precision doubles came out one ulp off.
    for number in [
        "0.9856906946328695",
        "914.0641164648499",
        "182633.65176568934",
        "1.0715660391465826e-75",
        "0.30000000000000004",
        "12345678012345901234567890",
    ] {
        let json = format!(r#"{{"event_id":"e1","event_type":"t","payload":{{"x":{number}}}}}"#);
        let event = WebhookEvent::parse(json.as_bytes(), "t", 1 << 20).unwrap();
        let published: f64 = number.parse().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&event.webhook_body()).unwrap();
        assert_eq!(body["data"]["x"].as_f64(), Some(published), "{number}");
        let canonical = hookline::signing::canonical_json(&event.payload);
        let again: serde_json::Value = serde_json::from_slice(&canonical).unwrap();
        assert_eq!(again["x"].as_f64(), Some(published), "canonical JSON of {number}");
    }
}
