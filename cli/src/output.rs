//! What the commands print, and how: claim text made safe for a terminal, and stdout written
//! with its errors handled (docs/spec.md §10).
//!
//! Claims are text chosen by whoever signed, or, for `inspect`, by anyone at all. Printed raw,
//! an `iss` holding ESC sequences, CR or LF could clear the screen, move the cursor or print a
//! line that looks like ours (a second `UNVERIFIED` banner, a forged `sub`), and bidi controls
//! could make one name read as another.

use std::borrow::Cow;
use std::fmt::Write as _;
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

/// True for the characters a terminal acts on or that reorder text: C0 controls (LF, CR,
/// ESC...), DEL, C1 controls (U+0080..U+009F; U+009B is an 8-bit CSI to some terminals), the
/// bidi marks, embeddings, overrides and isolates, and the Unicode line and paragraph
/// separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Claim text for a line of human output: every unsafe character becomes `\u{HEX}` and a
/// backslash becomes `\\`, so the escaped form cannot be mistaken for text that was sent.
pub(crate) fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of JSON. serde_json escapes C0 controls but writes DEL, C1 controls and bidi
/// controls as they are; these are rewritten as `\uXXXX`. They can only occur inside strings
/// (JSON's own syntax is ASCII) and all lie in the BMP, so the result is still JSON and
/// decodes to the same values.
pub(crate) fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_plain_text_is_kept() {
        assert!(matches!(
            escape_text("spiffe://acme.example/agent/x"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_text("a\u{1b}[2J\r\nb\u{7f}\u{9b}\u{202e}\u{2066}\u{2028}"),
            "a\\u{1b}[2J\\u{d}\\u{a}b\\u{7f}\\u{9b}\\u{202e}\\u{2066}\\u{2028}"
        );
        // A backslash is doubled, so a sent `\u{1b}` is not read as an escaped ESC.
        assert_eq!(escape_text("\\u{1b}"), "\\\\u{1b}");
        assert_eq!(escape_text("café ✓"), "café ✓");
    }

    #[test]
    fn json_lines_escape_what_serde_json_leaves_and_decode_the_same() {
        let original = "x\u{1b}\u{7f}\u{85}\u{9b}\u{202e}\u{2069}\u{2029}\"\\é";
        let value = serde_json::json!({ "iss": original });
        let line = json_line(&value);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert!(!line.trim_end().chars().any(is_unsafe), "{line:?}");
        assert!(
            line.contains("\\u202e") && line.contains("\\u009b"),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["iss"], original);
    }
}
