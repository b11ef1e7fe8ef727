//! The CONTRACT §5 headers: reading them from a delivery and writing them on a message.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use laissez_verify::{ActionClass, ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN, Request};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString, ShortString};

/// Header carrying the envelope: raw bytes (byte array or long string) or base64url text.
pub const HEADER_ENVELOPE: &str = "laissez-envelope";
/// Header carrying the tool the message asks for.
pub const HEADER_TOOL: &str = "laissez-tool";
/// Header carrying the action class: `read`, `write` or `destructive`.
pub const HEADER_CLASS: &str = "laissez-class";

/// base64url, padding optional (CONTRACT §1: readers ignore surrounding whitespace).
const TEXT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a delivery's laissez headers could not be read. Every variant is the contract's
/// `malformed` reason; the variant says which part was wrong, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// No `message_id` property, or an empty one.
    MissingMessageId,
    /// No `laissez-envelope` header.
    MissingEnvelope,
    /// The envelope header is neither raw envelope bytes nor base64url text of them, or it is
    /// too long.
    BadEnvelope,
    /// No `laissez-tool` header.
    MissingTool,
    /// The tool is not text or is out of the tool grammar.
    BadTool,
    /// No `laissez-class` header.
    MissingClass,
    /// The class is not `read`, `write` or `destructive`.
    BadClass,
}

impl HeaderError {
    /// The contract's reason code: always `malformed`.
    pub const fn code(&self) -> &'static str {
        "malformed"
    }

    /// Which part was wrong, as a stable snake_case word for logs.
    pub const fn detail(&self) -> &'static str {
        match self {
            HeaderError::MissingMessageId => "missing_message_id",
            HeaderError::MissingEnvelope => "missing_envelope",
            HeaderError::BadEnvelope => "bad_envelope_header",
            HeaderError::MissingTool => "missing_tool",
            HeaderError::BadTool => "bad_tool",
            HeaderError::MissingClass => "missing_class",
            HeaderError::BadClass => "bad_class",
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            HeaderError::MissingMessageId => "the message has no message_id property",
            HeaderError::MissingEnvelope => "the message has no laissez-envelope header",
            HeaderError::BadEnvelope => {
                "the laissez-envelope header is neither envelope bytes nor base64url text"
            }
            HeaderError::MissingTool => "the message has no laissez-tool header",
            HeaderError::BadTool => "the laissez-tool header is not a tool name",
            HeaderError::MissingClass => "the message has no laissez-class header",
            HeaderError::BadClass => "the laissez-class header is not read, write or destructive",
        };
        f.write_str(what)
    }
}

impl std::error::Error for HeaderError {}

/// The laissez parts of a delivery, read but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallHeaders<'a> {
    /// The envelope bytes (decoded from text when it came as text).
    pub envelope: Cow<'a, [u8]>,
    /// The tool asked for.
    pub tool: &'a str,
    /// The class asked for.
    pub class: ActionClass,
    /// The message id: the unit of use counting.
    pub message_id: &'a str,
}

impl ToolCallHeaders<'_> {
    /// The verifier's request for this call. The tool was checked when the headers were read.
    pub fn request(&self) -> Result<Request<'_>, HeaderError> {
        Request::new(self.tool, self.class).map_err(|_| HeaderError::BadTool)
    }
}

/// The message id of a delivery, if it has a non-empty one.
pub(crate) fn message_id(properties: &BasicProperties) -> Option<&str> {
    properties
        .message_id()
        .as_ref()
        .map(ShortString::as_str)
        .filter(|id| !id.is_empty())
}

/// Reads the CONTRACT §5 headers and the message id from a delivery's properties.
pub fn read_headers(properties: &BasicProperties) -> Result<ToolCallHeaders<'_>, HeaderError> {
    let message_id = message_id(properties).ok_or(HeaderError::MissingMessageId)?;
    let headers = properties.headers().as_ref();
    let field = |name: &str| headers.and_then(|h| h.inner().get(name));
    let envelope = field(HEADER_ENVELOPE).ok_or(HeaderError::MissingEnvelope)?;
    let envelope = value_bytes(envelope).ok_or(HeaderError::BadEnvelope)?;
    let envelope = decode_envelope(envelope).ok_or(HeaderError::BadEnvelope)?;
    let tool = field(HEADER_TOOL).ok_or(HeaderError::MissingTool)?;
    let tool = value_text(tool).ok_or(HeaderError::BadTool)?;
    let class = field(HEADER_CLASS).ok_or(HeaderError::MissingClass)?;
    let class = value_text(class)
        .and_then(|c| c.parse::<ActionClass>().ok())
        .ok_or(HeaderError::BadClass)?;
    Request::new(tool, class).map_err(|_| HeaderError::BadTool)?;
    Ok(ToolCallHeaders {
        envelope,
        tool,
        class,
        message_id,
    })
}

