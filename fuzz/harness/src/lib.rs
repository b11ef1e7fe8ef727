//! What the laissez fuzz targets check. Each `fuzz/fuzz_targets/*.rs` is one line calling a
//! `run` function here, so the same checks replay on stable with `cargo test` (see
//! `tests/replay.rs`), without libFuzzer.
//!
//! A panic is a finding: every `assert!` and `expect` in this crate states a property of the
//! libraries under test (or, in fixture set-up, a precondition of the harness itself). None
//! of them guards an expected failure of a fuzz input.
//!
//! Linking this crate installs a counting global allocator ([`alloc_count`]) so that the
//! verifier's no-allocation promise is checked on every input.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a panic is how a fuzz target reports a finding"
)]

pub mod alloc_count;
pub mod approval;
pub mod cli;
pub mod decode;
pub mod forge;
pub mod headers;
pub mod holder;
pub mod invocation;
pub mod invocation_forge;
pub mod json;
pub mod record;

/// A `fmt::Write` sink that keeps only the length: formats a value (to exercise its
/// `Display`) without allocating.
#[derive(Debug, Default)]
pub struct LenSink(pub usize);

impl core::fmt::Write for LenSink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The length of `value`'s `Display` output, computed without allocating.
pub fn display_len(value: &dyn core::fmt::Display) -> usize {
    let mut sink = LenSink::default();
    // `LenSink` never fails; an error here could only come from `value`'s own `fmt`, which
    // for a library type is a bug.
    core::fmt::write(&mut sink, format_args!("{value}")).expect("Display impl returned an error");
    sink.0
}
