//! The offline quickstart: `cargo run --example quickstart`.
//!
//! Generates a key, signs an envelope for an agent, and verifies a sequence of tool calls
//! against it, one line per decision. The code is in `lib.rs` so that a test checks the
//! same output.

use std::process::ExitCode;

fn main() -> ExitCode {
    match laissez_examples::quickstart(&mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}
