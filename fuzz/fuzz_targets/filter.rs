//! Fuzz target: event-type filter parsing and matching against a reference NATS matcher.
//! The property lives in `tests/it/fuzz_checks.rs`, shared with the regression test.
#![no_main]

#[path = "../../tests/it/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::filter(data));
