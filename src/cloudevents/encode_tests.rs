//! Unit tests of rendering events as CloudEvents, and of the round trip through parsing.

use super::*;
use crate::cloudevents::parse_structured;

fn webhook_event() -> WebhookEvent {
    let json = r#"{"event_id":"e1","event_type":"order.created","payload":{"n":1},
        "occurred_at":"2024-01-02T03:04:05Z","source":"billing","tenant_id":"acme"}"#;
    WebhookEvent::parse(json.as_bytes(), "order.created", 4096).unwrap()
}

#[test]
fn a_webhook_event_gets_the_configured_source_and_a_tenant_extension() {
    let body = structured(&webhook_event(), "hookline", false);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"specversion": "1.0", "id": "e1", "source": "hookline",
            "type": "order.created", "time": "2024-01-02T03:04:05Z", "tenantid": "acme",
            "datacontenttype": "application/json", "data": {"n": 1}})
    );
}

#[test]
fn binary_mode_puts_attributes_in_encoded_headers_and_data_in_the_body() {
    let mut e = parse_structured(
        br#"{"specversion":"1.0","id":"c1","source":"/a b","type":"order.created",
            "time":"2024-01-02T03:04:05Z","region":"eu west","n":7,"data":{"x":1}}"#,
        None,
        4096,
    )
    .unwrap();
    e.tenant_id = None;
    let b = binary(&e, "hookline", false);
    assert_eq!(b.content_type, "application/json");
    assert_eq!(b.body, br#"{"x":1}"#);
    let get = |name: &str| b.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(get("ce-id"), Some("c1"));
    assert_eq!(get("ce-source"), Some("/a%20b"));
    assert_eq!(get("ce-region"), Some("eu%20west"));
    assert_eq!(get("ce-n"), Some("7"));
    assert_eq!(get("ce-time"), Some("2024-01-02T03:04:05Z"));
    assert_eq!(get("ce-datacontenttype"), None);
}

#[test]
fn a_cloudevent_survives_a_round_trip_through_the_structured_format() {
    let input = br#"{"specversion":"1.0","id":"c1","source":"urn:x","type":"order.created",
        "subject":"s/1","dataschema":"https://example.com/s","time":"2024-01-02T03:04:05Z",
        "tenantid":"t1","flag":false,"datacontenttype":"application/json","data":[1,"two"]}"#;
    let first = parse_structured(input, Some("order.created"), 4096).unwrap();
    let again = parse_structured(&structured(&first, "other", false), None, 4096).unwrap();
    assert_eq!(again, first);
}

#[test]
fn text_and_base64_data_keep_their_shape() {
    let text = parse_structured(
        br#"{"specversion":"1.0","id":"c","source":"s","type":"t","datacontenttype":"text/plain","data":"hi there"}"#,
        None,
        4096,
    )
    .unwrap();
    assert_eq!(binary(&text, "h", false).body, b"hi there");
    let v: Value = serde_json::from_slice(&structured(&text, "h", false)).unwrap();
    assert_eq!(v["data"], "hi there");
    let bytes = parse_structured(
        br#"{"specversion":"1.0","id":"c","source":"s","type":"t","datacontenttype":"image/png","data_base64":"AAEC/w=="}"#,
        None,
        4096,
    )
    .unwrap();
    let b = binary(&bytes, "h", false);
    assert_eq!((b.body.as_slice(), b.content_type.as_str()), (&[0u8, 1, 2, 255][..], "image/png"));
    let v: Value = serde_json::from_slice(&structured(&bytes, "h", false)).unwrap();
    assert_eq!(v["data_base64"], "AAEC/w==");
    assert!(v.get("data").is_none());
}

#[test]
fn canonical_rendering_sorts_keys_compactly() {
    let mut e = webhook_event();
    e.payload = serde_json::json!({"b": 1, "a": 2});
    assert_eq!(binary(&e, "h", true).body, br#"{"a":2,"b":1}"#);
    let body = String::from_utf8(structured(&e, "h", true)).unwrap();
    assert!(body.starts_with(r#"{"data":{"a":2,"b":1},"datacontenttype""#), "{body}");
}
