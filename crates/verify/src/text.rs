//! The text form of a signed object (`docs/spec.md` §4): base64url without padding. One
//! reader, [`read_object`], for every object that travels (an envelope, an invocation, an
//! approval, a revocation record), shared by the command line, the middleware, the Python
//! binding and the signer, so that what one accepts the others accept too: raw bytes are
//! recognised by their first byte 0xd2 (tag 18, never the start of base64 text); otherwise
//! ASCII whitespace anywhere (surrounding, or a line-wrapped copy) is ignored, and padding is
//! tolerated. No allocation: text is decoded into a buffer the caller owns, whose length is
//! the most the object may decode to.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;

pub use crate::wire::MAX_TEXT_LEN;
use crate::wire::{ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN};

/// The longest base64url text of an envelope, with padding: `4 * ceil(4096 / 3)`.
const MAX_COMPACT_LEN: usize = MAX_ENVELOPE_LEN.div_ceil(3) * 4;

/// Input that is neither a raw envelope nor its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// Nothing but whitespace.
    Empty,
    /// Longer than any envelope's text (the length seen, in bytes).
    TooLong(usize),
    /// A byte that is not base64url, at this offset of the input.
    InvalidByte(usize),
    /// Base64url that does not end on a whole byte (a dangling character).
    BadLength,
    /// Padding (`=`) anywhere but at the end.
    BadPadding,
}

impl TextError {
    /// A stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "empty",
            TextError::TooLong(_) => "too_long",
            TextError::InvalidByte(_) => "bad_base64",
            TextError::BadLength | TextError::BadPadding => "bad_base64",
        }
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Empty => f.write_str("the envelope is empty"),
            TextError::TooLong(n) => write!(
                f,
                "the input is {n} bytes, longer than any envelope of at most {MAX_ENVELOPE_LEN} bytes"
            ),
            TextError::InvalidByte(at) => write!(
                f,
                "the input is neither a raw envelope (0xd2 first) nor base64url text: invalid byte at offset {at}"
            ),
            TextError::BadLength => {
                f.write_str("the base64url text has a dangling character (truncated?)")
            }
            TextError::BadPadding => f.write_str("the base64url text has padding before its end"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TextError {}

/// A signed object as [`read_object`] read it: the input itself, or what its text decoded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'i, 'b> {
    /// Raw bytes (first byte 0xd2): the input, as it is.
    Raw(&'i [u8]),
    /// The bytes the input's base64url text decoded to, in the caller's buffer.
    Decoded(&'b [u8]),
}

impl Received<'_, '_> {
    /// The object's bytes, however they came.
    pub const fn bytes(&self) -> &[u8] {
        match self {
            Received::Raw(bytes) | Received::Decoded(bytes) => bytes,
        }
    }
}

/// Whether `input` is a raw signed object rather than text: its first byte is 0xd2 (tag 18),
/// which no base64 text starts with.
pub const fn is_raw(input: &[u8]) -> bool {
    matches!(input.first(), Some(&ENVELOPE_FIRST_BYTE))
}

/// Reads a signed object as received: raw bytes (first byte 0xd2) are returned as they are;
/// anything else is decoded as base64url text into `buf`, whose length is the most the object
/// may decode to (`MAX_ENVELOPE_LEN`, `MAX_INVOCATION_LEN`, ... of [`crate::wire`]).
///
/// Sizes are checked before any work: text over four times `buf` (and never over
/// [`MAX_TEXT_LEN`]), or text that decodes to more than `buf` holds, is
/// [`TextError::TooLong`]. Raw input is not size-checked here: each object's decoder refuses
/// an oversized one as `malformed`.
pub fn read_object<'i, 'b>(
    input: &'i [u8],
    buf: &'b mut [u8],
) -> Result<Received<'i, 'b>, TextError> {
    if is_raw(input) {
        return Ok(Received::Raw(input));
    }
    let n = decode_text(input, buf)?;
    Ok(Received::Decoded(&buf[..n]))
}

/// [`read_object`] for an envelope, into a buffer of the longest envelope.
pub fn read_envelope<'a>(
    input: &'a [u8],
    buf: &'a mut [u8; MAX_ENVELOPE_LEN],
) -> Result<&'a [u8], TextError> {
    match read_object(input, buf)? {
        Received::Raw(bytes) | Received::Decoded(bytes) => Ok(bytes),
    }
}

