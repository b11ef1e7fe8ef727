//! Arbitrary AMQP header tables through the middleware's `read_headers`. The checks are in
//! `laissez_fuzz_harness::headers`.
#![no_main]

use laissez_fuzz_harness::headers::{HeaderInput, run};

libfuzzer_sys::fuzz_target!(|input: HeaderInput| run(&input));
