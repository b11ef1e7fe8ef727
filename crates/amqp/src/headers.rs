//! The `docs/spec.md` §9 headers: reading them from a delivery and writing them on a message.
//!
//! Crate-private: the middleware reads, [`crate::ToolCall`] writes. The `fuzzing` feature
//! exposes the reader to the fuzz harness through `laissez_amqp::fuzzing`.
// With the `fuzzing` feature these items are re-exported; without it they are crate-private
// in effect, and `pub` only so that one definition serves both.
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use std::borrow::Cow;
use std::fmt;

use laissez_verify::text::{Received, TextError, read_object};
use laissez_verify::tools::is_tool_name;
use laissez_verify::wire::{
    MAX_ANCESTORS, MAX_APPROVAL_LEN, MAX_APPROVALS, MAX_CHAIN_LEN, MAX_ENVELOPE_LEN,
    MAX_INVOCATION_LEN,
};
use laissez_verify::{ActionClass, Presented, Reason, Request, ToolCatalogue};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString, ShortString};

// Children of this module, not siblings: they read their header values with `read_value`
// and say what is wrong as a `HeaderError` of this module, which calls them (no import circle).
pub(crate) mod approvals;
pub(crate) mod chain_header;

use approvals::{HEADER_APPROVALS, read_approvals};
use chain_header::{HEADER_CHAIN, read_chain};

/// Header carrying the envelope: raw bytes (byte array or long string) or base64url text.
pub const HEADER_ENVELOPE: &str = "laissez-envelope";
/// Header carrying the tool the message asks for.
pub const HEADER_TOOL: &str = "laissez-tool";
/// Optional header carrying what the publisher believes the tool's class is: `read`, `write`
/// or `destructive`. The class of a call is the worker's (its tool catalogue); when this header
/// is present and the catalogue lists the tool, the two must agree, else the message is
/// `malformed`.
pub const HEADER_CLASS: &str = "laissez-class";
/// Header carrying the holder's invocation (`docs/spec.md` §11) for a holder-bound envelope:
/// raw bytes (first byte 0xd2; a byte array, or a long string) or base64url text.
pub const HEADER_INVOCATION: &str = "laissez-invocation";

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
    /// The class header is present but not `read`, `write` or `destructive`.
    BadClass,
    /// The class header names another class than the worker's catalogue gives the tool.
    ClassDisagrees,
    /// The `laissez-approvals` header is not an array.
    ApprovalsNotArray,
    /// The `laissez-approvals` header has more than 16 entries.
    TooManyApprovals,
    /// An entry of `laissez-approvals` is over 1024 bytes (or its text is longer than any
    /// approval's).
    ApprovalTooLong,
    /// An entry of `laissez-approvals` is text that is not base64url.
    ApprovalNotText,
    /// An entry of `laissez-approvals` is neither bytes nor text (a number, a table...).
    ApprovalNotBytesOrText,
    /// The `laissez-chain` header is not an array.
    ChainNotArray,
    /// The `laissez-chain` header is an empty array (absent is how a publisher says "not
    /// delegated").
    ChainEmpty,
    /// The `laissez-chain` header has more than 3 entries (the leaf is the fourth).
    ChainTooLong,
    /// An entry of `laissez-chain` is over 4096 bytes (or its text is longer than any
    /// envelope's).
    ChainEntryTooLong,
    /// An entry of `laissez-chain` is text that is not base64url.
    ChainEntryNotText,
    /// An entry of `laissez-chain` is neither bytes nor text.
    ChainEntryNotBytesOrText,
}

impl HeaderError {
    /// The reason it is reported as: always [`Reason::Malformed`].
    pub const fn reason(&self) -> Reason {
        Reason::Malformed
    }

