//! `json_body`: any byte string as a tool call's body, through the strict JSON reader
//! (`laissez_verify::json`, `docs/spec.md` §16).
//!
//! Proves, for every input: `JsonBody::parse` and a walk over everything it accepted (every
//! member and element, every string unescaped, every member looked up by name) neither panic
//! nor allocate; a refusal's offset lies within the input (the limit, for a too-long one); the
//! views agree with one another (`len` with the count iterated, `get` finds each member,
//! `unescaped_len` with the bytes, a plain string equals its raw bytes); and the verdict is
//! serde_json's under §16's rules: serde_json reads the input as an object, with no repeated
//! name, at most 32 levels deep, no byte order mark and at most 1 MiB, exactly when the reader
//! accepts it (inputs serde_json refuses only for a number beyond f64's range, which §16
//! allows, have no verdict to compare).

use std::collections::HashSet;

use laissez_verify::json::{
    JsonBody, JsonErrorKind, JsonObject, JsonValue, MAX_BODY_DEPTH, MAX_BODY_LEN, Members, Values,
};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::alloc_count::{allocations_during, assert_counter_works};

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    assert_counter_works();
    let (outcome, allocations) = allocations_during(|| {
        JsonBody::parse(data).map(|body| {
            walk(body.root());
            body.root().len()
        })
    });
    assert_eq!(allocations, 0, "the JSON reader allocated");
    match &outcome {
        Ok(_) => assert!(data.len() <= MAX_BODY_LEN),
        Err(e) if e.kind() == JsonErrorKind::TooLong => assert_eq!(e.offset(), MAX_BODY_LEN),
        Err(e) => assert!(
            e.offset() <= data.len(),
            "offset {} past the end",
            e.offset()
        ),
    }
    if let Some(members) = serde_verdict(data) {
        match (members, outcome) {
            (Some(n), Ok(ours)) => assert_eq!(n, ours, "member count"),
            (None, Err(_)) => {}
            (theirs, ours) => panic!("serde_json: {theirs:?} members, ours: {ours:?}"),
        }
    }
}

/// Everything under `root`, without recursion: a stack of iterators, one per open level.
fn walk(root: JsonObject<'_>) {
    enum Level<'a> {
        Object(JsonObject<'a>, Members<'a>),
        Array(Values<'a>),
    }
    let mut stack: [Option<Level<'_>>; MAX_BODY_DEPTH] = [const { None }; MAX_BODY_DEPTH];
    stack[0] = Some(Level::Object(root, root.iter()));
    let mut depth = 1;
    let mut counts = [0usize; MAX_BODY_DEPTH];
    while depth > 0 {
        let next = match &mut stack[depth - 1] {
            Some(Level::Object(object, members)) => members.next().map(|(name, value)| {
                string(name);
                // Names are distinct, so `get` finds this very member.
                if let Some(found) = get_by_name(*object, name) {
                    assert!(found.is_some_and(|v| kind(v) == kind(value)));
                }
                value
            }),
            Some(Level::Array(values)) => values.next(),
            None => unreachable!("levels below `depth` are set"),
        };
        let Some(value) = next else {
            // The level is done: its length is what was iterated.
            match stack[depth - 1].take() {
                Some(Level::Object(object, _)) => assert_eq!(object.len(), counts[depth - 1]),
                Some(Level::Array(_)) | None => {}
            }
            counts[depth - 1] = 0;
            depth -= 1;
            continue;
        };
        counts[depth - 1] += 1;
        match value {
            JsonValue::String(s) => string(s),
            JsonValue::Number(text) => {
                assert!(text.contains(['.', 'e', 'E']) || text.trim_start_matches('-').len() >= 19);
            }
            JsonValue::Object(o) => {
                assert!(depth < MAX_BODY_DEPTH);
                assert_eq!(o.is_empty(), o.iter().count() == 0);
                stack[depth] = Some(Level::Object(o, o.iter()));
                depth += 1;
            }
            JsonValue::Array(a) => {
                assert!(depth < MAX_BODY_DEPTH);
                assert_eq!(a.is_empty(), a.iter().count() == 0);
                stack[depth] = Some(Level::Array(a.iter()));
                depth += 1;
            }
            JsonValue::Null | JsonValue::Bool(_) | JsonValue::Integer(_) => {}
        }
    }
}

/// `object.get` by the unescaped bytes of `name` (decoded into a stack buffer), when they
/// fit in it; `None` (nothing to check) otherwise.
fn get_by_name<'a>(
    object: JsonObject<'a>,
    name: laissez_verify::json::JsonStr<'_>,
) -> Option<Option<JsonValue<'a>>> {
    let mut buf = [0u8; 256];
    let n = name.unescaped_len();
    if n > buf.len() {
        return None;
    }
    for (slot, byte) in buf.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    Some(object.get(&buf[..n]))
}