/// Decodes base64url text (whitespace anywhere ignored, padding tolerated) into `out`;
/// returns the number of bytes written. Only text: a raw object is refused (its 0xd2 is not
/// base64url). Text over four times `out` (and never over [`MAX_TEXT_LEN`]) is refused before
/// any decoding.
pub fn decode_text(text: &[u8], out: &mut [u8]) -> Result<usize, TextError> {
    if text.len() > out.len().saturating_mul(4).min(MAX_TEXT_LEN) {
        return Err(TextError::TooLong(text.len()));
    }
    // Compact the text on the stack: base64 decoders want it contiguous.
    let mut compact = [0u8; MAX_COMPACT_LEN];
    let mut len = 0;
    for (at, &b) in text.iter().enumerate() {
        if b.is_ascii_whitespace() {
            continue;
        }
        if !is_base64url(b) {
            return Err(TextError::InvalidByte(at));
        }
        let Some(slot) = compact.get_mut(len) else {
            return Err(TextError::TooLong(text.len()));
        };
        *slot = b;
        len += 1;
    }
    if len == 0 {
        return Err(TextError::Empty);
    }
    match URL_SAFE_NO_PAD_INDIFFERENT.decode_slice(&compact[..len], out) {
        Ok(n) => Ok(n),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => Err(TextError::TooLong(text.len())),
        // Every byte was checked to be of the alphabet (or padding) above: what is left is a
        // dangling character, or padding in the wrong place.
        Err(base64::DecodeSliceError::DecodeError(
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidLastSymbol { .. },
        )) => Err(TextError::BadLength),
        Err(base64::DecodeSliceError::DecodeError(_)) => Err(TextError::BadPadding),
    }
}

/// The base64url alphabet, and `=` (padding is tolerated).
const fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Result<([u8; MAX_ENVELOPE_LEN], usize), TextError> {
        let mut buf = [0u8; MAX_ENVELOPE_LEN];
        let n = read_envelope(input, &mut buf)?.len();
        Ok((buf, n))
    }

    #[test]
    fn raw_is_returned_as_is_and_text_is_decoded() {
        let raw = [0xd2, 0x84, 0x01, 0xff, 0xfe];
        let mut buf = [0u8; MAX_ENVELOPE_LEN];
        assert_eq!(read_envelope(&raw, &mut buf), Ok(&raw[..]));
        // "0oQB__4" is raw in base64url without padding.
        for text in [
            &b"0oQB__4"[..],
            b"  0oQB__4\n",
            b"0oQ\nB__\r\n4",
            b"0oQB__4=",
        ] {
            let (buf, n) = read(text).unwrap();
            assert_eq!(&buf[..n], &raw[..], "{:?}", core::str::from_utf8(text));
        }
    }

    #[test]
    fn bad_text_is_refused_with_its_reason() {
        assert_eq!(read(b" \n\t").map(|_| ()), Err(TextError::Empty));
        assert_eq!(read(b"0oQB+/4").map(|_| ()), Err(TextError::InvalidByte(4)));
        assert_eq!(
            read(&[0xff, 0xfe]).map(|_| ()),
            Err(TextError::InvalidByte(0))
        );
        assert_eq!(read(b"0oQB_").map(|_| ()), Err(TextError::BadLength));
        assert_eq!(read(b"0o=QB__4").map(|_| ()), Err(TextError::BadPadding));
        let long = [b'A'; MAX_TEXT_LEN + 1];
        assert_eq!(
            read(&long).map(|_| ()),
            Err(TextError::TooLong(MAX_TEXT_LEN + 1))
        );
        // Text that would decode past the envelope limit.
        let over = [b'A'; MAX_COMPACT_LEN + 4];
        assert!(matches!(read(&over), Err(TextError::TooLong(_))));
    }

    #[test]
    fn every_object_reads_alike_within_its_own_limit() {
        // An invocation or an approval: at most 1024 bytes, text at most 4096 bytes.
        let mut small = [0u8; crate::wire::MAX_APPROVAL_LEN];
        let raw = [0xd2u8; crate::wire::MAX_APPROVAL_LEN + 1];
        // Raw is borrowed, never size-checked here (the object's decoder refuses it).
        assert_eq!(read_object(&raw, &mut small), Ok(Received::Raw(&raw[..])));
        assert!(is_raw(&raw) && !is_raw(b"0oQB__4") && !is_raw(b""));
        let got = read_object(b" 0oQB\n__4=", &mut small).unwrap();
        assert_eq!(got, Received::Decoded(&[0xd2, 0x84, 0x01, 0xff, 0xfe][..]));
        assert_eq!(got.bytes(), &[0xd2, 0x84, 0x01, 0xff, 0xfe]);
        // Text over four times the buffer: refused unread, whitespace or not.
        let long = [b' '; crate::wire::MAX_APPROVAL_TEXT_LEN + 1];
        assert_eq!(
            read_object(&long, &mut small),
            Err(TextError::TooLong(crate::wire::MAX_APPROVAL_TEXT_LEN + 1))
        );
        // Text that decodes past the buffer.
        let over = [b'A'; crate::wire::MAX_APPROVAL_TEXT_LEN];
        assert_eq!(
            read_object(&over, &mut small),
            Err(TextError::TooLong(crate::wire::MAX_APPROVAL_TEXT_LEN))
        );
        // The same text fits an envelope's buffer.
        assert!(read(&over).is_ok());
        // Text only: a raw object is not text.
        assert_eq!(
            decode_text(&raw, &mut small),
            Err(TextError::InvalidByte(0))
        );
    }

    #[test]
    fn the_largest_envelope_text_fits() {
        let mut raw = [0x41u8; MAX_ENVELOPE_LEN];
        raw[0] = 0x00;
        let mut text = [0u8; MAX_COMPACT_LEN];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .unwrap();
        let (buf, len) = read(&text[..n]).unwrap();
        assert_eq!(&buf[..len], &raw[..]);
    }
}
