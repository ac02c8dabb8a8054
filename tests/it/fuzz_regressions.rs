//! Replays every input saved under `fuzz/regressions/<target>/` (crashes the fuzzers found,
//! and inputs worth keeping) through the same checks the fuzz targets run, so a fixed bug stays
//! fixed without nightly or cargo-fuzz. `scripts/fuzz.sh` copies new crashes there.

use std::path::Path;

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

#[test]
fn fuzz_checks_accept_ordinary_inputs() {
    let event = br#"{"event_id":"e1","event_type":"t","payload":{"a":[1,2.5,"x"]},"occurred_at":"2024-01-02T03:04:05Z"}"#;
    let mut tagged = vec![0u8];
    tagged.extend_from_slice(event);
    let cases: &[(&str, &[u8])] = &[
        ("event_parse", &tagged),
        ("signature", b"\x05\x01\x02\x03\x04\x07some-id and a body {\"k\":1}"),
        ("filter", b"order.*\0order.created"),
        ("config", b"[delivery]\nconcurrency = 3\n"),
        ("egress", b"http://10.0.0.1/"),
    ];
    for (name, input) in cases {
        let check = TARGETS.iter().find(|(n, _)| n == name).unwrap().1;
        check(input);
    }
}
