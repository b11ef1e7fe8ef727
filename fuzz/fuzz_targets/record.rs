//! Any byte string as a revocation record read from the stream: no panic, no allocation,
//! nothing forged verifies. The checks are in `laissez_fuzz_harness::record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::record::run(data));
