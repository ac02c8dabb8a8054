//! Replays every input saved under `fuzz/regressions/<target>/` (crashes the fuzzers found,
//! and inputs worth keeping) through the same checks the fuzz targets run, so a fixed bug stays
//! fixed without nightly or cargo-fuzz. `scripts/fuzz.sh` copies new crashes there.

use std::path::Path;

use hookline::config::Config;
use hookline::egress::{Cidr, EgressPolicy};
use hookline::event::WebhookEvent;
use hookline::filter::EventFilter;
use hookline::signing::Secret;

use crate::fuzz_checks::TARGETS;

#[test]
fn saved_fuzz_inputs_still_pass_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("regressions");
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).expect("reading a saved input");
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{name}: {} fails its check again", entry.path().display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no saved inputs under {}", root.display());
}

/// Whether an input reaches the accepting branch of its check (parsed, then its properties
/// checked) rather than an early rejection, which would check next to nothing.
type Accepted = fn(&[u8]) -> bool;

fn text(data: &[u8]) -> &str {
    std::str::from_utf8(data).expect("ordinary inputs are UTF-8")
}

#[test]
fn fuzz_checks_accept_ordinary_inputs() {
    let event = br#"{"event_id":"e1","event_type":"t","payload":{"a":[1,2.5,"x"]},"occurred_at":"2024-01-02T03:04:05Z"}"#;
    let mut tagged = vec![0u8];
    tagged.extend_from_slice(event);
    let cases: &[(&str, &[u8], Accepted)] = &[
        ("event_parse", &tagged, |d| WebhookEvent::parse(&d[1..], "t", 1 << 20).is_ok()),
        // At least 10 bytes: the sign-then-verify branch runs; the rest is a JSON body.
        ("signature", b"\x05\x01\x02\x03\x04\x07some-id and a body {\"k\":1}", |d| d.len() >= 10),
        ("signature", b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", |d| {
            Secret::parse(text(d)).is_ok()
        }),
        ("signature", br#"{"k":[1,"x",{"y":null}]}"#, |d| {
            serde_json::from_slice::<serde_json::Value>(d).is_ok()
        }),
        ("filter", b"order.*\0order.created", |d| {
            let (pattern, event_type) = text(d).split_once('\0').expect("pattern\\0type");
            EventFilter::parse(pattern).is_ok_and(|f| f.matches(event_type))
        }),
        ("config", b"[delivery]\nconcurrency = 3\n", |d| {
            Config::with_overrides(text(d)).is_ok_and(|c| c.delivery.concurrency == 3)
        }),
        ("egress", b"10.0.0.0/8", |d| Cidr::parse(text(d)).is_ok()),
        ("egress", b"https://93.184.216.34/hook", |d| {
            url::Url::parse(text(d))
                .is_ok_and(|url| EgressPolicy::default().check_static(&url).is_ok())
        }),
    ];
    for (name, input, accepted) in cases {
        assert!(accepted(input), "{name}: {:?} is rejected before its checks", text_lossy(input));
        let check = TARGETS.iter().find(|(n, _)| n == name).expect("a known target").1;
        check(input);
    }
}

fn text_lossy(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
