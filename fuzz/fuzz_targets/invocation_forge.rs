//! Edits of the holder's invocation are accepted only when they give back the same bytes.
//! The checks are in `laissez_fuzz_harness::invocation_forge`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::invocation_forge::run(data));
