//! Any byte string as one approval of a destructive call that needs two: no panic, no
//! allocation, and only approver A's own approval counts. The checks are in
//! `laissez_fuzz_harness::approval`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::approval::run(data));
