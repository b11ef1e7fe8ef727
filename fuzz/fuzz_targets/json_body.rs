//! Any byte string as a tool call's JSON body: no panic, no allocation, serde_json's verdict.
//! The checks are in `laissez_fuzz_harness::json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::json::run(data));
