//! The `laissez-approvals` header (`docs/spec.md` §12): people's approvals of one call, an
//! AMQP field array whose entries are each raw approval bytes (first byte 0xd2; a byte array,
//! or a long string) or base64url text of them.
//!
//! Reading is bounded before anything is decoded: more than `MAX_APPROVALS` entries, an
//! entry over `MAX_APPROVAL_LEN` bytes (or text longer than any approval's), an entry that
//! is neither bytes nor text, or text that is not base64url makes the whole message
//! `malformed` ([`HeaderError`]), never a panic and never a run. Whether an approval that
//! reads *counts* is the verifier's business: one that does not is ignored.

use std::borrow::Cow;

use laissez_verify::text::TextError;
use laissez_verify::wire::{MAX_APPROVAL_LEN, MAX_APPROVALS};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, FieldArray, FieldTable};

use super::{HeaderError, ValueError, read_value};

/// Header carrying the approvals of a call: an array, each entry raw approval bytes (a byte
/// array, or a long string) or base64url text.
pub const HEADER_APPROVALS: &str = "laissez-approvals";

/// The approvals in a `laissez-approvals` header value, in the order received, each decoded
/// from text when it came as text.
pub(crate) fn read_approvals(value: &AMQPValue) -> Result<Vec<Cow<'_, [u8]>>, HeaderError> {
    let AMQPValue::FieldArray(entries) = value else {
        return Err(HeaderError::ApprovalsNotArray);
    };
    let entries = entries.as_slice();
    if entries.len() > MAX_APPROVALS {
        return Err(HeaderError::TooManyApprovals);
    }
    entries.iter().map(read_entry).collect()
}

/// One entry: raw bytes (first byte 0xd2) as they are, else base64url text (whitespace
/// anywhere ignored, at most `MAX_APPROVAL_TEXT_LEN` long). Either way at most
/// `MAX_APPROVAL_LEN` bytes.
fn read_entry(value: &AMQPValue) -> Result<Cow<'_, [u8]>, HeaderError> {
    let bytes = read_value(value, MAX_APPROVAL_LEN).map_err(|e| match e {
        ValueError::NotBytesOrText => HeaderError::ApprovalNotBytesOrText,
        ValueError::Text(TextError::TooLong(_)) => HeaderError::ApprovalTooLong,
        ValueError::Text(_) => HeaderError::ApprovalNotText,
    })?;
    // Decoded text is within the limit already; raw bytes are checked here.
    if bytes.len() > MAX_APPROVAL_LEN {
        return Err(HeaderError::ApprovalTooLong);
    }
    Ok(bytes)
}

/// Why an approval cannot be added to a message's `laissez-approvals` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddApprovalError {
    /// The header is there but unreadable (what is wrong is said): the worker would deny
    /// the message `malformed` whatever is added.
    Unreadable(HeaderError),
    /// The header already holds 16 approvals, the most one call may carry.
    Full,
}

impl std::fmt::Display for AddApprovalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddApprovalError::Unreadable(e) => write!(f, "{e}"),
            AddApprovalError::Full => write!(
                f,
                "the message already carries {MAX_APPROVALS} approvals, the most one call may carry"
            ),
        }
    }
}

impl std::error::Error for AddApprovalError {}

/// `properties` with `approval` (raw bytes) appended to the `laissez-approvals` header, as a
/// byte array; every other property and header unchanged, and the approvals already there
/// kept as they were (bytes or text).
pub fn with_approval(
    properties: &BasicProperties,
    approval: &[u8],
) -> Result<BasicProperties, AddApprovalError> {
    let mut headers = properties.headers().clone().unwrap_or_default();
    let mut entries: Vec<AMQPValue> = match headers.inner().get(HEADER_APPROVALS) {
        None => Vec::new(),
        Some(value) => {
            read_approvals(value).map_err(AddApprovalError::Unreadable)?;
            match value {
                AMQPValue::FieldArray(entries) => entries.as_slice().to_vec(),
                // Unreachable: read_approvals accepts only an array.
                _ => Vec::new(),
            }
        }
    };
    if entries.len() >= MAX_APPROVALS {
        return Err(AddApprovalError::Full);
    }
    entries.push(AMQPValue::ByteArray(ByteArray::from(approval)));
    headers.insert(
        HEADER_APPROVALS.into(),
        AMQPValue::FieldArray(FieldArray::from(entries)),
    );
    Ok(properties.clone().with_headers(headers))
}

/// The approvals of a delivery's `laissez-approvals` header, none when it has none.
pub fn approvals_of(properties: &BasicProperties) -> Result<Vec<Cow<'_, [u8]>>, HeaderError> {
    let headers: Option<&FieldTable> = properties.headers().as_ref();
    match headers.and_then(|h| h.inner().get(HEADER_APPROVALS)) {
        None => Ok(Vec::new()),
        Some(value) => read_approvals(value),
    }
}