    /// Which part was wrong, as a stable snake_case word for logs.
    pub const fn detail(&self) -> &'static str {
        match self {
            HeaderError::MissingMessageId => "missing_message_id",
            HeaderError::MissingEnvelope => "missing_envelope",
            HeaderError::BadEnvelope => "bad_envelope_header",
            HeaderError::MissingTool => "missing_tool",
            HeaderError::BadTool => "bad_tool",
            HeaderError::BadClass => "bad_class",
            HeaderError::ClassDisagrees => "class_header_disagrees_with_catalogue",
            HeaderError::ApprovalsNotArray => "approvals_header_not_an_array",
            HeaderError::TooManyApprovals => "too_many_approvals",
            HeaderError::ApprovalTooLong => "approval_too_long",
            HeaderError::ApprovalNotText => "approval_not_base64url",
            HeaderError::ApprovalNotBytesOrText => "approval_not_bytes_or_text",
            HeaderError::ChainNotArray => "chain_header_not_an_array",
            HeaderError::ChainEmpty => "chain_header_empty",
            HeaderError::ChainTooLong => "chain_header_too_long",
            HeaderError::ChainEntryTooLong => "chain_entry_too_long",
            HeaderError::ChainEntryNotText => "chain_entry_not_base64url",
            HeaderError::ChainEntryNotBytesOrText => "chain_entry_not_bytes_or_text",
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The limits are named from the wire table, never written out again here.
        let what = match self {
            HeaderError::MissingMessageId => "the message has no message_id property",
            HeaderError::MissingEnvelope => "the message has no laissez-envelope header",
            HeaderError::BadEnvelope => {
                "the laissez-envelope header is neither envelope bytes nor base64url text"
            }
            HeaderError::MissingTool => "the message has no laissez-tool header",
            HeaderError::BadTool => "the laissez-tool header is not a tool name",
            HeaderError::BadClass => "the laissez-class header is not read, write or destructive",
            HeaderError::ClassDisagrees => {
                "the laissez-class header disagrees with the worker's tool catalogue"
            }
            HeaderError::ApprovalsNotArray => "the laissez-approvals header is not an array",
            HeaderError::TooManyApprovals => {
                return write!(
                    f,
                    "the laissez-approvals header has more than {MAX_APPROVALS} approvals"
                );
            }
            HeaderError::ApprovalTooLong => {
                return write!(
                    f,
                    "an entry of the laissez-approvals header is over {MAX_APPROVAL_LEN} bytes"
                );
            }
            HeaderError::ApprovalNotText => {
                "an entry of the laissez-approvals header is neither approval bytes nor base64url text"
            }
            HeaderError::ApprovalNotBytesOrText => {
                "an entry of the laissez-approvals header is neither bytes nor text"
            }
            HeaderError::ChainNotArray => "the laissez-chain header is not an array",
            HeaderError::ChainEmpty => "the laissez-chain header is an empty array",
            HeaderError::ChainTooLong => {
                return write!(
                    f,
                    "the laissez-chain header has more than {MAX_ANCESTORS} envelopes (a chain is \
                     at most {MAX_CHAIN_LEN} long)"
                );
            }
            HeaderError::ChainEntryTooLong => {
                return write!(
                    f,
                    "an entry of the laissez-chain header is over {MAX_ENVELOPE_LEN} bytes"
                );
            }
            HeaderError::ChainEntryNotText => {
                "an entry of the laissez-chain header is neither envelope bytes nor base64url text"
            }
            HeaderError::ChainEntryNotBytesOrText => {
                "an entry of the laissez-chain header is neither bytes nor text"
            }
        };
        f.write_str(what)
    }
}

impl std::error::Error for HeaderError {}

/// Why a `laissez-invocation` header could not be read. Not an error of the message by
/// itself: the call is checked with an invocation of no bytes in its place, so it is
/// `bad_invocation` exactly where an invocation would be checked (after every envelope check,
/// and never for a bearer envelope, whose invocation is ignored), and the audit event's
/// `detail` names what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvocationHeaderError {
    /// The header is not a byte array, a long string or a short string (a number, a table,
    /// an array...).
    WrongType,
    /// Text longer than [`MAX_INVOCATION_TEXT_LEN`](laissez_verify::wire::MAX_INVOCATION_TEXT_LEN),
    /// or that decodes to more than an invocation's 1024 bytes.
    TooLong,
    /// Text that is not base64url (or nothing but whitespace).
    NotText,
}

impl InvocationHeaderError {
    /// What the gate is told (`docs/spec.md` §11): the header is checked as an invocation of
    /// no bytes, so it is `bad_invocation` exactly where an invocation would be, with this
    /// as the detail.
    pub const fn unreadable(&self) -> laissez_verify::invocation::Unreadable {
        match self {
            InvocationHeaderError::WrongType => {
                laissez_verify::invocation::Unreadable::NotBytesOrText
            }
            InvocationHeaderError::TooLong => laissez_verify::invocation::Unreadable::TooLong,
            InvocationHeaderError::NotText => laissez_verify::invocation::Unreadable::NotBase64url,
        }
    }
}

impl fmt::Display for InvocationHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvocationHeaderError::WrongType => {
                "the laissez-invocation header is neither bytes nor text"
            }
            InvocationHeaderError::TooLong => {
                "the laissez-invocation header is longer than any invocation's text"
            }
            InvocationHeaderError::NotText => {
                "the laissez-invocation header is neither invocation bytes nor base64url text"
            }
        })
    }
}