fn value_bytes(value: &AMQPValue) -> Option<&[u8]> {
    match value {
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

fn value_text(value: &AMQPValue) -> Option<&str> {
    value_bytes(value).and_then(|b| std::str::from_utf8(b).ok())
}

/// Raw bytes (first byte 0xd2) as they are; anything else as base64url text, surrounding
/// whitespace ignored.
fn decode_envelope(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if raw.first() == Some(&ENVELOPE_FIRST_BYTE) {
        return Some(Cow::Borrowed(raw));
    }
    // Text of a 4096-byte envelope is at most 5462 characters; allow some whitespace.
    if raw.len() > 2 * MAX_ENVELOPE_LEN {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    TEXT.decode(text).ok().map(Cow::Owned)
}

/// How [`tool_call_properties`] writes the envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EnvelopeEncoding {
    /// Raw bytes as an AMQP byte array (the default: smallest).
    #[default]
    Bytes,
    /// base64url text as a long string, for brokers or tools that mangle binary headers.
    Text,
}

/// Properties for a tool-call message: the three laissez headers, `message_id`, and
/// persistent delivery (mode 2). Add to them with lapin's `with_*` methods.
pub fn tool_call_properties(
    envelope: &[u8],
    tool: &str,
    class: ActionClass,
    message_id: &str,
    encoding: EnvelopeEncoding,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    let envelope = match encoding {
        EnvelopeEncoding::Bytes => AMQPValue::ByteArray(ByteArray::from(envelope)),
        EnvelopeEncoding::Text => AMQPValue::LongString(LongString::from(
            general_purpose::URL_SAFE_NO_PAD.encode(envelope),
        )),
    };
    headers.insert(HEADER_ENVELOPE.into(), envelope);
    headers.insert(HEADER_TOOL.into(), AMQPValue::LongString(tool.into()));
    headers.insert(
        HEADER_CLASS.into(),
        AMQPValue::LongString(class.name().into()),
    );
    BasicProperties::default()
        .with_headers(headers)
        .with_message_id(ShortString::from(message_id))
        .with_delivery_mode(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(envelope: AMQPValue, tool: &str, class: &str, id: Option<&str>) -> BasicProperties {
        let mut h = FieldTable::default();
        h.insert(HEADER_ENVELOPE.into(), envelope);
        h.insert(HEADER_TOOL.into(), AMQPValue::LongString(tool.into()));
        h.insert(HEADER_CLASS.into(), AMQPValue::LongString(class.into()));
        let p = BasicProperties::default().with_headers(h);
        match id {
            Some(id) => p.with_message_id(id.into()),
            None => p,
        }
    }

    #[test]
    fn raw_text_and_bytes_forms_read_alike() {
        let raw = vec![0xd2, 0x84, 0x43, 0xa1];
        let text = general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        for value in [
            AMQPValue::ByteArray(raw.clone().into()),
            AMQPValue::LongString(raw.clone().into()),
            AMQPValue::LongString(format!(" {text}\n").into()),
        ] {
            let p = props(value, "crm.read", "read", Some("m1"));
            let h = read_headers(&p).unwrap();
            assert_eq!(&*h.envelope, &raw[..]);
            assert_eq!(h.tool, "crm.read");
            assert_eq!(h.class, ActionClass::Read);
            assert_eq!(h.message_id, "m1");
        }
    }

    #[test]
    fn written_properties_read_back() {
        let raw = [0xd2, 1, 2, 3];
        for enc in [EnvelopeEncoding::Bytes, EnvelopeEncoding::Text] {
            let p = tool_call_properties(&raw, "a.b", ActionClass::Destructive, "id-9", enc);
            let h = read_headers(&p).unwrap();
            assert_eq!(&*h.envelope, &raw[..]);
            assert_eq!(h.class, ActionClass::Destructive);
            assert_eq!(p.delivery_mode(), &Some(2));
        }
    }

    #[test]
    fn each_missing_or_garbled_part_is_named() {
        let ok = AMQPValue::ByteArray(vec![0xd2, 0].into());
        let cases = [
            (
                props(ok.clone(), "t", "read", None),
                HeaderError::MissingMessageId,
            ),
            (
                props(ok.clone(), "t", "read", Some("")),
                HeaderError::MissingMessageId,
            ),
            (
                props(ok.clone(), "Bad Tool", "read", Some("m")),
                HeaderError::BadTool,
            ),
            (
                props(ok.clone(), "t", "delete", Some("m")),
                HeaderError::BadClass,
            ),
            (
                props(
                    AMQPValue::LongString("not base64!".into()),
                    "t",
                    "read",
                    Some("m"),
                ),
                HeaderError::BadEnvelope,
            ),
            (
                props(AMQPValue::LongInt(3), "t", "read", Some("m")),
                HeaderError::BadEnvelope,
            ),
        ];
        for (p, want) in cases {
            assert_eq!(read_headers(&p), Err(want));
            assert_eq!(want.code(), "malformed");
        }
        let bare = BasicProperties::default().with_message_id("m".into());
        assert_eq!(read_headers(&bare), Err(HeaderError::MissingEnvelope));
    }
}
