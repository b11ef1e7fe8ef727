//! A grant's constraints on a call's arguments (`docs/spec.md` §16): decoded and checked
//! with the claims, read in place as borrowed views.
//!
//! `args` is a CBOR map from member names to constraints. Decoding checks every `malformed`
//! rule of §16 (kinds, counts, order, nesting, subpath roots, integer range) once, when the
//! claims are decoded; the views ([`Args`], [`Constraint`]) then re-read bytes that passed.
//! Nesting is bounded before it is entered: at most [`MAX_LEVELS`] `optional`, `object`,
//! `each` and `all` constraints enclose one another, so the decoder's, the satisfaction's and
//! the narrowing's descent is at most that deep whatever the input (the same bounded descent
//! as the CBOR reader's own). No allocation.

use core::fmt;

use crate::cbor::Reader;
use crate::malformed::{Malformed, MalformedKind};
use crate::wire::args::{MAX_ALL, MAX_LEVELS, MAX_MEMBERS, MAX_VALUES, MIN_ALL};

mod narrow;
mod path;
mod satisfy;
mod subpath;

pub(crate) use narrow::UNCONSTRAINED;
pub use narrow::{NarrowingRule, NotNarrower};
pub use path::ArgPath;
pub(crate) use satisfy::{LazyBody, Openness, satisfies};

/// Constraint kinds as the wire numbers them.
mod kind {
    pub(super) const ANY: u64 = 0;
    pub(super) const OPTIONAL: u64 = 1;
    pub(super) const EQ: u64 = 2;
    pub(super) const ONE_OF: u64 = 3;
    pub(super) const NOT_ONE_OF: u64 = 4;
    pub(super) const RANGE: u64 = 5;
    pub(super) const PREFIX: u64 = 6;
    pub(super) const SUFFIX: u64 = 7;
    pub(super) const SUBPATH: u64 = 8;
    pub(super) const MAX_LEN: u64 = 9;
    pub(super) const OBJECT: u64 = 10;
    pub(super) const EACH: u64 = 11;
    pub(super) const ALL: u64 = 12;
}

/// The member name that stands for every member an args map does not name.
pub const WILDCARD: &str = "*";

/// An args map: member names and their constraints, borrowed from the claims.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Args<'a> {
    /// The pairs after the map's head, as received.
    items: &'a [u8],
    /// Where `items` starts in the envelope, for offsets.
    base: usize,
    len: usize,
}

/// A value of `eq`, `one_of` and `not_one_of`: what a JSON scalar is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string.
    Text(&'a str),
    /// An integer within -2^63 .. 2^63-1.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// One constraint, read from the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Constraint<'a> {
    /// Any value.
    Any,
    /// The member may be absent; when present it must satisfy the inner constraint.
    Optional(Nested<'a>),
    /// Equal to the value.
    Eq(Value<'a>),
    /// Equal to one of the values.
    OneOf(Values<'a>),
    /// A scalar equal to none of the values.
    NotOneOf(Values<'a>),
    /// An integer within the bounds; `None` is unbounded (never both).
    Range(Option<i64>, Option<i64>),
    /// A string that starts with this.
    Prefix(&'a str),
    /// A string that ends with this.
    Suffix(&'a str),
    /// A string naming this path or one below it.
    Subpath(&'a str),
    /// A string of at most this many UTF-8 bytes.
    MaxLen(u64),
    /// An object whose members satisfy these args.
    Object(Args<'a>),
    /// An array of at most `max_items` items, each satisfying `item`.
    Each {
        /// The constraint on every item.
        item: Nested<'a>,
        /// The most items.
        max_items: u64,
    },
    /// Every one of these constraints.
    All(Constraints<'a>),
}

/// A constraint inside another, read when asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nested<'a> {
    bytes: &'a [u8],
    base: usize,
}

/// The values of a `one_of` or `not_one_of`: distinct, in ascending order of their encodings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Values<'a> {
    items: &'a [u8],
    base: usize,
    len: usize,
}

/// The constraints of an `all`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Constraints<'a> {
    items: &'a [u8],
    base: usize,
    len: usize,
}

/// How a constraint is read: checked against every rule of §16 (decoding the claims), or
/// viewed (bytes that passed the check once: nested items are skipped, not decoded again, so a
/// view costs what its own bytes cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Check,
    View,
}

fn bad(r: &Reader<'_>, at: usize) -> Malformed {
    r.error_at(at, MalformedKind::Args)
}

impl<'a> Args<'a> {
    /// Decodes an args map whose place is enclosed by `enclosing` levels, checking every rule
    /// of §16: 1 to 32 members, text names in the order of their encodings, no duplicate, and
    /// `"*"` never `optional`.
    pub(crate) fn decode(r: &mut Reader<'a>, enclosing: usize) -> Result<Self, Malformed> {
        Self::read(r, enclosing, Read::Check)
    }

    /// An args map of bytes [`Args::decode`] accepted before (iterating a decoded claims
    /// set): its extent only, nothing checked again.
    pub(crate) fn view(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        Self::read(r, 0, Read::View)
    }

    fn read(r: &mut Reader<'a>, enclosing: usize, mode: Read) -> Result<Self, Malformed> {
        let at = r.pos();
        let len = r.map()?;
        if len == 0 || len > MAX_MEMBERS {
            return Err(bad(r, at));
        }
        let start = r.pos();
        let base = r.offset();
        if mode == Read::View {
            for _ in 0..len {
                r.skip_checked()?;
                r.skip_checked()?;
            }
            return Ok(Args {
                items: r.slice(start, r.pos()),
                base,
                len,
            });
        }
        let mut prev: Option<(usize, usize)> = None;
        for _ in 0..len {
            let key_at = r.pos();
            let name = r.text().map_err(|_| bad(r, key_at))?;
            let this = r.slice(key_at, r.pos());
            if let Some((p_start, p_end)) = prev {
                match r.slice(p_start, p_end).cmp(this) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => {
                        return Err(r.error_at(key_at, MalformedKind::DuplicateKey));
                    }
                    core::cmp::Ordering::Greater => {
                        return Err(r.error_at(key_at, MalformedKind::UnsortedKeys));
                    }
                }
            }
            prev = Some((key_at, r.pos()));
            let constraint_at = r.pos();
            let constraint = read_constraint(r, enclosing, true, Read::Check)?;
            if name == WILDCARD && matches!(constraint, Constraint::Optional(_)) {
                return Err(bad(r, constraint_at));
            }
        }
        Ok(Args {
            items: r.slice(start, r.pos()),
            base,
            len,
        })
    }

    /// How many members the map names (`"*"` included).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Never true: an args map names at least one member.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members and their constraints, in wire order.
    pub fn members(&self) -> Members<'a> {
        Members {
            reader: Reader::new(self.items, self.base),
            remaining: self.len,
        }
    }

    /// The constraint of the member named `name` (compared byte for byte), if named.
    pub fn get(&self, name: &[u8]) -> Option<Constraint<'a>> {
        self.members()
            .find(|(named, _)| named.as_bytes() == name)
            .map(|(_, c)| c)
    }

    /// The constraint of `"*"`: every member not named.
    pub fn wildcard(&self) -> Option<Constraint<'a>> {
        self.get(WILDCARD.as_bytes())
    }

    /// The bytes of the pairs as received (for digests and displays).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.items
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.members()).finish()
    }
}

