//! `headers`: arbitrary AMQP header tables through the consumer middleware's extraction,
//! `laissez_amqp::fuzzing::read_headers` (crate-private, exposed by the `fuzzing` feature).
//!
//! Proves, for every table: reading never panics; a missing or empty `message_id` is always
//! `missing_message_id` (the first check), a missing `laissez-envelope` header always
//! `missing_envelope`; what is read is what was sent (the message id, the tool text, raw
//! envelope bytes unchanged, the class header when one was sent) and passes the grammar the
//! verifier's request needs (`Request::from_catalogue` succeeds); the class of the call is
//! the worker's catalogue's, and a class header that contradicts it is refused; every failure
//! is the contract's `malformed`. The `laissez-approvals` header: absent, no approvals;
//! read, an array of at most 16 entries of at most 1024 bytes each, raw entries unchanged;
//! an approvals error only when the header was sent. The `laissez-chain` header likewise:
//! absent, no ancestors; read, a non-empty array of at most 3 entries of at most 4096 bytes
//! each, raw entries unchanged, the leaf last in `links()`; a chain error only when the
//! header was sent.
//!
//! The input is a structure derived with `arbitrary`: header names are mostly the three
//! laissez names, values every AMQP field type, nested tables and arrays, plus
//! structure-aware values (raw envelope bytes, envelope text with padding and whitespace,
//! known tool and class names) so the fuzzer gets past the first checks quickly.

use std::hint::black_box;

use arbitrary::Arbitrary;
use laissez_amqp::fuzzing::{HeaderError, ToolCallHeaders, read_headers};
use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use laissez_amqp::{HEADER_APPROVALS, HEADER_CHAIN, HEADER_CLASS, HEADER_ENVELOPE, HEADER_TOOL};
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::tools::is_tool_name;
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::wire::{MAX_APPROVAL_LEN, MAX_APPROVALS, MAX_CHAIN_LEN};
use laissez_verify::{ActionClass, Reason, Request, ToolCatalogue};

use crate::display_len;

/// Longest AMQP short string, in bytes.
const SHORT_STRING_MAX: usize = 255;

/// The worker's catalogue the reads are checked against: two of the [`Known`] tools.
const CATALOGUE: [(&str, ActionClass); 2] = [
    ("crm.read", ActionClass::Read),
    ("crm.ticket.close", ActionClass::Destructive),
];

/// One delivery's properties, as far as the middleware reads them.
#[derive(Debug, Clone, Arbitrary)]
pub struct HeaderInput {
    /// The `message_id` property.
    pub message_id: Option<String>,
    /// The header table; `None` for a message without one.
    pub headers: Option<Vec<(Name, Value)>>,
}

/// A header name: mostly the ones the middleware looks for.
#[derive(Debug, Clone, Arbitrary)]
pub enum Name {
    /// `laissez-envelope`.
    Envelope,
    /// `laissez-tool`.
    Tool,
    /// `laissez-class`.
    Class,
    /// `laissez-approvals`.
    Approvals,
    /// `laissez-chain`.
    Chain,
    /// Anything else (truncated to 255 bytes).
    Other(String),
}

/// Surrounding whitespace, including what `str::trim` treats as whitespace beyond ASCII.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Space {
    /// ' '
    Space,
    /// '\t'
    Tab,
    /// '\r'
    Cr,
    /// '\n'
    Lf,
    /// U+00A0 no-break space.
    NoBreak,
    /// U+2003 em space.
    Em,
}

/// Texts the middleware accepts somewhere.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Known {
    /// A tool name.
    CrmRead,
    /// A deeper tool name.
    CrmTicketClose,
    /// A pattern (not a tool name).
    CrmStar,
    /// The wildcard pattern.
    Star,
    /// A class.
    Read,
    /// A class.
    Write,
    /// A class.
    Destructive,
}

