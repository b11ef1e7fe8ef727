//! Edits of one signed envelope verify only when they give back the same bytes. The checks
//! are in `laissez_fuzz_harness::forge`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::forge::run(data));
