//! The text form of a signed object (an envelope, an invocation, an approval, a revocation
//! record): base64url without padding (`docs/spec.md` §4). Reading goes through the one
//! reader of `laissez_verify::text`, shared with the middleware and the command line: raw
//! bytes (first byte 0xd2) as they are, otherwise base64url with ASCII whitespace anywhere
//! ignored and padding tolerated. These are its owned (`Vec`) forms, bounded as an envelope
//! is: each object's decoder refuses one over its own limit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use laissez_verify::text::TextError;
use laissez_verify::wire::MAX_ENVELOPE_LEN;

/// base64url without padding.
pub fn encode_text(envelope: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(envelope)
}

/// Decodes base64url text, ignoring whitespace anywhere and padding. Only text: a `str`
/// starting with the byte 0xd2 is not taken as a raw object.
pub fn decode_text(text: &str) -> Result<Vec<u8>, TextError> {
    let mut buf = [0u8; MAX_ENVELOPE_LEN];
    let n = laissez_verify::text::decode_text(text.as_bytes(), &mut buf)?;
    Ok(buf[..n].to_vec())
}

/// Decodes what a reader got: raw envelope bytes (first byte 0xd2, never the start of
/// base64 text) are returned as they are; anything else is decoded as text.
pub fn decode_input(input: &[u8]) -> Result<Vec<u8>, TextError> {
    let mut buf = [0u8; MAX_ENVELOPE_LEN];
    laissez_verify::text::read_object(input, &mut buf).map(|read| read.bytes().to_vec())
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
        assert!(matches!(
            decode_text("a+b/"),
            Err(TextError::InvalidByte(1))
        ));
        assert!(matches!(
            decode_input(&[0xff, 0xfe]),
            Err(TextError::InvalidByte(0))
        ));
    }
}
