//! The `laissez-chain` header (`docs/spec.md` §13): a delegated envelope's ancestors, root
//! first, an AMQP field array whose entries are each raw envelope bytes (first byte 0xd2; a
//! byte array, or a long string) or base64url text of them. The leaf is in
//! `laissez-envelope`; the header is absent when the envelope is not delegated.
//!
//! Reading is bounded before anything is decoded: a value that is not an array, an empty
//! array, more than [`MAX_ANCESTORS`] entries, an entry over 4096 bytes (or text longer than
//! any envelope's), an entry that is neither bytes nor text, or text that is not base64url
//! makes the whole message `malformed` ([`HeaderError`]), never a panic and never a run.
//! Whether the links hold is the verifier's business (`bad_delegation`, `not_attenuated`).

use std::borrow::Cow;

use laissez_verify::text::{MAX_TEXT_LEN, TextError, decode_text};
use laissez_verify::wire::MAX_CHAIN_LEN;
use laissez_verify::{ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN};
use lapin::types::{AMQPValue, ByteArray, FieldArray, LongString};

use crate::headers::{EnvelopeEncoding, HeaderError};

/// Header carrying a delegated envelope's ancestors, root first: an array, each entry raw
/// envelope bytes (a byte array, or a long string) or base64url text.
pub const HEADER_CHAIN: &str = "laissez-chain";

/// The most entries `laissez-chain` may hold: a chain is at most four envelopes long, and
/// its leaf travels in `laissez-envelope`.
pub const MAX_ANCESTORS: usize = MAX_CHAIN_LEN - 1;

/// The ancestors in a `laissez-chain` header value, root first, each decoded from text when
/// it came as text.
pub fn read_chain(value: &AMQPValue) -> Result<Vec<Cow<'_, [u8]>>, HeaderError> {
    let AMQPValue::FieldArray(entries) = value else {
        return Err(HeaderError::ChainNotArray);
    };
    let entries = entries.as_slice();
    if entries.is_empty() {
        return Err(HeaderError::ChainEmpty);
    }
    if entries.len() > MAX_ANCESTORS {
        return Err(HeaderError::ChainTooLong);
    }
    entries.iter().map(read_entry).collect()
}

/// One entry: raw bytes (first byte 0xd2) as they are, else base64url text (whitespace
/// anywhere ignored).
fn read_entry(value: &AMQPValue) -> Result<Cow<'_, [u8]>, HeaderError> {
    let raw = match value {
        AMQPValue::ByteArray(b) => b.as_slice(),
        AMQPValue::LongString(s) => s.as_bytes(),
        AMQPValue::ShortString(s) => s.as_str().as_bytes(),
        _ => return Err(HeaderError::ChainEntryNotBytesOrText),
    };
    if raw.first() == Some(&ENVELOPE_FIRST_BYTE) {
        if raw.len() > MAX_ENVELOPE_LEN {
            return Err(HeaderError::ChainEntryTooLong);
        }
        return Ok(Cow::Borrowed(raw));
    }
    if raw.len() > MAX_TEXT_LEN {
        return Err(HeaderError::ChainEntryTooLong);
    }
    let mut buf = [0u8; MAX_ENVELOPE_LEN];
    match decode_text(raw, &mut buf) {
        Ok(n) => Ok(Cow::Owned(buf[..n].to_vec())),
        Err(TextError::TooLong(_)) => Err(HeaderError::ChainEntryTooLong),
        Err(_) => Err(HeaderError::ChainEntryNotText),
    }
}

/// A `laissez-chain` header value of `ancestors` (root first), each written as `encoding`
/// says, like the envelope.
pub fn chain_value(ancestors: &[&[u8]], encoding: EnvelopeEncoding) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        ancestors
            .iter()
            .map(|a| match encoding {
                EnvelopeEncoding::Text => {
                    AMQPValue::LongString(LongString::from(laissez_sign::encode_text(a)))
                }
                _ => AMQPValue::ByteArray(ByteArray::from(*a)),
            })
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use lapin::types::{FieldTable, ShortString};

    use super::*;

    fn array(values: Vec<AMQPValue>) -> AMQPValue {
        AMQPValue::FieldArray(FieldArray::from(values))
    }

    #[test]
    fn bytes_and_text_entries_read_alike_and_round_trip() {
        let a = [0xd2u8, 0x84, 0x43, 0xa1];
        let b = [0xd2u8, 0x84, 0x40, 0x01, 0x02];
        for encoding in [EnvelopeEncoding::Bytes, EnvelopeEncoding::Text] {
            let value = chain_value(&[&a, &b], encoding);
            let read = read_chain(&value).unwrap();
            assert_eq!(read.len(), 2);
            assert_eq!(&read[0][..], &a);
            assert_eq!(&read[1][..], &b);
        }
        let short = array(vec![AMQPValue::ShortString(ShortString::from(
            laissez_sign::encode_text(&a),
        ))]);
        assert_eq!(&read_chain(&short).unwrap()[0][..], &a);
    }

    #[test]
    fn every_bad_shape_is_named_and_never_a_panic() {
        let entry = AMQPValue::ByteArray(ByteArray::from(&[0xd2u8, 0x84][..]));
        let cases = [
            (
                AMQPValue::LongString("abc".into()),
                HeaderError::ChainNotArray,
            ),
            (array(vec![]), HeaderError::ChainEmpty),
            (array(vec![entry.clone(); 4]), HeaderError::ChainTooLong),
            (
                array(vec![AMQPValue::FieldTable(FieldTable::default())]),
                HeaderError::ChainEntryNotBytesOrText,
            ),
            (
                array(vec![AMQPValue::ByteArray(ByteArray::from(
                    vec![0xd2u8; MAX_ENVELOPE_LEN + 1].as_slice(),
                ))]),
                HeaderError::ChainEntryTooLong,
            ),
            (
                array(vec![AMQPValue::LongString(
                    "A".repeat(MAX_TEXT_LEN + 1).into(),
                )]),
                HeaderError::ChainEntryTooLong,
            ),
            (
                array(vec![AMQPValue::LongString("not base64url!".into())]),
                HeaderError::ChainEntryNotText,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(read_chain(&value), Err(expected), "{value:?}");
            assert_eq!(expected.reason(), laissez_verify::Reason::Malformed);
        }
        assert_eq!(read_chain(&array(vec![entry; 3])).unwrap().len(), 3);
    }
}
