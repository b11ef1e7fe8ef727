//! The `laissez-chain` header (`docs/spec.md` §13): a delegated envelope's ancestors, root
//! first, an AMQP field array whose entries are each raw envelope bytes (first byte 0xd2; a
//! byte array, or a long string) or base64url text of them. The leaf is in
//! `laissez-envelope`; the header is absent when the envelope is not delegated.
//!
//! Reading is bounded before anything is decoded: a value that is not an array, an empty
//! array, more than `MAX_ANCESTORS` entries, an entry over 4096 bytes (or text longer than
//! any envelope's), an entry that is neither bytes nor text, or text that is not base64url
//! makes the whole message `malformed` ([`HeaderError`]), never a panic and never a run.
//! Whether the links hold is the verifier's business (`bad_delegation`, `not_attenuated`).

use std::borrow::Cow;

use laissez_verify::text::TextError;
use laissez_verify::wire::{MAX_ANCESTORS, MAX_ENVELOPE_LEN};
use lapin::types::{AMQPValue, FieldArray};

use super::{EnvelopeEncoding, HeaderError, ValueError, encoded, read_value};

/// Header carrying a delegated envelope's ancestors, root first: an array, each entry raw
/// envelope bytes (a byte array, or a long string) or base64url text.
pub const HEADER_CHAIN: &str = "laissez-chain";

/// The ancestors in a `laissez-chain` header value, root first, each decoded from text when
/// it came as text.
pub(crate) fn read_chain(value: &AMQPValue) -> Result<Vec<Cow<'_, [u8]>>, HeaderError> {
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
/// anywhere ignored, at most `MAX_TEXT_LEN` long). Either way at most `MAX_ENVELOPE_LEN`
/// bytes.
fn read_entry(value: &AMQPValue) -> Result<Cow<'_, [u8]>, HeaderError> {
    let bytes = read_value(value, MAX_ENVELOPE_LEN).map_err(|e| match e {
        ValueError::NotBytesOrText => HeaderError::ChainEntryNotBytesOrText,
        ValueError::Text(TextError::TooLong(_)) => HeaderError::ChainEntryTooLong,
        ValueError::Text(_) => HeaderError::ChainEntryNotText,
    })?;
    // Decoded text is within the limit already; raw bytes are checked here.
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(HeaderError::ChainEntryTooLong);
    }
    Ok(bytes)
}

/// A `laissez-chain` header value of `ancestors` (root first), each written as `encoding`
/// says, like the envelope.
pub(crate) fn chain_value(ancestors: &[&[u8]], encoding: EnvelopeEncoding) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        ancestors
            .iter()
            .map(|a| encoded(a, encoding))
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use laissez_verify::wire::MAX_TEXT_LEN;
    use lapin::types::{ByteArray, FieldTable, ShortString};

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
