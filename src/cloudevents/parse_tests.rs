//! Unit tests of reading CloudEvents (both modes) and of their mapping onto the event model.

use super::*;

fn binary(headers: &[(&str, &str)], body: &str) -> Result<WebhookEvent, InvalidEvent> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, *value);
    }
    parse_message(Some(&map), body.as_bytes(), "order.created", 4096)
}

fn structured(json: &str) -> Result<WebhookEvent, InvalidEvent> {
    let mut map = HeaderMap::new();
    map.insert("Content-Type", "application/cloudevents+json; charset=utf-8");
    parse_message(Some(&map), json.as_bytes(), "order.created", 4096)
}

const REQUIRED: [(&str, &str); 4] = [
    ("ce-specversion", "1.0"),
    ("ce-id", "ce-1"),
    ("ce-source", "/shop"),
    ("ce-type", "order.created"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    REQUIRED.iter().chain(extra).copied().collect()
}

#[test]
fn a_binary_event_maps_onto_the_event_model() {
    let headers = with(&[
        ("content-type", "application/json"),
        ("ce-time", "2024-01-02T03:04:05Z"),
        ("ce-tenantid", "acme"),
        ("CE-Region", "eu%20west"),
        ("ce-subject", "order%2F42"),
    ]);
    let e = binary(&headers, r#"{"total":12}"#).unwrap();
    assert_eq!(e.event_id.as_str(), "ce-1");
    assert_eq!(e.event_type.as_str(), "order.created");
    assert_eq!(e.payload, serde_json::json!({"total": 12}));
    assert_eq!(e.source.as_deref(), Some("/shop"));
    assert_eq!(e.tenant_id.as_deref(), Some("acme"));
    assert_eq!(e.occurred_at, Some(time::macros::datetime!(2024-01-02 03:04:05 UTC)));
    let ce = e.cloudevent.unwrap();
    assert_eq!(ce.datacontenttype.as_deref(), Some("application/json"));
    assert_eq!(ce.subject.as_deref(), Some("order/42"));
    assert_eq!(ce.extensions.get("region"), Some(&Value::from("eu west")));
    assert!(!ce.extensions.contains_key("tenantid"));
}

#[test]
fn a_structured_event_maps_onto_the_event_model() {
    let e = structured(
        r#"{"specversion":"1.0","id":"ce-2","source":"urn:shop","type":"order.created",
            "time":"2024-01-02T03:04:05+01:00","datacontenttype":"application/json",
            "data":{"a":[1,2]},"tenantid":"t1","priority":3,"urgent":true}"#,
    )
    .unwrap();
    assert_eq!(e.event_id.as_str(), "ce-2");
    assert_eq!(e.payload, serde_json::json!({"a": [1, 2]}));
    assert_eq!(e.tenant_id.as_deref(), Some("t1"));
    let ce = e.cloudevent.unwrap();
    assert_eq!(ce.extensions.get("priority"), Some(&Value::from(3)));
    assert_eq!(ce.extensions.get("urgent"), Some(&Value::from(true)));
}

#[test]
fn a_message_without_cloudevent_headers_is_a_webhook_event() {
    let mut map = HeaderMap::new();
    map.insert("Nats-Msg-Id", "e1");
    let body = br#"{"event_id":"e1","event_type":"order.created","payload":1}"#;
    let e = parse_message(Some(&map), body, "order.created", 4096).unwrap();
    assert_eq!(e.cloudevent, None);
    assert_eq!(parse_message(None, body, "order.created", 4096).unwrap().event_id, e.event_id);
}

#[test]
fn text_and_binary_data_are_kept() {
    let e = binary(&with(&[("content-type", "text/plain")]), "hello").unwrap();
    assert_eq!(e.payload, Value::from("hello"));
    assert!(!e.cloudevent.unwrap().data_base64);
    let e = structured(
        r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created",
            "datacontenttype":"image/png","data_base64":"AAEC"}"#,
    )
    .unwrap();
    assert_eq!(e.payload, Value::from("AAEC"));
    assert!(e.cloudevent.unwrap().data_base64);
    let e = structured(
        r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created",
            "datacontenttype":"application/json","data_base64":"eyJ4IjoxfQ=="}"#,
    )
    .unwrap();
    assert_eq!(e.payload, serde_json::json!({"x": 1}));
}

