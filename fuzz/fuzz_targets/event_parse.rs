//! Fuzz target: WebhookEvent / Delivery parsing (size, depth, id and type grammar, round trip).
//! The property lives in `tests/it/fuzz_checks.rs`, shared with the regression test.
#![no_main]

#[path = "../../tests/it/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::event_parse(data));
