//! The text form of an envelope: base64url without padding (CONTRACT §1). Readers are
//! tolerant: whitespace anywhere (line-wrapped copies, trailing newlines) and padding are
//! accepted, and raw bytes are recognised by their first byte 0xd2.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use laissez_verify::{ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN};

/// Input that is not an envelope's text or raw form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// Nothing but whitespace.
    Empty,
    /// Not base64url (the decoder's explanation).
    Base64(String),
    /// Neither raw bytes (0xd2 first) nor UTF-8 text.
    NotText,
    /// Far longer than any envelope.
    TooLong(usize),
}

impl TextError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "empty",
            TextError::Base64(_) => "bad_base64",
            TextError::NotText => "not_text",
            TextError::TooLong(_) => "too_long",
        }
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Empty => f.write_str("the envelope is empty"),
            TextError::Base64(e) => write!(f, "the envelope is not base64url: {e}"),
            TextError::NotText => {
                f.write_str("the input is neither a raw envelope (0xd2 first) nor base64url text")
            }
            TextError::TooLong(n) => write!(
                f,
                "the input is {n} bytes, far over the envelope limit of {MAX_ENVELOPE_LEN}"
            ),
        }
    }
}

impl std::error::Error for TextError {}

/// base64url without padding.
pub fn encode_text(envelope: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(envelope)
}

/// Decodes base64url text, ignoring whitespace anywhere and padding.
pub fn decode_text(text: &str) -> Result<Vec<u8>, TextError> {
    // Text of an envelope is at most 4/3 of 4096 bytes; allow generous whitespace.
    if text.len() > 4 * MAX_ENVELOPE_LEN {
        return Err(TextError::TooLong(text.len()));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(TextError::Empty);
    }
    URL_SAFE_NO_PAD_INDIFFERENT
        .decode(compact.as_bytes())
        .map_err(|e| TextError::Base64(e.to_string()))
}

/// Decodes what a reader got: raw envelope bytes (first byte 0xd2, never the start of
/// base64 text) are returned as they are; anything else is decoded as text.
pub fn decode_input(input: &[u8]) -> Result<Vec<u8>, TextError> {
    if input.first() == Some(&ENVELOPE_FIRST_BYTE) {
        return Ok(input.to_vec());
    }
    let text = core::str::from_utf8(input).map_err(|_| TextError::NotText)?;
    decode_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_tolerates_whitespace_and_padding() {
        let bytes = [0xd2, 0x84, 0x01, 0xff, 0xfe];
        let text = encode_text(&bytes);
        assert!(!text.contains('='));
        assert_eq!(decode_text(&text).unwrap(), bytes);
        let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
        assert!(padded.ends_with('='));
        assert_eq!(decode_text(&format!("  {padded}\n")).unwrap(), bytes);
        assert_eq!(
            decode_text(&format!("{}\n{}", &text[..3], &text[3..])).unwrap(),
            bytes
        );
        assert_eq!(decode_input(text.as_bytes()).unwrap(), bytes);
        assert_eq!(decode_input(&bytes).unwrap(), bytes);
    }

    #[test]
    fn bad_text_is_refused() {
        assert_eq!(decode_text(" \n"), Err(TextError::Empty));
        assert!(matches!(decode_text("a+b/"), Err(TextError::Base64(_))));
        assert!(matches!(
            decode_input(&[0xff, 0xfe]),
            Err(TextError::NotText)
        ));
    }
}