#[cfg(test)]
mod tests {
    use laissez_sign::encode_text;
    use laissez_verify::wire::MAX_APPROVAL_TEXT_LEN;
    use lapin::types::LongString;

    use super::*;

    fn array(entries: Vec<AMQPValue>) -> AMQPValue {
        AMQPValue::FieldArray(FieldArray::from(entries))
    }

    #[test]
    fn entries_read_as_bytes_or_text_in_order() {
        let a = vec![0xd2, 0x84, 1, 2];
        let b = vec![0xd2, 0x84, 3];
        let text = format!(" {}\n", encode_text(&b));
        let value = array(vec![
            AMQPValue::ByteArray(a.clone().into()),
            AMQPValue::LongString(LongString::from(text)),
            AMQPValue::LongString(a.clone().into()),
        ]);
        let read: Vec<Vec<u8>> = read_approvals(&value)
            .unwrap()
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        assert_eq!(read, vec![a.clone(), b, a]);
        assert_eq!(read_approvals(&array(Vec::new())).unwrap().len(), 0);
    }

    #[test]
    fn each_bad_header_is_named_never_a_panic() {
        let ok = || AMQPValue::ByteArray(vec![0xd2, 0].into());
        let cases = [
            (
                AMQPValue::ByteArray(vec![0xd2].into()),
                HeaderError::ApprovalsNotArray,
            ),
            (
                AMQPValue::LongString("abc".into()),
                HeaderError::ApprovalsNotArray,
            ),
            (
                AMQPValue::FieldTable(FieldTable::default()),
                HeaderError::ApprovalsNotArray,
            ),
            (
                array((0..=MAX_APPROVALS).map(|_| ok()).collect()),
                HeaderError::TooManyApprovals,
            ),
            (
                array(vec![ok(), AMQPValue::ByteArray(vec![0xd2; 1025].into())]),
                HeaderError::ApprovalTooLong,
            ),
            (
                array(vec![AMQPValue::LongString("A".repeat(1400).into())]),
                HeaderError::ApprovalTooLong,
            ),
            (
                array(vec![AMQPValue::LongString(
                    "A".repeat(MAX_APPROVAL_TEXT_LEN + 1).into(),
                )]),
                HeaderError::ApprovalTooLong,
            ),
            (
                array(vec![AMQPValue::LongString("not base64!".into())]),
                HeaderError::ApprovalNotText,
            ),
            (
                array(vec![AMQPValue::LongInt(3)]),
                HeaderError::ApprovalNotBytesOrText,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(read_approvals(&value).map(|_| ()), Err(want), "{value:?}");
        }
        // Exactly 16 entries, each exactly 1024 raw bytes, read.
        let full = array(
            (0..MAX_APPROVALS)
                .map(|_| AMQPValue::ByteArray(vec![0xd2; MAX_APPROVAL_LEN].into()))
                .collect(),
        );
        assert_eq!(read_approvals(&full).unwrap().len(), MAX_APPROVALS);
    }

    #[test]
    fn an_approval_is_appended_and_everything_else_kept() {
        let mut headers = FieldTable::default();
        headers.insert("other".into(), AMQPValue::LongString("x".into()));
        let text = encode_text(&[0xd2, 9]);
        headers.insert(
            HEADER_APPROVALS.into(),
            array(vec![AMQPValue::LongString(text.into())]),
        );
        let p = BasicProperties::default()
            .with_headers(headers)
            .with_message_id("m".into());
        let p2 = with_approval(&p, &[0xd2, 7]).unwrap();
        assert_eq!(p2.message_id(), p.message_id());
        let read: Vec<Vec<u8>> = approvals_of(&p2)
            .unwrap()
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        assert_eq!(read, vec![vec![0xd2, 9], vec![0xd2, 7]]);
        let other = p2.headers().as_ref().unwrap().inner().get("other").cloned();
        assert_eq!(other, Some(AMQPValue::LongString("x".into())));
        // A fresh message gets the header.
        let bare = BasicProperties::default();
        assert_eq!(
            approvals_of(&with_approval(&bare, &[0xd2]).unwrap())
                .unwrap()
                .len(),
            1
        );
        // Full, or unreadable: refused.
        let mut full = p.clone();
        for _ in 0..MAX_APPROVALS - 1 {
            full = with_approval(&full, &[0xd2, 1]).unwrap();
        }
        assert_eq!(with_approval(&full, &[0xd2]), Err(AddApprovalError::Full));
        let mut bad = FieldTable::default();
        bad.insert(HEADER_APPROVALS.into(), AMQPValue::LongInt(1));
        let bad = BasicProperties::default().with_headers(bad);
        assert_eq!(
            with_approval(&bad, &[0xd2]),
            Err(AddApprovalError::Unreadable(HeaderError::ApprovalsNotArray))
        );
    }
}
