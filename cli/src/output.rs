//! What the commands print, and how: claim text made safe for a terminal, and stdout written
//! with its errors handled (docs/spec.md §10).
//!
//! Claims are text chosen by whoever signed, or, for `inspect`, by anyone at all. Printed raw,
//! an `iss` holding ESC sequences, CR or LF could clear the screen, move the cursor or print a
//! line that looks like ours (a second `UNVERIFIED` banner, a forged `sub`), and bidi controls
//! could make one name read as another. The escaping is `laissez_amqp::terminal`'s, the one the
//! worker's decision lines use too.

use std::io::Write as _;

use crate::failure::Failure;

/// Writes `bytes` to stdout and flushes it. `println!` panics (exit 101) when stdout is closed
/// (`laissez ... | head -c0`); here a closed stdout, or any other write error, is an I/O
/// failure: exit 3 with a message on stderr. The flush is part of it: what is still buffered
/// at exit would otherwise fail silently.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::io(format!("writing to stdout: {e}")))
}

/// Writes one line to stderr. `eprintln!` panics when stderr is closed; a message nobody can
/// read is dropped instead, and the exit code still tells what happened.
pub(crate) fn write_stderr_line(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

pub(crate) use laissez_amqp::terminal::escape_text;

/// One line of JSON, every [`laissez_amqp::terminal::is_unsafe`] character escaped.
pub(crate) fn json_line(value: &serde_json::Value) -> String {
    let mut line = laissez_amqp::terminal::json_safe(&value.to_string());
    line.push('\n');
    line
}

/// Writes the failure to stderr: the first line is what scripts match on.
pub(crate) fn report(failure: &Failure) {
    match failure {
        Failure::Denied { reason, detail } => {
            write_stderr_line(&format!("denied: {reason}"));
            write_stderr_line(&format!("  {detail}"));
        }
        Failure::Usage(message) | Failure::Io(message) | Failure::Nothing(message) => {
            write_stderr_line(&format!("laissez: {message}"));
        }
    }
}
