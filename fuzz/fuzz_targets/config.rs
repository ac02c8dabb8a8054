//! Fuzz target: configuration TOML on top of the defaults: an error or a valid config.
//! The property lives in `tests/it/fuzz_checks.rs`, shared with the regression test.
#![no_main]

#[path = "../../tests/it/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config(data));
