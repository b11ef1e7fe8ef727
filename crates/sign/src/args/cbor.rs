//! Args in the envelope's encoding (`docs/spec.md` §16): a map of member names to
//! constraints, each an array that starts with its kind's number.
//!
//! Two writers of the same bytes: [`Args::to_value`] hands ciborium the tree the envelope's
//! encoder writes (as the rest of the claims are written), and [`Args::to_cbor`] writes the
//! bytes directly, which the sort orders need (a member name's or a value's encoding) and
//! which cannot fail. A test holds them equal. Both are deterministic because [`Args`] is
//! always in wire order: members and values sorted by their encodings when it was made.

use ciborium::value::Value as Cbor;

use super::{Args, Constraint, Value};

/// The kind numbers of the constraint arrays.
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

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

/// A head in its shortest form (RFC 8949 §4.2.1).
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    // The casts are exact: each arm's range fits the width it is written in.
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    match u64::try_from(n) {
        Ok(u) => head(out, MAJOR_UINT, u),
        // -1 - n for negative n is in 0..=i64::MAX.
        Err(_) => head(out, MAJOR_NINT, (-1 - n) as u64),
    }
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Text(s) => write_text(out, s),
        Value::Int(n) => write_int(out, *n),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Null => out.push(NULL),
    }
}

fn write_bound(out: &mut Vec<u8>, bound: Option<i64>) {
    match bound {
        Some(n) => write_int(out, n),
        None => out.push(NULL),
    }
}

/// The encoding of a member name: the map's sort key.
pub(super) fn text_key(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 3);
    write_text(&mut out, name);
    out
}

/// The encoding of a value: the sort key of `one_of` and `not_one_of`.
pub(super) fn value_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v);
    out
}

fn write_args(out: &mut Vec<u8>, args: &Args) {
    head(out, MAJOR_MAP, args.members.len() as u64);
    for (name, c) in &args.members {
        write_text(out, name);
        write_constraint(out, c);
    }
}

fn write_values(out: &mut Vec<u8>, values: &[Value]) {
    head(out, MAJOR_ARRAY, values.len() as u64);
    for v in values {
        write_value(out, v);
    }
}

/// Recursion is bounded: an [`Args`] holds at most 8 enclosing levels (checked when made).
fn write_constraint(out: &mut Vec<u8>, c: &Constraint) {
    let len = match c {
        Constraint::Any => 1,
        Constraint::Range(..) | Constraint::Each(..) => 3,
        _ => 2,
    };
    head(out, MAJOR_ARRAY, len);
    match c {
        Constraint::Any => head(out, MAJOR_UINT, kind::ANY),
        Constraint::Optional(inner) => {
            head(out, MAJOR_UINT, kind::OPTIONAL);
            write_constraint(out, inner);
        }
        Constraint::Eq(v) => {
            head(out, MAJOR_UINT, kind::EQ);
            write_value(out, v);
        }
        Constraint::OneOf(values) => {
            head(out, MAJOR_UINT, kind::ONE_OF);
            write_values(out, values);
        }
        Constraint::NotOneOf(values) => {
            head(out, MAJOR_UINT, kind::NOT_ONE_OF);
            write_values(out, values);
        }
        Constraint::Range(min, max) => {
            head(out, MAJOR_UINT, kind::RANGE);
            write_bound(out, *min);
            write_bound(out, *max);
        }
        Constraint::Prefix(s) => {
            head(out, MAJOR_UINT, kind::PREFIX);
            write_text(out, s);
        }
        Constraint::Suffix(s) => {
            head(out, MAJOR_UINT, kind::SUFFIX);
            write_text(out, s);
        }
        Constraint::Subpath(s) => {
            head(out, MAJOR_UINT, kind::SUBPATH);
            write_text(out, s);
        }
        Constraint::MaxLen(n) => {
            head(out, MAJOR_UINT, kind::MAX_LEN);
            head(out, MAJOR_UINT, *n);
        }
        Constraint::Object(args) => {
            head(out, MAJOR_UINT, kind::OBJECT);
            write_args(out, args);
        }
        Constraint::Each(item, max_items) => {
            head(out, MAJOR_UINT, kind::EACH);
            write_constraint(out, item);
            head(out, MAJOR_UINT, *max_items);
        }
        Constraint::All(all) => {
            head(out, MAJOR_UINT, kind::ALL);
            head(out, MAJOR_ARRAY, all.len() as u64);
            for c in all {
                write_constraint(out, c);
            }
        }
    }
}

fn uint(n: u64) -> Cbor {
    Cbor::Integer(n.into())
}

fn value_tree(v: &Value) -> Cbor {
    match v {
        Value::Text(s) => Cbor::Text(s.clone()),
        Value::Int(n) => Cbor::Integer((*n).into()),
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Null => Cbor::Null,
    }
}

fn bound_tree(bound: Option<i64>) -> Cbor {
    bound.map_or(Cbor::Null, |n| Cbor::Integer(n.into()))
}

fn constraint_tree(c: &Constraint) -> Cbor {
    let items = match c {
        Constraint::Any => vec![uint(kind::ANY)],
        Constraint::Optional(inner) => vec![uint(kind::OPTIONAL), constraint_tree(inner)],
        Constraint::Eq(v) => vec![uint(kind::EQ), value_tree(v)],
        Constraint::OneOf(values) => vec![
            uint(kind::ONE_OF),
            Cbor::Array(values.iter().map(value_tree).collect()),
        ],
        Constraint::NotOneOf(values) => vec![
            uint(kind::NOT_ONE_OF),
            Cbor::Array(values.iter().map(value_tree).collect()),
        ],
        Constraint::Range(min, max) => vec![uint(kind::RANGE), bound_tree(*min), bound_tree(*max)],
        Constraint::Prefix(s) => vec![uint(kind::PREFIX), Cbor::Text(s.clone())],
        Constraint::Suffix(s) => vec![uint(kind::SUFFIX), Cbor::Text(s.clone())],
        Constraint::Subpath(s) => vec![uint(kind::SUBPATH), Cbor::Text(s.clone())],
        Constraint::MaxLen(n) => vec![uint(kind::MAX_LEN), uint(*n)],
        Constraint::Object(args) => vec![uint(kind::OBJECT), args.to_value()],
        Constraint::Each(item, max_items) => {
            vec![uint(kind::EACH), constraint_tree(item), uint(*max_items)]
        }
        Constraint::All(all) => vec![
            uint(kind::ALL),
            Cbor::Array(all.iter().map(constraint_tree).collect()),
        ],
    };
    Cbor::Array(items)
}

impl Args {
    /// The args as the envelope holds them: deterministic CBOR (RFC 8949 §4.2.1).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_args(&mut out, self);
        out
    }

    /// The args as a ciborium tree, members in wire order: what the envelope's encoder writes.
    pub(crate) fn to_value(&self) -> Cbor {
        Cbor::Map(
            self.members
                .iter()
                .map(|(name, c)| (Cbor::Text(name.clone()), constraint_tree(c)))
                .collect(),
        )
    }
}