impl std::error::Error for InvocationHeaderError {}

/// The laissez parts of a delivery, read but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallHeaders<'a> {
    /// The envelope bytes (decoded from text when it came as text).
    pub envelope: Cow<'a, [u8]>,
    /// The tool asked for: a tool name, never a pattern.
    pub tool: &'a str,
    /// The class header, when present: what the publisher claims, never what decides.
    pub class_header: Option<ActionClass>,
    /// The message id: the unit of use counting.
    pub message_id: &'a str,
    /// The `laissez-invocation` header: `None` when absent; its bytes (decoded from text when
    /// it came as text), or why they could not be read.
    pub invocation: Option<Result<Cow<'a, [u8]>, InvocationHeaderError>>,
    /// The `laissez-approvals` header's approvals in the order received (decoded from text
    /// when they came as text); none when the header is absent.
    pub approvals: Vec<Cow<'a, [u8]>>,
    /// The `laissez-chain` header's envelopes, the leaf's ancestors, root first (decoded
    /// from text when they came as text); none when the header is absent (not delegated).
    pub chain: Vec<Cow<'a, [u8]>>,
}

impl ToolCallHeaders<'_> {
    /// The whole chain, root first, the leaf (`laissez-envelope`) last: one envelope when not
    /// delegated.
    pub fn links(&self) -> Vec<&[u8]> {
        self.chain
            .iter()
            .map(|a| &a[..])
            .chain(std::iter::once(&self.envelope[..]))
            .collect()
    }
}

impl ToolCallHeaders<'_> {
    /// The call's class: the catalogue's (`None` when it does not list the tool, which the
    /// verifier denies `unknown_tool`). A class header that the catalogue contradicts is
    /// [`HeaderError::ClassDisagrees`]; one for an unlisted tool is not compared.
    pub fn class_in(
        &self,
        catalogue: &(impl ToolCatalogue + ?Sized),
    ) -> Result<Option<ActionClass>, HeaderError> {
        let class = catalogue.class_of(self.tool);
        match (class, self.class_header) {
            (Some(worker), Some(claimed)) if worker != claimed => Err(HeaderError::ClassDisagrees),
            _ => Ok(class),
        }
    }

    /// The call as the gate takes it (`docs/spec.md` §15): the chain, the request (the class is the catalogue's), the
    /// message id and body, the invocation (or why its header could not be read) and the
    /// approvals.
    pub(crate) fn presented<'a>(
        &'a self,
        links: &'a [&'a [u8]],
        approvals: &'a [&'a [u8]],
        body: &'a [u8],
        tools: &(impl ToolCatalogue + ?Sized),
    ) -> Result<Presented<'a>, HeaderError> {
        // The class header may not contradict the catalogue.
        self.class_in(tools)?;
        // The tool passed the grammar when it was read.
        let request =
            Request::from_catalogue(self.tool, tools).map_err(|_| HeaderError::BadTool)?;
        let mut presented = Presented::new(links)
            .request(request)
            .call(self.message_id, body);
        if let Some(invocation) = &self.invocation {
            presented = presented.invocation(match invocation {
                Ok(bytes) => Ok(&bytes[..]),
                Err(error) => Err(error.unreadable()),
            });
        }
        Ok(presented.approvals(approvals))
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

/// Reads the §9 headers and the message id from a delivery's properties, in the order message
/// id, envelope, tool, class, approvals, chain. The class header is optional. The invocation header
/// is optional too, and an unreadable one is not an error here (see
/// [`InvocationHeaderError`]). The approvals header is optional; an unreadable one is
/// (`malformed`).
pub fn read_headers(properties: &BasicProperties) -> Result<ToolCallHeaders<'_>, HeaderError> {
    let message_id = message_id(properties).ok_or(HeaderError::MissingMessageId)?;
    let headers = properties.headers().as_ref();
    let field = |name: &str| headers.and_then(|h| h.inner().get(name));
    let envelope = field(HEADER_ENVELOPE).ok_or(HeaderError::MissingEnvelope)?;
    // An oversized raw envelope is the envelope decoder's to refuse (`malformed`).
    let envelope = read_value(envelope, MAX_ENVELOPE_LEN).map_err(|_| HeaderError::BadEnvelope)?;
    let tool = field(HEADER_TOOL).ok_or(HeaderError::MissingTool)?;
    let tool = value_text(tool)
        .filter(|t| is_tool_name(t))
        .ok_or(HeaderError::BadTool)?;
    let class_header = match field(HEADER_CLASS) {
        None => None,
        Some(class) => Some(
            value_text(class)
                .and_then(|c| c.parse::<ActionClass>().ok())
                .ok_or(HeaderError::BadClass)?,
        ),
    };
    let invocation = field(HEADER_INVOCATION).map(read_invocation);
    let approvals = match field(HEADER_APPROVALS) {
        None => Vec::new(),
        Some(value) => read_approvals(value)?,
    };
    let chain = match field(HEADER_CHAIN) {
        None => Vec::new(),
        Some(value) => read_chain(value)?,
    };
    Ok(ToolCallHeaders {
        envelope,
        tool,
        class_header,
        message_id,
        invocation,
        approvals,
        chain,
    })
}

