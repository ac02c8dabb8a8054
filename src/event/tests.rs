//! Unit tests of event and delivery parsing.

use super::*;

fn parse(json: &str, t: &str) -> Result<WebhookEvent, InvalidEvent> {
    WebhookEvent::parse(json.as_bytes(), t, 1024)
}

#[test]
fn a_valid_event_parses_and_gets_a_receipt_time() {
    let e = parse(
        r#"{"event_id":"evt_1","event_type":"order.created","payload":{"a":1}}"#,
        "order.created",
    )
    .unwrap();
    assert_eq!(e.event_id.as_str(), "evt_1");
    assert!(e.occurred_at.is_some());
}

#[test]
fn each_kind_of_bad_event_has_its_reason() {
    let cases = [
        ("not json", "order.created", "invalid_json"),
        (r#"{"event_type":"a","payload":1}"#, "a", "invalid_field"),
        (r#"{"event_id":"has space","event_type":"a","payload":1}"#, "a", "invalid_event_id"),
        (r#"{"event_id":"e1","event_type":"a..b","payload":1}"#, "a..b", "invalid_event_type"),
        (r#"{"event_id":"e1","event_type":"a.b","payload":1}"#, "a.c", "event_type_mismatch"),
        (
            r#"{"event_id":"e1","event_type":"a","payload":1,"occurred_at":"yesterday"}"#,
            "a",
            "invalid_field",
        ),
        (
            r#"{"event_id":"e1","event_type":"a","payload":1,"tenant_id":"a b"}"#,
            "a",
            "invalid_field",
        ),
        (r#"{"event_id":"e1","event_type":"a","payload":1,"tenant_id":""}"#, "a", "invalid_field"),
    ];
    for (json, t, reason) in cases {
        assert_eq!(parse(json, t).unwrap_err().reason(), reason, "{json}");
    }
}

#[test]
fn oversized_and_deep_events_are_rejected_before_parsing() {
    let big = format!(r#"{{"event_id":"e","event_type":"a","payload":"{}"}}"#, "x".repeat(2000));
    assert_eq!(parse(&big, "a").unwrap_err().reason(), "payload_too_large");
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        WebhookEvent::parse(deep.as_bytes(), "a", 1 << 20).unwrap_err(),
        InvalidEvent::TooDeep
    );
}

#[test]
fn brackets_inside_strings_do_not_count_as_depth() {
    assert_eq!(json_depth(br#"{"a":"[[[[\"[["}"#), 1);
}

#[test]
fn webhook_body_is_stable_across_calls() {
    let e = parse(r#"{"event_id":"e1","event_type":"a","payload":{"x":[1,2]},"occurred_at":"2024-01-02T03:04:05Z"}"#, "a").unwrap();
    assert_eq!(e.webhook_body(), e.webhook_body());
    assert_eq!(
        String::from_utf8(e.webhook_body()).unwrap(),
        r#"{"type":"a","timestamp":"2024-01-02T03:04:05Z","data":{"x":[1,2]}}"#
    );
}

#[test]
fn delivery_round_trips_through_json() {
    let e = parse(r#"{"event_id":"e1","event_type":"a","payload":null,"tenant_id":"t1"}"#, "a")
        .unwrap();
    let d = Delivery {
        event: e,
        subscription_id: "sub_0123456789abcdef0123456789abcdef".parse().unwrap(),
    };
    assert_eq!(Delivery::parse(&d.to_bytes()).unwrap(), d);
}

#[test]
fn the_wire_format_is_the_ids_as_strings_in_field_order() {
    let json = r#"{"event_id":"e1","event_type":"a.b","payload":{"x":1},"occurred_at":"2024-01-02T03:04:05Z","source":"s","tenant_id":"t1"}"#;
    let e = parse(json, "a.b").unwrap();
    assert_eq!(serde_json::to_string(&e).unwrap(), json);
    let d = Delivery { event: e, subscription_id: "sub_1".parse().unwrap() };
    let with_sub = format!(r#"{},"subscription_id":"sub_1"}}"#, &json[..json.len() - 1]);
    assert_eq!(String::from_utf8(d.to_bytes()).unwrap(), with_sub);
}

#[test]
fn a_delivery_names_its_wrong_field() {
    let body = |id: &str, sub: &str| {
        format!(r#"{{"event_id":"{id}","event_type":"a","payload":1,"subscription_id":"{sub}"}}"#)
    };
    let reason = |id, sub| Delivery::parse(body(id, sub).as_bytes()).map_err(|e| e.reason());
    assert!(reason("e1", "sub_1").is_ok());
    assert_eq!(reason("e 1", "sub_1").unwrap_err(), "invalid_event_id");
    assert_eq!(reason("e1", "sub_").unwrap_err(), "invalid_field");
    assert_eq!(Delivery::parse(br#"{"event_id":"e1"}"#).unwrap_err().reason(), "invalid_json");
}