/// The checks every string gets: its views agree.
fn string(s: laissez_verify::json::JsonStr<'_>) {
    let len = s.unescaped_len();
    assert_eq!(s.bytes().count(), len);
    assert!(s.starts_with(b"") && s.ends_with(b""));
    if let Some(plain) = s.as_plain() {
        assert_eq!(plain.as_bytes(), s.raw());
        assert!(s.eq_bytes(s.raw()));
        assert_eq!(len, s.raw().len());
    } else {
        assert!(s.raw().contains(&b'\\'));
    }
    // Unescaped bytes of a valid string are UTF-8: a byte below 0x80 stands alone, and the
    // count of lead bytes is the number of characters.
    let chars = s.bytes().filter(|b| b & 0xc0 != 0x80).count();
    assert!(chars <= len);
}

fn kind(v: JsonValue<'_>) -> u8 {
    match v {
        JsonValue::Null => 0,
        JsonValue::Bool(_) => 1,
        JsonValue::Integer(_) => 2,
        JsonValue::Number(_) => 3,
        JsonValue::String(_) => 4,
        JsonValue::Array(_) => 5,
        JsonValue::Object(_) => 6,
    }
}

/// serde_json's reading of a value: enough to apply §16's rules (depth, repeated names).
struct Shape {
    depth: usize,
    duplicate: bool,
    object_members: Option<usize>,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::leaf())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut s = Shape::leaf();
                while let Some(x) = a.next_element::<Shape>()? {
                    s.depth = s.depth.max(x.depth);
                    s.duplicate |= x.duplicate;
                }
                s.depth += 1;
                Ok(s)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut s = Shape::leaf();
                let mut names = HashSet::new();
                while let Some(k) = a.next_key::<String>()? {
                    let x = a.next_value::<Shape>()?;
                    s.duplicate |= !names.insert(k) || x.duplicate;
                    s.depth = s.depth.max(x.depth);
                }
                s.depth += 1;
                s.object_members = Some(names.len());
                Ok(s)
            }
        }
        d.deserialize_any(V)
    }
}

impl Shape {
    fn leaf() -> Shape {
        Shape {
            depth: 0,
            duplicate: false,
            object_members: None,
        }
    }
}

/// serde_json's verdict under §16: `Some(Some(members))` for a body to accept,
/// `Some(None)` for one to refuse, `None` when there is no verdict (a number serde_json
/// cannot hold but §16 allows).
fn serde_verdict(data: &[u8]) -> Option<Option<usize>> {
    match serde_json::from_slice::<Shape>(data) {
        Ok(s) => {
            let fine = !s.duplicate
                && s.depth <= MAX_BODY_DEPTH
                && data.len() <= MAX_BODY_LEN
                && !data.starts_with(b"\xef\xbb\xbf");
            Some(s.object_members.filter(|_| fine))
        }
        Err(e) if e.to_string().contains("number out of range") => None,
        Err(_) => Some(None),
    }
}
