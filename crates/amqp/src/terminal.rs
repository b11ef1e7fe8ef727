//! Text chosen by others, made safe for a terminal: the one escaping used wherever laissez
//! shows a person, or prints as a JSON line, a string that an issuer, an agent or a publisher
//! chose (`docs/spec.md` §10).
//!
//! Printed raw, an `iss` holding ESC sequences, CR or LF could clear the screen, move the
//! cursor or print a line that looks like ours; bidi controls could make one name read as
//! another; and a zero-width or other invisible character could make two different names
//! (`rt-apq` and `rt-apq` followed by U+200B) look the same.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for every character that is not plainly printable, so that what a person reads is
/// what was sent (`docs/spec.md` §10): the controls (C0 such as LF, CR and ESC, DEL, C1, where
/// U+009B is an 8-bit CSI to some terminals); every format character (Cf: the bidi marks,
/// embeddings, overrides and isolates, the zero-width space, joiners and word joiner, U+FEFF,
/// the soft hyphen, tag characters...); the line and paragraph separators; every space but
/// U+0020 (U+00A0, U+3000... look like a space or nothing); private-use, surrogate and
/// unassigned code points (a later Unicode may make them anything); and the other
/// default-ignorable characters, which render as nothing (variation selectors, the combining
/// grapheme joiner, Hangul fillers, Mongolian free variation selectors, Khmer inherent vowels).
pub fn is_unsafe(c: char) -> bool {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    if c == ' ' {
        return false;
    }
    matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::SpaceSeparator
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned
    ) || matches!(
        c,
        '\u{034f}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{ffa0}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Claim text for a line of human output: every unsafe character becomes `\u{HEX}` and a
/// backslash becomes `\\`, so the escaped form cannot be mistaken for text that was sent.
pub fn escape_text(text: &str) -> Cow<'_, str> {
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

/// JSON text (as serde_json writes it) with every [`is_unsafe`] character rewritten as
/// `\uXXXX` (a UTF-16 surrogate pair beyond the BMP): serde_json escapes C0 controls but
/// writes DEL, C1 controls, format characters and the rest as they are. They can only occur
/// inside strings (JSON's own syntax is ASCII), so the result is still JSON and decodes to the
/// same values.
pub fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
        }
    }
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
    fn format_characters_invisible_spaces_and_unassigned_code_points_are_escaped() {
        // The forged x-death queue of issue 23: `rt-apq` and a zero-width space.
        assert_eq!(escape_text("rt-apq\u{200b}"), "rt-apq\\u{200b}");
        for c in [
            '\u{ad}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{2060}',
            '\u{feff}',
            '\u{61c}',
            '\u{180e}',
            '\u{a0}',
            '\u{3000}',
            '\u{fe0f}',
            '\u{34f}',
            '\u{3164}',
            '\u{e000}',
            '\u{e0041}',
            '\u{10ffff}',
            '\u{110bd}',
        ] {
            assert!(is_unsafe(c), "U+{:04X}", u32::from(c));
            let shown = escape_text(&format!("a{c}b")).into_owned();
            assert_eq!(shown, format!("a\\u{{{:x}}}b", u32::from(c)));
        }
        for c in ['a', ' ', 'é', '✓', '中', '😀', '\u{301}'] {
            assert!(!is_unsafe(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn json_lines_escape_what_serde_json_leaves_and_decode_the_same() {
        let original = "x\u{1b}\u{7f}\u{85}\u{9b}\u{202e}\u{2069}\u{2029}\u{200b}\u{e0041}\"\\é";
        let value = serde_json::json!({ "iss": original });
        let line = format!("{}\n", json_safe(&value.to_string()));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert!(!line.trim_end().chars().any(is_unsafe), "{line:?}");
        assert!(
            line.contains("\\u202e") && line.contains("\\u009b") && line.contains("\\udb40\\udc41"),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["iss"], original);
    }
}