/// The invocation in a `laissez-invocation` header: raw bytes (first byte 0xd2) as they are
/// (over 1024 bytes, the invocation decoder refuses them: `bad_invocation`), else base64url
/// text, bounded before it is decoded.
fn read_invocation(value: &AMQPValue) -> Result<Cow<'_, [u8]>, InvocationHeaderError> {
    read_value(value, MAX_INVOCATION_LEN).map_err(|e| match e {
        ValueError::NotBytesOrText => InvocationHeaderError::WrongType,
        ValueError::Text(TextError::TooLong(_)) => InvocationHeaderError::TooLong,
        ValueError::Text(_) => InvocationHeaderError::NotText,
    })
}

/// Why a header value is not a signed object; each header says it as its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// Neither a byte array nor a string (a number, a table, an array...).
    NotBytesOrText,
    /// Text the one reader refused.
    Text(TextError),
}

/// A signed object (envelope, invocation, approval) in a header value, read by the one reader
/// of `laissez_verify::text` (`docs/spec.md` §4): a byte array or a string holding raw bytes
/// (first byte 0xd2) is borrowed as it is, never size-checked here; anything else is base64url
/// text (whitespace anywhere ignored, so a line-wrapped copy reads as the command line reads
/// it), refused when longer than four times `max` and decoded to at most `max` bytes.
pub(crate) fn read_value(value: &AMQPValue, max: usize) -> Result<Cow<'_, [u8]>, ValueError> {
    let raw = value_bytes(value).ok_or(ValueError::NotBytesOrText)?;
    let mut buf = [0u8; MAX_ENVELOPE_LEN];
    let len = max.min(MAX_ENVELOPE_LEN);
    match read_object(raw, &mut buf[..len]) {
        Ok(Received::Raw(bytes)) => Ok(Cow::Borrowed(bytes)),
        Ok(Received::Decoded(bytes)) => Ok(Cow::Owned(bytes.to_vec())),
        Err(e) => Err(ValueError::Text(e)),
    }
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

/// How the envelope header (and the invocation header, when there is one) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EnvelopeEncoding {
    /// Raw bytes as an AMQP byte array (the default: smallest).
    #[default]
    Bytes,
    /// base64url text as a long string, for brokers or tools that mangle binary headers.
    Text,
}

/// `bytes` as a header value: a byte array, or base64url text in a long string.
pub(crate) fn encoded(bytes: &[u8], encoding: EnvelopeEncoding) -> AMQPValue {
    match encoding {
        EnvelopeEncoding::Bytes => AMQPValue::ByteArray(ByteArray::from(bytes)),
        EnvelopeEncoding::Text => {
            AMQPValue::LongString(LongString::from(laissez_sign::encode_text(bytes)))
        }
    }
}

/// Properties for a tool-call message: the laissez headers (the class header only when
/// `class` is given, the invocation header only when `invocation` is), `message_id`, and
/// persistent delivery (mode 2). The invocation is written as `encoding` says, like the
/// envelope.
pub fn tool_call_properties(
    envelope: &[u8],
    tool: &str,
    class: Option<ActionClass>,
    message_id: &str,
    invocation: Option<&[u8]>,
    encoding: EnvelopeEncoding,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(HEADER_ENVELOPE.into(), encoded(envelope, encoding));
    headers.insert(HEADER_TOOL.into(), AMQPValue::LongString(tool.into()));
    if let Some(class) = class {
        headers.insert(
            HEADER_CLASS.into(),
            AMQPValue::LongString(class.name().into()),
        );
    }
    if let Some(invocation) = invocation {
        headers.insert(HEADER_INVOCATION.into(), encoded(invocation, encoding));
    }
    BasicProperties::default()
        .with_headers(headers)
        .with_message_id(ShortString::from(message_id))
        .with_delivery_mode(2)
}

#[cfg(test)]
mod tests;