/// A header value.
#[derive(Debug, Clone, Arbitrary)]
pub enum Value {
    /// Long string of arbitrary bytes.
    LongString(Vec<u8>),
    /// Short string (truncated to 255 bytes).
    ShortString(String),
    /// Byte array.
    ByteArray(Vec<u8>),
    /// Boolean.
    Boolean(bool),
    /// i8.
    ShortShortInt(i8),
    /// u8.
    ShortShortUInt(u8),
    /// i16.
    ShortInt(i16),
    /// i32.
    LongInt(i32),
    /// i64.
    LongLongInt(i64),
    /// f32.
    Float(f32),
    /// f64.
    Double(f64),
    /// Decimal.
    Decimal(u8, u32),
    /// Timestamp.
    Timestamp(u64),
    /// No value.
    Void,
    /// Raw envelope bytes: 0xd2 then these, as a byte array (`false`) or long string.
    RawEnvelope(Vec<u8>, bool),
    /// Envelope text: base64url of 0xd2 then these bytes, with or without padding, with
    /// whitespace around it.
    TextEnvelope {
        /// What follows 0xd2.
        bytes: Vec<u8>,
        /// `=` padding to a multiple of 4.
        padded: bool,
        /// Whitespace before.
        before: Vec<Space>,
        /// Whitespace after.
        after: Vec<Space>,
    },
    /// A known text, as a long string (`false`) or short string.
    Known(Known, bool),
    /// A nested table.
    Table(Vec<(String, Value)>),
    /// An array.
    Array(Vec<Value>),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Envelope => HEADER_ENVELOPE,
            Name::Tool => HEADER_TOOL,
            Name::Class => HEADER_CLASS,
            Name::Approvals => HEADER_APPROVALS,
            Name::Chain => HEADER_CHAIN,
            Name::Other(s) => s,
        }
    }
}

impl Space {
    const fn as_char(self) -> char {
        match self {
            Space::Space => ' ',
            Space::Tab => '\t',
            Space::Cr => '\r',
            Space::Lf => '\n',
            Space::NoBreak => '\u{a0}',
            Space::Em => '\u{2003}',
        }
    }
}

impl Known {
    const fn as_str(self) -> &'static str {
        match self {
            Known::CrmRead => "crm.read",
            Known::CrmTicketClose => "crm.ticket.close",
            Known::CrmStar => "crm.*",
            Known::Star => "*",
            Known::Read => "read",
            Known::Write => "write",
            Known::Destructive => "destructive",
        }
    }
}

/// `s` cut to at most 255 bytes on a character boundary: what a broker can deliver.
fn short(s: &str) -> ShortString {
    let mut end = s.len().min(SHORT_STRING_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // Cannot fail: the text is at most 255 bytes now.
    ShortString::try_new(&s[..end]).unwrap_or_default()
}

impl Value {
    /// The AMQP value this describes.
    pub fn to_amqp(&self) -> AMQPValue {
        match self {
            Value::LongString(b) => AMQPValue::LongString(LongString::from(b.clone())),
            Value::ShortString(s) => AMQPValue::ShortString(short(s)),
            Value::ByteArray(b) => AMQPValue::ByteArray(ByteArray::from(b.clone())),
            Value::Boolean(b) => AMQPValue::Boolean(*b),
            Value::ShortShortInt(n) => AMQPValue::ShortShortInt(*n),
            Value::ShortShortUInt(n) => AMQPValue::ShortShortUInt(*n),
            Value::ShortInt(n) => AMQPValue::ShortInt(*n),
            Value::LongInt(n) => AMQPValue::LongInt(*n),
            Value::LongLongInt(n) => AMQPValue::LongLongInt(*n),
            Value::Float(x) => AMQPValue::Float(*x),
            Value::Double(x) => AMQPValue::Double(*x),
            Value::Decimal(scale, value) => AMQPValue::DecimalValue(DecimalValue {
                scale: *scale,
                value: *value,
            }),
            Value::Timestamp(t) => AMQPValue::Timestamp(*t),
            Value::Void => AMQPValue::Void,
            Value::RawEnvelope(rest, as_long_string) => {
                let mut raw = Vec::with_capacity(rest.len() + 1);
                raw.push(ENVELOPE_FIRST_BYTE);
                raw.extend_from_slice(rest);
                if *as_long_string {
                    AMQPValue::LongString(LongString::from(raw))
                } else {
                    AMQPValue::ByteArray(ByteArray::from(raw))
                }
            }
            Value::TextEnvelope {
                bytes,
                padded,
                before,
                after,
            } => {
                let mut raw = Vec::with_capacity(bytes.len() + 1);
                raw.push(ENVELOPE_FIRST_BYTE);
                raw.extend_from_slice(bytes);
                let mut text: String = before.iter().map(|s| s.as_char()).collect();
                let body = laissez_sign::encode_text(&raw);
                let padding = if *padded { (4 - body.len() % 4) % 4 } else { 0 };
                text.push_str(&body);
                text.extend(std::iter::repeat_n('=', padding));
                text.extend(after.iter().map(|s| s.as_char()));
                AMQPValue::LongString(LongString::from(text))
            }
            Value::Known(known, as_short) => {
                if *as_short {
                    AMQPValue::ShortString(short(known.as_str()))
                } else {
                    AMQPValue::LongString(LongString::from(known.as_str()))
                }
            }
            Value::Table(pairs) => AMQPValue::FieldTable(table(
                pairs.iter().map(|(name, value)| (name.as_str(), value)),
            )),
            Value::Array(values) => AMQPValue::FieldArray(FieldArray::from(
                values.iter().map(Value::to_amqp).collect::<Vec<_>>(),
            )),
        }
    }
}

fn table<'v>(pairs: impl Iterator<Item = (&'v str, &'v Value)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert(short(name), value.to_amqp());
    }
    table
}

