//! Text through the command line's parsers and the tool grammar. The checks are in
//! `laissez_fuzz_harness::cli`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laissez_fuzz_harness::cli::run(data));
