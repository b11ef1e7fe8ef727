//! Borrowed views of a validated body. Nothing is decoded ahead of time: an object or array
//! is its opening offset, and iterating re-reads the bytes, skipping nested values with a
//! depth counter (`scan`). Every view comes from `JsonBody::parse`, so the bytes are known
//! valid and reading them cannot fail.

use core::fmt;

use super::scan::{next_element, next_member, string_end};
use super::validate::hex4;

/// A value in a body.
#[derive(Debug, Clone, Copy)]
pub enum JsonValue<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number with no fraction and no exponent within -2^63 .. 2^63-1 (`-0` is 0).
    Integer(i64),
    /// Any other number (`1.0`, `1e2`, `9223372036854775808`), as written: valid JSON but no
    /// integer, so it satisfies no constraint but `any`.
    Number(&'a str),
    /// A string.
    String(JsonStr<'a>),
    /// An array.
    Array(JsonArray<'a>),
    /// An object.
    Object(JsonObject<'a>),
}

impl<'a> JsonValue<'a> {
    /// The value spanning `text[start..end]`.
    fn at(text: &'a str, start: usize, end: usize) -> Self {
        let b = text.as_bytes();
        match b[start] {
            b'n' => JsonValue::Null,
            b't' => JsonValue::Bool(true),
            b'f' => JsonValue::Bool(false),
            b'"' => JsonValue::String(JsonStr::new(text, start)),
            b'[' => JsonValue::Array(JsonArray { text, start }),
            b'{' => JsonValue::Object(JsonObject { text, start }),
            _ => match integer(&b[start..end]) {
                Some(v) => JsonValue::Integer(v),
                None => JsonValue::Number(&text[start..end]),
            },
        }
    }
}

/// The number `n` (valid JSON) as an i64, if it is an integer that fits.
fn integer(n: &[u8]) -> Option<i64> {
    let (negative, digits) = match n.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, n),
    };
    // Magnitude up to 2^63 (the most negative i64), refusing anything with a frac or exp.
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if magnitude <= 1 << 63 {
            Some(0i64.wrapping_sub_unsigned(magnitude))
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A string of a body: the bytes between its quotes, known valid.
#[derive(Clone, Copy)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonStr(\"{}\")", self.raw)
    }
}

impl<'a> JsonStr<'a> {
    /// The string whose opening quote is at `start`.
    pub(super) fn new(text: &'a str, start: usize) -> Self {
        let (end, escaped) = string_end(text.as_bytes(), start);
        JsonStr {
            raw: &text[start + 1..end],
            escaped,
        }
    }

    /// The bytes between the quotes as written, escapes included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw.as_bytes()
    }

    /// The unescaped UTF-8 bytes of the string.
    pub fn bytes(&self) -> Unescaped<'a> {
        Unescaped::new(self.raw.as_bytes())
    }

    /// How many bytes the unescaped string has.
    pub fn unescaped_len(&self) -> usize {
        if self.escaped {
            self.bytes().count()
        } else {
            self.raw.len()
        }
    }

    /// Whether the unescaped string is exactly `other`.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        if self.escaped {
            self.bytes().eq(other.iter().copied())
        } else {
            self.raw.as_bytes() == other
        }
    }

    /// Whether the unescaped string starts with `prefix`.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        if self.escaped {
            let mut bytes = self.bytes();
            prefix.iter().all(|&p| bytes.next() == Some(p))
        } else {
            self.raw.as_bytes().starts_with(prefix)
        }
    }

    /// Whether the unescaped string ends with `suffix`.
    pub fn ends_with(&self, suffix: &[u8]) -> bool {
        if self.escaped {
            let len = self.unescaped_len();
            len >= suffix.len()
                && self
                    .bytes()
                    .skip(len - suffix.len())
                    .eq(suffix.iter().copied())
        } else {
            self.raw.as_bytes().ends_with(suffix)
        }
    }

    /// The string itself when it holds no escape (the common case, read without decoding).
    pub fn as_plain(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }
}

