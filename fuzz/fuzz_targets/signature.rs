//! Fuzz target: Standard Webhooks sign/verify, secret parsing, canonical JSON.
//! The property lives in `testkit/src/fuzz_checks.rs` (crate `hookline-testkit`), shared with
//! the regression test.
#![no_main]

use hookline_testkit::fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::signature(data));
