//! Any byte string through envelope decoding, the claim views and verification: no panic,
//! no allocation. The checks are in `laissez_fuzz_harness::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::decode::run(data));
