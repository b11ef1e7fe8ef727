//! The strict JSON reader of a tool call's body (`docs/spec.md` §16, "The body").
//!
//! A grant's args hold only for a body that is an RFC 8259 JSON text, valid UTF-8 with no
//! byte order mark, at most [`MAX_BODY_LEN`] bytes, at most [`MAX_BODY_DEPTH`] arrays and
//! objects open at once (the top-level object included), whose top level is an object, in
//! which no object repeats a member name (compared after unescaping) and no escape names an
//! unpaired surrogate. [`JsonBody::parse`] checks all of it in one pass over the bytes (plus
//! the duplicate check, `dedup`), without allocating and without recursing; what it returns
//! are borrowed views that re-read the validated bytes on demand.
//!
//! Why so strict: the worker's own JSON parser acts on the body after the verifier approved
//! it. Any text two parsers may read differently (a repeated name one keeps first and another
//! last, a lone surrogate one replaces and another refuses, trailing bytes one ignores) would
//! let an agent show the verifier one value and the tool another.
//!
//! ```
//! # use laissez_verify::json::{JsonBody, JsonValue};
//! let body = JsonBody::parse(br#"{"path": "/srv/a\u00e9", "n": 3, "tags": ["x"]}"#).unwrap();
//! let root = body.root();
//! assert!(matches!(root.get(b"n"), Some(JsonValue::Integer(3))));
//! if let Some(JsonValue::String(s)) = root.get(b"path") {
//!     assert!(s.eq_bytes("/srv/aé".as_bytes()));
//! }
//! assert_eq!(root.len(), 3);
//! ```

mod dedup;
mod scan;
mod validate;
mod view;

use core::fmt;

pub use crate::wire::args::{MAX_BODY_DEPTH, MAX_BODY_LEN};
pub use view::{JsonArray, JsonObject, JsonStr, JsonValue, Members, Unescaped, Values};

/// A body that passed every rule of `docs/spec.md` §16: a view of its top-level object.
#[derive(Clone, Copy, Debug)]
pub struct JsonBody<'a> {
    /// The whole body, known to be valid UTF-8 and a valid JSON text.
    text: &'a str,
    /// Where the top-level object's `{` is.
    start: usize,
}

impl<'a> JsonBody<'a> {
    /// Reads `bytes` as a tool call's body, refusing anything §16 does not allow.
    ///
    /// The checks run in a fixed order, so one input always gets one error: length (empty,
    /// then too long), byte order mark, UTF-8, then the grammar with depth, escapes and
    /// duplicate names in one left-to-right pass (a duplicate is found when its object
    /// closes), trailing bytes, and last whether the value is an object.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, JsonError> {
        if bytes.len() > MAX_BODY_LEN {
            return Err(JsonError::new(JsonErrorKind::TooLong, MAX_BODY_LEN));
        }
        if bytes.starts_with(&[0xef, 0xbb, 0xbf]) {
            return Err(JsonError::new(JsonErrorKind::ByteOrderMark, 0));
        }
        let text = match core::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return Err(JsonError::new(JsonErrorKind::InvalidUtf8, e.valid_up_to())),
        };
        let start = validate::validate(bytes)?;
        Ok(JsonBody { text, start })
    }

    /// The top-level object.
    pub fn root(&self) -> JsonObject<'a> {
        JsonObject::new(self.text, self.start)
    }

    /// The body as received (valid UTF-8).
    pub fn as_str(&self) -> &'a str {
        self.text
    }
}

/// Why a body is not one whose arguments can be read, and where (a byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    offset: usize,
    kind: JsonErrorKind,
}

impl JsonError {
    pub(crate) const fn new(kind: JsonErrorKind, offset: usize) -> Self {
        JsonError { offset, kind }
    }

    /// The byte offset in the body where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What the problem is.
    pub fn kind(&self) -> JsonErrorKind {
        self.kind
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "json: {} at byte {}", self.kind.describe(), self.offset)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JsonError {}

/// The kinds of [`JsonError`], each with a stable [`code`](JsonErrorKind::code).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonErrorKind {
    /// The body holds nothing but (possibly) whitespace.
    Empty,
    /// The body is longer than [`MAX_BODY_LEN`]; the offset is the limit.
    TooLong,
    /// The body starts with a UTF-8 byte order mark.
    ByteOrderMark,
    /// The body is not valid UTF-8 (overlong forms and encoded surrogates included).
    InvalidUtf8,
    /// The bytes break the JSON grammar (a missing or unexpected token, an unterminated
    /// string or container).
    Syntax,
    /// A string holds an unescaped control character (U+0000 to U+001F).
    ControlCharacter,
    /// A backslash starts no escape that RFC 8259 allows.
    InvalidEscape,
    /// A `\u` escape names half of a surrogate pair without its other half.
    LoneSurrogate,
    /// A number breaks the grammar (leading zero, `-` or `.` or an exponent without digits).
    InvalidNumber,
    /// More than [`MAX_BODY_DEPTH`] arrays and objects are open at once.
    TooDeep,
    /// An object names a member twice (after unescaping); the offset is the second name's.
    DuplicateMember,
    /// The body is a valid JSON text but its top-level value is not an object.
    NotAnObject,
    /// Something other than whitespace follows the top-level value.
    TrailingBytes,
}

impl JsonErrorKind {
    /// The stable snake_case name of the kind (for logs and test vectors).
    pub fn code(self) -> &'static str {
        match self {
            JsonErrorKind::Empty => "empty",
            JsonErrorKind::TooLong => "too_long",
            JsonErrorKind::ByteOrderMark => "byte_order_mark",
            JsonErrorKind::InvalidUtf8 => "invalid_utf8",
            JsonErrorKind::Syntax => "syntax",
            JsonErrorKind::ControlCharacter => "control_character",
            JsonErrorKind::InvalidEscape => "invalid_escape",
            JsonErrorKind::LoneSurrogate => "lone_surrogate",
            JsonErrorKind::InvalidNumber => "invalid_number",
            JsonErrorKind::TooDeep => "too_deep",
            JsonErrorKind::DuplicateMember => "duplicate_member",
            JsonErrorKind::NotAnObject => "not_an_object",
            JsonErrorKind::TrailingBytes => "trailing_bytes",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            JsonErrorKind::Empty => "empty body",
            JsonErrorKind::TooLong => "body longer than 1 MiB",
            JsonErrorKind::ByteOrderMark => "byte order mark",
            JsonErrorKind::InvalidUtf8 => "invalid UTF-8",
            JsonErrorKind::Syntax => "syntax error",
            JsonErrorKind::ControlCharacter => "unescaped control character in string",
            JsonErrorKind::InvalidEscape => "invalid escape",
            JsonErrorKind::LoneSurrogate => "unpaired surrogate escape",
            JsonErrorKind::InvalidNumber => "invalid number",
            JsonErrorKind::TooDeep => "more than 32 arrays and objects open",
            JsonErrorKind::DuplicateMember => "duplicate member name",
            JsonErrorKind::NotAnObject => "top-level value is not an object",
            JsonErrorKind::TrailingBytes => "trailing bytes after the value",
        }
    }
}

#[cfg(test)]
mod tests;