#[test]
fn data_of_no_declared_type_is_json_when_it_parses() {
    assert_eq!(binary(&REQUIRED, "[1]").unwrap().payload, serde_json::json!([1]));
    let e = binary(&REQUIRED, "not json").unwrap();
    assert_eq!(e.payload, Value::from("not json"));
    assert_eq!(e.cloudevent.unwrap().datacontenttype.as_deref(), Some("text/plain"));
}

#[test]
fn each_malformed_cloudevent_has_its_reason() {
    let missing = |name: &str| -> Vec<(&str, &str)> {
        REQUIRED.iter().filter(|(n, _)| !n.ends_with(name)).copied().collect()
    };
    let cases: Vec<(Result<WebhookEvent, InvalidEvent>, &str)> = vec![
        (binary(&missing("specversion"), "{}"), "cloudevent_missing_attribute"),
        (binary(&missing("-id"), "{}"), "cloudevent_missing_attribute"),
        (binary(&missing("type"), "{}"), "cloudevent_missing_attribute"),
        (binary(&missing("source"), "{}"), "cloudevent_missing_attribute"),
        (
            binary(
                &[
                    ("ce-specversion", "0.3"),
                    ("ce-id", "i"),
                    ("ce-source", "s"),
                    ("ce-type", "order.created"),
                ],
                "{}",
            ),
            "cloudevent_unsupported_specversion",
        ),
        (binary(&with(&[("ce-region", "50%")]), "{}"), "cloudevent_bad_header_encoding"),
        (binary(&with(&[("ce-region", "%C0%A0")]), "{}"), "cloudevent_bad_header_encoding"),
        (
            binary(&with(&[("content-type", "application/json")]), "{nope"),
            "cloudevent_data_not_json",
        ),
        (binary(&with(&[("ce-time", "yesterday")]), "{}"), "cloudevent_invalid_attribute"),
        (binary(&with(&[("ce-tenantid", "a b")]), "{}"), "invalid_field"),
        (
            structured(r#"{"specversion":"1.0","id":"i","type":"order.created"}"#),
            "cloudevent_missing_attribute",
        ),
        (
            structured(r#"{"specversion":1,"id":"i","source":"s","type":"order.created"}"#),
            "cloudevent_invalid_attribute",
        ),
        (
            structured(
                r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created","Bad_Name":1}"#,
            ),
            "cloudevent_invalid_attribute",
        ),
        (
            structured(
                r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created","ext":{"a":1}}"#,
            ),
            "cloudevent_invalid_attribute",
        ),
        (
            structured(
                r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created","data":1,"data_base64":"AA=="}"#,
            ),
            "cloudevent_invalid_attribute",
        ),
        (
            structured(
                r#"{"specversion":"1.0","id":"i","source":"s","type":"order.created","datacontenttype":"application/json","data_base64":"bm9wZQ=="}"#,
            ),
            "cloudevent_data_not_json",
        ),
        (
            structured(
                r#"{"specversion":"1.0","id":"has space","source":"s","type":"order.created"}"#,
            ),
            "invalid_event_id",
        ),
        (
            structured(r#"{"specversion":"1.0","id":"i","source":"s","type":"order.shipped"}"#),
            "event_type_mismatch",
        ),
        (structured("[1]"), "cloudevent_invalid_attribute"),
        (structured("{"), "invalid_json"),
    ];
    for (i, (result, reason)) in cases.into_iter().enumerate() {
        assert_eq!(result.map_err(|e| e.reason()).unwrap_err(), reason, "case {i}");
    }
}

#[test]
fn a_malformed_cloudevent_says_what_is_wrong() {
    let mut headers = REQUIRED.to_vec();
    headers.retain(|(n, _)| *n != "ce-source");
    let e = binary(&headers, "{}").unwrap_err();
    assert_eq!(e.to_string(), r#"cloudevent is missing the required attribute "source""#);
    let e = binary(&with(&[("ce-region", "50%")]), "{}").unwrap_err();
    assert!(e.to_string().contains("ce-region"), "{e}");
}

#[test]
fn oversized_cloudevents_are_refused_in_both_modes() {
    let big = format!("\"{}\"", "x".repeat(5000));
    assert_eq!(binary(&REQUIRED, &big).unwrap_err().reason(), "payload_too_large");
    assert_eq!(structured(&big).unwrap_err().reason(), "payload_too_large");
}

/// The parse cost of each shape (BENCHMARKS.md, "CloudEvents parse cost"): `cargo test --lib
/// cloudevents_cost -- --ignored --nocapture` (add `--release` for release numbers).
#[test]
#[ignore = "a measurement, not a check"]
fn cloudevents_cost() {
    let data = format!(r#"{{"order_id":42,"items":["a","b","c"],"note":"{}"}}"#, "x".repeat(180));
    let webhook = format!(
        r#"{{"event_id":"evt_1","event_type":"order.created","payload":{data},"occurred_at":"2024-01-02T03:04:05Z","source":"/shop","tenant_id":"acme"}}"#
    );
    let structured_body = format!(
        r#"{{"specversion":"1.0","id":"evt_1","source":"/shop","type":"order.created","time":"2024-01-02T03:04:05Z","datacontenttype":"application/json","tenantid":"acme","data":{data}}}"#
    );
    let mut structured_headers = HeaderMap::new();
    structured_headers.insert("Nats-Msg-Id", "evt_1");
    structured_headers.insert("content-type", "application/cloudevents+json");
    let mut binary_headers = HeaderMap::new();
    binary_headers.insert("Nats-Msg-Id", "evt_1");
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "evt_1"),
        ("ce-source", "/shop"),
        ("ce-type", "order.created"),
        ("ce-time", "2024-01-02T03:04:05Z"),
        ("ce-tenantid", "acme"),
        ("ce-region", "eu%20west"),
        ("content-type", "application/json"),
    ] {
        binary_headers.insert(name, value);
    }
    let mut webhook_headers = HeaderMap::new();
    webhook_headers.insert("Nats-Msg-Id", "evt_1");
    let time = |what: &str, n: u32, f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{what}: {:?} per call ({n} calls)", start.elapsed() / n);
    };
    let parse = |h: &HeaderMap, body: &str| {
        parse_message(Some(h), body.as_bytes(), "order.created", 1 << 20).unwrap()
    };
    println!(
        "webhook {} B, structured {} B, binary body {} B",
        webhook.len(),
        structured_body.len(),
        data.len()
    );
    for _round in 0..2 {
        time("WebhookEvent parse", 50_000, &mut || {
            std::hint::black_box(parse(&webhook_headers, &webhook));
        });
        time("structured CloudEvent parse", 50_000, &mut || {
            std::hint::black_box(parse(&structured_headers, &structured_body));
        });
        time("binary CloudEvent parse", 50_000, &mut || {
            std::hint::black_box(parse(&binary_headers, &data));
        });
    }
    let event = parse(&binary_headers, &data);
    time("envelope body (webhook_body)", 50_000, &mut || {
        std::hint::black_box(event.webhook_body());
    });
    time("structured CloudEvent body", 50_000, &mut || {
        std::hint::black_box(crate::cloudevents::encode::structured(&event, "hookline", false));
    });
    time("binary CloudEvent headers + body", 50_000, &mut || {
        std::hint::black_box(crate::cloudevents::encode::binary(&event, "hookline", false));
    });
}
