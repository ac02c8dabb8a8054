//! Every kind of malformed CloudEvent ends in `<prefix>.dlq._invalid` with its own reason: acked,
//! never redelivered, and a binary event's `ce-*` headers kept on the entry (nothing lost).

use hookline::pipeline::headers::ORIGINAL_SUBJECT;
use hookline::subjects::INVALID_EVENTS_TOKEN;

use super::{binary_headers, publish_with};
use crate::world::World;

/// Headers, body and the reason expected.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);

const STRUCTURED: [(&str, &str); 1] = [("content-type", "application/cloudevents+json")];

/// A binary event whose headers are `binary_headers` less `drop`, plus `extra`.
fn binary<'a>(drop: &str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h: Vec<_> = binary_headers("ce_bad").into_iter().filter(|(n, _)| *n != drop).collect();
    for (name, value) in extra {
        h.retain(|(n, _)| n != name);
        h.push((name, value));
    }
    h
}

#[tokio::test]
async fn each_malformed_cloudevent_is_dead_lettered_with_its_reason() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let structured_no_source =
        br#"{"specversion":"1.0","id":"x","type":"order.created","data":{}}"#.to_vec();
    let structured_v2 =
        br#"{"specversion":"2.0","id":"x","source":"s","type":"order.created"}"#.to_vec();
    let structured_b64 = br#"{"specversion":"1.0","id":"x","source":"s","type":"order.created","datacontenttype":"application/json","data_base64":"bm90IGpzb24="}"#.to_vec();
    let json = b"{\"ok\":true}".to_vec();
    // (headers, body, reason), all of type order.created on its own subject.
    let cases: Vec<Case> = vec![
        (binary("ce-specversion", &[]), json.clone(), "cloudevent_missing_attribute"),
        (binary("ce-id", &[]), json.clone(), "cloudevent_missing_attribute"),
        (binary("ce-type", &[]), json.clone(), "cloudevent_missing_attribute"),
        (binary("ce-source", &[]), json.clone(), "cloudevent_missing_attribute"),
        (STRUCTURED.to_vec(), structured_no_source, "cloudevent_missing_attribute"),
        (
            binary("", &[("ce-specversion", "0.3")]),
            json.clone(),
            "cloudevent_unsupported_specversion",
        ),
        (STRUCTURED.to_vec(), structured_v2, "cloudevent_unsupported_specversion"),
        (binary("", &[("ce-source", "100%")]), json.clone(), "cloudevent_bad_header_encoding"),
        (binary("", &[("ce-region", "%C0%A0")]), json.clone(), "cloudevent_bad_header_encoding"),
        (binary("", &[]), b"{not json".to_vec(), "cloudevent_data_not_json"),
        (STRUCTURED.to_vec(), structured_b64, "cloudevent_data_not_json"),
    ];
    for (headers, body, _) in &cases {
        publish_with(&w, "order.created", headers, body).await;
    }
    let entries = w.wait_for_dlq(Some(INVALID_EVENTS_TOKEN), cases.len()).await;
    w.wait_until_idle().await;
    assert_eq!(w.dlq(None).await.len(), cases.len(), "one entry per case, no redelivery");

    let stream = w.js().await.get_stream(w.names.dlq_stream()).await.unwrap();
    let mut reasons = Vec::new();
    for e in &entries {
        let raw = stream.direct_get(e.sequence).await.unwrap();
        assert_eq!(
            raw.headers.get(ORIGINAL_SUBJECT).map(|v| v.as_str()),
            Some(w.names.event("order.created").as_str())
        );
        assert!(!e.detail.is_empty(), "entry {} has a detail", e.sequence);
        reasons.push((e.reason.clone(), e.detail.clone(), raw));
    }
    // The entries come in the order the events were fanned out, which need not be publication
    // order: compare the multiset of reasons, then check the details and kept headers.
    let mut got: Vec<&str> = reasons.iter().map(|(r, _, _)| r.as_str()).collect();
    let mut want: Vec<&str> = cases.iter().map(|(_, _, r)| *r).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    let detail_of = |needle: &str| reasons.iter().any(|(_, d, _)| d.contains(needle));
    let details: Vec<&str> = reasons.iter().map(|(_, d, _)| d.as_str()).collect();
    for needle in
        [r#""specversion""#, r#""id""#, r#""type""#, r#""source""#, r#""0.3""#, r#""2.0""#]
    {
        assert!(detail_of(needle), "a detail names {needle}: {details:?}");
    }
    for needle in ["ce-source", "ce-region", "application/json"] {
        assert!(detail_of(needle), "a detail names {needle}: {details:?}");
    }
    // A binary event's attributes stay with its entry, beside the untouched body.
    let (_, _, raw) = reasons
        .iter()
        .find(|(r, _, raw)| r == "cloudevent_data_not_json" && raw.headers.get("ce-id").is_some())
        .expect("the binary data_not_json entry");
    assert_eq!(raw.headers.get("ce-region").map(|v| v.as_str()), Some("eu%20west"));
    assert_eq!(raw.payload.as_ref(), b"{not json");
    app.stop().await;
}