/// The unescaped bytes of a [`JsonStr`], in order: a `\uXXXX` escape (or surrogate pair)
/// yields its code point's UTF-8 bytes.
#[derive(Clone, Debug)]
pub struct Unescaped<'a> {
    raw: &'a [u8],
    at: usize,
    /// Bytes of a decoded escape still to yield: `pending[next..len]`.
    pending: [u8; 4],
    next: u8,
    len: u8,
}

impl<'a> Unescaped<'a> {
    /// Over validated string contents (between the quotes).
    pub(super) fn new(raw: &'a [u8]) -> Self {
        Unescaped {
            raw,
            at: 0,
            pending: [0; 4],
            next: 0,
            len: 0,
        }
    }
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        if self.next < self.len {
            let byte = self.pending[usize::from(self.next)];
            self.next += 1;
            return Some(byte);
        }
        let &c = self.raw.get(self.at)?;
        if c != b'\\' {
            self.at += 1;
            return Some(c);
        }
        let simple = match self.raw[self.at + 1] {
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => Some(other), // `"`, `\` and `/` stand for themselves.
        };
        if let Some(byte) = simple {
            self.at += 2;
            return Some(byte);
        }
        let unit = u32::from(hex4(self.raw, self.at + 2).unwrap_or(0));
        let code = if (0xd800..0xdc00).contains(&unit) {
            // Validated: a low surrogate escape follows.
            let low = u32::from(hex4(self.raw, self.at + 8).unwrap_or(0xdc00));
            self.at += 12;
            0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
        } else {
            self.at += 6;
            unit
        };
        let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        let encoded = ch.encode_utf8(&mut self.pending);
        self.len = encoded.len() as u8;
        self.next = 1;
        Some(self.pending[0])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.len - self.next);
        let rest = self.raw.len() - self.at;
        // An escape of six bytes yields at least one; each raw byte at most one.
        (pending + rest.div_ceil(6), Some(pending + rest))
    }
}

/// An array of a body.
#[derive(Clone, Copy)]
pub struct JsonArray<'a> {
    text: &'a str,
    start: usize,
}

impl fmt::Debug for JsonArray<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> JsonArray<'a> {
    /// The elements, in order.
    pub fn iter(&self) -> Values<'a> {
        Values {
            text: self.text,
            at: self.start + 1,
        }
    }

    /// How many elements (counted by reading the array).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The elements of a [`JsonArray`].
#[derive(Clone, Debug)]
pub struct Values<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Values<'a> {
    type Item = JsonValue<'a>;

    #[inline]
    fn next(&mut self) -> Option<JsonValue<'a>> {
        let (start, end) = next_element(self.text.as_bytes(), self.at)?;
        self.at = end;
        Some(JsonValue::at(self.text, start, end))
    }
}

/// An object of a body; its member names are distinct.
#[derive(Clone, Copy)]
pub struct JsonObject<'a> {
    text: &'a str,
    start: usize,
}

impl fmt::Debug for JsonObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> JsonObject<'a> {
    /// The object whose `{` is at `start`.
    pub(super) fn new(text: &'a str, start: usize) -> Self {
        JsonObject { text, start }
    }

    /// The members as (name, value), in the order written.
    pub fn iter(&self) -> Members<'a> {
        Members {
            text: self.text,
            at: self.start + 1,
        }
    }

    /// The value of the member named `name` (compared with the unescaped name).
    pub fn get(&self, name: &[u8]) -> Option<JsonValue<'a>> {
        self.iter().find(|(n, _)| n.eq_bytes(name)).map(|(_, v)| v)
    }

    /// How many members (counted by reading the object).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the object has no member.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The members of a [`JsonObject`].
#[derive(Clone, Debug)]
pub struct Members<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (JsonStr<'a>, JsonValue<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (m, next) = next_member(self.text.as_bytes(), self.at)?;
        self.at = next;
        let name = JsonStr {
            raw: &self.text[m.name + 1..m.name_end],
            escaped: m.escaped,
        };
        Some((name, JsonValue::at(self.text, m.value, m.value_end)))
    }
}
