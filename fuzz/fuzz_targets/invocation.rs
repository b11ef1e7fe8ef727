//! Any byte string as the invocation of a fixed call under a holder-bound envelope: no panic,
//! no allocation. The checks are in `laissez_fuzz_harness::invocation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::invocation::run(data));