impl HeaderInput {
    /// The delivery properties this describes.
    pub fn properties(&self) -> BasicProperties {
        let mut properties = BasicProperties::default();
        if let Some(headers) = &self.headers {
            let pairs = headers.iter().map(|(name, value)| (name.as_str(), value));
            properties = properties.with_headers(table(pairs));
        }
        if let Some(id) = &self.message_id {
            properties = properties.with_message_id(short(id));
        }
        properties
    }
}

/// The bytes of a header value the middleware may read as bytes or text.
fn value_bytes(value: &AMQPValue) -> Option<&[u8]> {
    match value {
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

/// Checks one input. Panics on a finding.
pub fn run(input: &HeaderInput) {
    let properties = input.properties();
    let header = |name: &str| {
        properties
            .headers()
            .as_ref()
            .and_then(|table| table.inner().get(name))
    };
    let message_id = properties.message_id().as_ref().map(ShortString::as_str);
    let id_missing = message_id.is_none_or(str::is_empty);

    match read_headers(&properties) {
        Ok(read) => {
            assert!(!id_missing, "read without a message_id");
            assert_eq!(Some(read.message_id), message_id, "message_id changed");
            check_read(
                &read,
                header(HEADER_ENVELOPE),
                header(HEADER_TOOL),
                header(HEADER_CLASS),
            );
            check_approvals(&read, header(HEADER_APPROVALS));
            check_chain(&read, header(HEADER_CHAIN));
        }
        Err(error) => {
            assert_eq!(
                error == HeaderError::MissingMessageId,
                id_missing,
                "missing_message_id must be reported exactly when it is missing (got {error:?})"
            );
            if !id_missing && header(HEADER_ENVELOPE).is_none() {
                assert_eq!(error, HeaderError::MissingEnvelope);
            }
            assert_eq!(error.reason(), Reason::Malformed);
            assert_ne!(
                error,
                HeaderError::ClassDisagrees,
                "reading alone never consults a catalogue"
            );
            assert!(!error.detail().is_empty());
            assert!(display_len(&error) > 0);
            let approvals_error = matches!(
                error,
                HeaderError::ApprovalsNotArray
                    | HeaderError::TooManyApprovals
                    | HeaderError::ApprovalTooLong
                    | HeaderError::ApprovalNotText
                    | HeaderError::ApprovalNotBytesOrText
            );
            if approvals_error {
                let Some(AMQPValue::FieldArray(entries)) = header(HEADER_APPROVALS) else {
                    assert!(
                        error == HeaderError::ApprovalsNotArray
                            && header(HEADER_APPROVALS).is_some(),
                        "{error:?} without an approvals array"
                    );
                    return;
                };
                assert_ne!(error, HeaderError::ApprovalsNotArray);
                if error == HeaderError::TooManyApprovals {
                    assert!(entries.as_slice().len() > MAX_APPROVALS);
                }
            }
            let chain_error = matches!(
                error,
                HeaderError::ChainNotArray
                    | HeaderError::ChainEmpty
                    | HeaderError::ChainTooLong
                    | HeaderError::ChainEntryTooLong
                    | HeaderError::ChainEntryNotText
                    | HeaderError::ChainEntryNotBytesOrText
            );
            if chain_error {
                let Some(AMQPValue::FieldArray(entries)) = header(HEADER_CHAIN) else {
                    assert!(
                        error == HeaderError::ChainNotArray && header(HEADER_CHAIN).is_some(),
                        "{error:?} without a chain array"
                    );
                    return;
                };
                assert_ne!(error, HeaderError::ChainNotArray);
                match error {
                    HeaderError::ChainEmpty => assert!(entries.as_slice().is_empty()),
                    HeaderError::ChainTooLong => {
                        assert!(entries.as_slice().len() >= MAX_CHAIN_LEN);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The approvals read are bounded, in the order sent, raw entries unchanged.
fn check_approvals(read: &ToolCallHeaders<'_>, sent: Option<&AMQPValue>) {
    let Some(sent) = sent else {
        assert!(read.approvals.is_empty(), "approvals read from no header");
        return;
    };
    let AMQPValue::FieldArray(entries) = sent else {
        panic!("approvals read from a header that is not an array");
    };
    let entries = entries.as_slice();
    assert!(entries.len() <= MAX_APPROVALS);
    assert_eq!(
        read.approvals.len(),
        entries.len(),
        "an approval lost or added"
    );
    for (approval, entry) in read.approvals.iter().zip(entries) {
        assert!(
            approval.len() <= MAX_APPROVAL_LEN,
            "an approval over 1024 bytes read"
        );
        let raw = value_bytes(entry).expect("an approval read from a value that is not bytes");
        if raw.first() == Some(&ENVELOPE_FIRST_BYTE) {
            assert_eq!(&**approval, raw, "raw approval bytes changed");
        }
        // What the verifier does next: decoding must not panic either.
        let _ = black_box(
            laissez_verify::approval::UntrustedApproval::decode(approval).map(|a| a.kid()),
        );
    }
}

/// The ancestors read are bounded, in the order sent, raw entries unchanged; the leaf (the
/// envelope header) comes last in the chain's links.
fn check_chain(read: &ToolCallHeaders<'_>, sent: Option<&AMQPValue>) {
    let links = read.links();
    assert_eq!(links.len(), read.chain.len() + 1);
    assert_eq!(
        links.last().copied(),
        Some(&read.envelope[..]),
        "the leaf is not last"
    );
    let Some(sent) = sent else {
        assert!(read.chain.is_empty(), "ancestors read from no header");
        return;
    };
    let AMQPValue::FieldArray(entries) = sent else {
        panic!("ancestors read from a header that is not an array");
    };
    let entries = entries.as_slice();
    assert!(!entries.is_empty() && entries.len() < MAX_CHAIN_LEN);
    assert_eq!(read.chain.len(), entries.len(), "an ancestor lost or added");
    for (ancestor, entry) in read.chain.iter().zip(entries) {
        assert!(
            ancestor.len() <= laissez_verify::wire::MAX_ENVELOPE_LEN,
            "an ancestor over 4096 bytes read"
        );
        let raw = value_bytes(entry).expect("an ancestor read from a value that is not bytes");
        if raw.first() == Some(&ENVELOPE_FIRST_BYTE) {
            assert_eq!(&**ancestor, raw, "raw ancestor bytes changed");
        }
        if let Ok(untrusted) = UntrustedEnvelope::decode(ancestor) {
            let _ = black_box(untrusted.claims_unverified().map(|c| c.parent().copied()));
        }
    }
}

fn check_read(
    read: &ToolCallHeaders<'_>,
    envelope: Option<&AMQPValue>,
    tool: Option<&AMQPValue>,
    class: Option<&AMQPValue>,
) {
    assert!(!read.message_id.is_empty());
    assert!(
        is_tool_name(read.tool),
        "tool out of grammar read: {:?}",
        read.tool
    );
    let tool_sent = tool.and_then(value_bytes);
    assert_eq!(
        tool_sent,
        Some(read.tool.as_bytes()),
        "the tool read is not the one sent"
    );
    // The class header is read exactly when one was sent, and is what was sent.
    let class_sent = class.and_then(value_bytes);
    assert_eq!(
        read.class_header.map(|c| c.name().as_bytes()),
        class_sent,
        "the class header read is not the one sent"
    );
    // The call's class is the catalogue's; a contradicting header is refused.
    let worker = CATALOGUE.class_of(read.tool);
    match read.class_in(&CATALOGUE) {
        Ok(class) => {
            assert_eq!(class, worker);
            assert!(worker.is_none() || read.class_header.is_none_or(|c| Some(c) == worker));
        }
        Err(error) => {
            assert_eq!(error, HeaderError::ClassDisagrees);
            assert!(worker.is_some() && read.class_header != worker);
        }
    }
    let request =
        Request::from_catalogue(read.tool, &CATALOGUE).expect("a read tool must make a request");
    assert_eq!(request.class(), worker);
    assert!(!read.envelope.is_empty(), "an empty envelope read");
    let sent = envelope
        .and_then(value_bytes)
        .expect("read an envelope nobody sent");
    if sent.first() == Some(&ENVELOPE_FIRST_BYTE) {
        assert_eq!(&*read.envelope, sent, "raw envelope bytes changed");
    }
    // What the middleware hands on next: decoding it must not panic either.
    if let Ok(untrusted) = UntrustedEnvelope::decode(&read.envelope) {
        let _ = black_box(untrusted.claims_unverified().map(|c| c.max_uses()));
    }
}