/// The members of an args map.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Constraint<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Bytes that passed `Args::decode`: re-reading cannot fail; if it did, the walk
        // stops, and a stopped walk satisfies nothing (every caller fails closed).
        let name = self.reader.text().ok()?;
        let constraint = read_constraint(&mut self.reader, 0, true, Read::View).ok()?;
        Some((name, constraint))
    }
}

impl<'a> Nested<'a> {
    /// The constraint. `None` only if bytes that passed decoding no longer read, which
    /// cannot happen; every caller treats it as a constraint nothing satisfies.
    pub fn get(&self) -> Option<Constraint<'a>> {
        read_constraint(
            &mut Reader::new(self.bytes, self.base),
            0,
            false,
            Read::View,
        )
        .ok()
    }
}

impl fmt::Debug for Nested<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(c) => c.fmt(f),
            None => f.write_str("?"),
        }
    }
}

impl<'a> Values<'a> {
    /// How many values.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Never true: a list holds at least one value.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values, in ascending order of their encodings.
    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let mut reader = Reader::new(self.items, self.base);
        (0..self.len).map_while(move |_| read_value(&mut reader).ok())
    }
}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Constraints<'a> {
    /// How many constraints (2 to 8).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Never true.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The constraints, in wire order. A constraint that no longer reads (impossible for
    /// decoded bytes) ends the walk early; callers count what they saw against [`len`].
    ///
    /// [`len`]: Constraints::len
    pub fn iter(&self) -> impl Iterator<Item = Constraint<'a>> + 'a {
        let mut reader = Reader::new(self.items, self.base);
        (0..self.len).map_while(move |_| read_constraint(&mut reader, 0, false, Read::View).ok())
    }
}

impl fmt::Debug for Constraints<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Reads one constraint; `enclosing` levels surround it; `member` when it is a member's own
/// constraint in an args map (the only place `optional` may stand). Checked, every rule of
/// §16 holds for it and all it encloses; viewed, what it encloses is skipped.
fn read_constraint<'a>(
    r: &mut Reader<'a>,
    enclosing: usize,
    member: bool,
    mode: Read,
) -> Result<Constraint<'a>, Malformed> {
    let check = mode == Read::Check;
    let at = r.pos();
    let n = r.array()?;
    if n == 0 {
        return Err(bad(r, at));
    }
    let k = r.uint().map_err(|_| bad(r, at))?;
    // The constraints that enclose others are levels; a ninth is refused before it is read.
    let level = matches!(k, kind::OPTIONAL | kind::OBJECT | kind::EACH | kind::ALL);
    if check && level && enclosing >= MAX_LEVELS {
        return Err(r.error_at(at, MalformedKind::TooDeep));
    }
    let inner = enclosing + 1;
    let constraint = match (k, n) {
        (kind::ANY, 1) => Constraint::Any,
        (kind::OPTIONAL, 2) if member => Constraint::Optional(read_nested(r, inner, mode)?),
        (kind::EQ, 2) => Constraint::Eq(read_value(r)?),
        (kind::ONE_OF, 2) => Constraint::OneOf(read_values(r, mode)?),
        (kind::NOT_ONE_OF, 2) => Constraint::NotOneOf(read_values(r, mode)?),
        (kind::RANGE, 3) => {
            let min = read_bound(r)?;
            let max = read_bound(r)?;
            match (min, max) {
                (None, None) if check => return Err(bad(r, at)),
                (Some(min), Some(max)) if check && min > max => return Err(bad(r, at)),
                _ => Constraint::Range(min, max),
            }
        }
        (kind::PREFIX, 2) => Constraint::Prefix(r.text()?),
        (kind::SUFFIX, 2) => Constraint::Suffix(r.text()?),
        (kind::SUBPATH, 2) => {
            let root = r.text()?;
            if check && !subpath::is_root(root) {
                return Err(bad(r, at));
            }
            Constraint::Subpath(root)
        }
        (kind::MAX_LEN, 2) => Constraint::MaxLen(r.uint()?),
        (kind::OBJECT, 2) => Constraint::Object(Args::read(r, inner, mode)?),
        (kind::EACH, 3) => {
            let item = read_nested(r, inner, mode)?;
            Constraint::Each {
                item,
                max_items: r.uint()?,
            }
        }
        (kind::ALL, 2) => {
            let list_at = r.pos();
            let len = r.array()?;
            if check && !(MIN_ALL..=MAX_ALL).contains(&len) {
                return Err(bad(r, list_at));
            }
            let start = r.pos();
            let base = r.offset();
            for _ in 0..len {
                match mode {
                    Read::Check => {
                        read_constraint(r, inner, false, mode)?;
                    }
                    Read::View => r.skip_checked()?,
                }
            }
            Constraint::All(Constraints {
                items: r.slice(start, r.pos()),
                base,
                len,
            })
        }
        _ => return Err(bad(r, at)),
    };
    Ok(constraint)
}

/// Reads a constraint that another encloses (checked, or skipped in a view), keeping its
/// bytes for [`Nested::get`].
fn read_nested<'a>(
    r: &mut Reader<'a>,
    enclosing: usize,
    mode: Read,
) -> Result<Nested<'a>, Malformed> {
    let start = r.pos();
    let base = r.offset();
    match mode {
        Read::Check => {
            read_constraint(r, enclosing, false, mode)?;
        }
        Read::View => r.skip_checked()?,
    }
    Ok(Nested {
        bytes: r.slice(start, r.pos()),
        base,
    })
}

/// Reads `[1*32 value]`: distinct, in strictly ascending order of their encodings (checked),
/// or only its extent (viewed).
fn read_values<'a>(r: &mut Reader<'a>, mode: Read) -> Result<Values<'a>, Malformed> {
    let at = r.pos();
    let len = r.array()?;
    let start = r.pos();
    let base = r.offset();
    if mode == Read::View {
        for _ in 0..len {
            r.skip_checked()?;
        }
        return Ok(Values {
            items: r.slice(start, r.pos()),
            base,
            len,
        });
    }
    if len == 0 || len > MAX_VALUES {
        return Err(bad(r, at));
    }
    let mut prev: Option<(usize, usize)> = None;
    for _ in 0..len {
        let value_at = r.pos();
        read_value(r)?;
        if let Some((p_start, p_end)) = prev
            && r.slice(p_start, p_end) >= r.slice(value_at, r.pos())
        {
            return Err(bad(r, value_at));
        }
        prev = Some((value_at, r.pos()));
    }
    Ok(Values {
        items: r.slice(start, r.pos()),
        base,
        len,
    })
}

/// Reads `tstr / int / bool / null`, the int within -2^63 .. 2^63-1.
fn read_value<'a>(r: &mut Reader<'a>) -> Result<Value<'a>, Malformed> {
    let at = r.pos();
    let mut probe = r.clone();
    if let Ok(text) = probe.text() {
        *r = probe;
        return Ok(Value::Text(text));
    }
    match r.head()? {
        ciborium_ll::Header::Simple(20) => Ok(Value::Bool(false)),
        ciborium_ll::Header::Simple(21) => Ok(Value::Bool(true)),
        ciborium_ll::Header::Simple(22) => Ok(Value::Null),
        ciborium_ll::Header::Positive(n) => {
            i64::try_from(n).map(Value::Int).map_err(|_| bad(r, at))
        }
        // -1 - n for n up to 2^63 - 1 is at least -2^63.
        ciborium_ll::Header::Negative(n) => i64::try_from(n)
            .map(|n| Value::Int(-1 - n))
            .map_err(|_| bad(r, at)),
        _ => Err(bad(r, at)),
    }
}

/// Reads a range bound: an int, or null for unbounded.
fn read_bound(r: &mut Reader<'_>) -> Result<Option<i64>, Malformed> {
    let at = r.pos();
    match read_value(r)? {
        Value::Int(n) => Ok(Some(n)),
        Value::Null => Ok(None),
        _ => Err(bad(r, at)),
    }
}
