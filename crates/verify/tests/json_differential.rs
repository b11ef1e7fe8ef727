//! The body reader (`laissez_verify::json`, `docs/spec.md` §16) against serde_json: random
//! JSON values written in several styles must read the same in both; a repeated member name
//! (possibly spelled with escapes) and an escaped lone surrogate must be refused; mutated
//! documents must be valid for both or for neither. Plus the hand-written edge cases and the
//! 1 MiB limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/json_cases.rs"]
mod json_cases;

#[path = "support/json_writer.rs"]
mod json_writer;
use json_writer::{Style, write};

use laissez_verify::json::{JsonBody, JsonErrorKind, JsonObject, JsonValue, MAX_BODY_LEN};
use proptest::prelude::*;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// serde_json's reading of a document, keeping member order and repeated names.
#[derive(Debug, Clone, PartialEq)]
enum Doc {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Doc, E> {
                Ok(Doc::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Doc, E> {
                Ok(Doc::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Doc, E> {
                Ok(Doc::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Doc, E> {
                Ok(Doc::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Doc, E> {
                Ok(Doc::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Doc, E> {
                Ok(Doc::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut items = vec![];
                while let Some(x) = a.next_element()? {
                    items.push(x);
                }
                Ok(Doc::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut members = vec![];
                while let Some((k, v)) = a.next_entry::<String, Doc>()? {
                    members.push((k, v));
                }
                Ok(Doc::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

impl Doc {
    /// Most arrays and objects open at once.
    fn depth(&self) -> usize {
        match self {
            Doc::Arr(items) => 1 + items.iter().map(Doc::depth).max().unwrap_or(0),
            Doc::Obj(ms) => 1 + ms.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether some object names a member twice.
    fn has_duplicate(&self) -> bool {
        match self {
            Doc::Arr(items) => items.iter().any(Doc::has_duplicate),
            Doc::Obj(ms) => {
                let names: std::collections::HashSet<_> = ms.iter().map(|(k, _)| k).collect();
                names.len() != ms.len() || ms.iter().any(|(_, v)| v.has_duplicate())
            }
            _ => false,
        }
    }
}

/// serde_json's verdict on a body under §16's rules: `Some(doc)` when it must be read,
/// `None` when it must be refused, `Err` when serde_json refuses a number §16 allows (a
/// float beyond f64's range), which has no verdict here.
fn serde_verdict(body: &[u8]) -> Result<Option<Doc>, ()> {
    match serde_json::from_slice::<Doc>(body) {
        Ok(doc) => {
            let fine = matches!(doc, Doc::Obj(_))
                && doc.depth() <= 32
                && !doc.has_duplicate()
                && body.len() <= MAX_BODY_LEN
                && !body.starts_with(b"\xef\xbb\xbf");
            Ok(fine.then_some(doc))
        }
        Err(e) if e.to_string().contains("number out of range") => Err(()),
        Err(_) => Ok(None),
    }
}

/// Whether our value is the one serde_json read; the first difference otherwise.
fn same(ours: JsonValue<'_>, doc: &Doc) -> Result<(), String> {
    let ok = match (ours, doc) {
        (JsonValue::Null, Doc::Null) => true,
        (JsonValue::Bool(a), Doc::Bool(b)) => a == *b,
        (JsonValue::Integer(a), Doc::I64(b)) => a == *b,
        (JsonValue::Integer(a), Doc::U64(b)) => u64::try_from(a) == Ok(*b),
        // serde_json reads `-0` as the float -0.0.
        (JsonValue::Integer(0), Doc::F64(b)) => *b == 0.0 && b.is_sign_negative(),
        (JsonValue::Number(_), Doc::U64(b)) => *b > i64::MAX as u64,
        (JsonValue::Number(text), Doc::F64(_)) => text.parse::<f64>().is_ok(),
        (JsonValue::String(s), Doc::Str(b)) => {
            s.eq_bytes(b.as_bytes())
                && s.bytes().eq(b.bytes())
                && s.unescaped_len() == b.len()
                && s.as_plain().is_none_or(|p| p == b)
        }
        (JsonValue::Array(a), Doc::Arr(items)) => {
            if a.len() != items.len() {
                return Err(format!("array of {} vs {}", a.len(), items.len()));
            }
            for (x, y) in a.iter().zip(items) {
                same(x, y)?;
            }
            true
        }
        (JsonValue::Object(o), Doc::Obj(ms)) => return same_object(o, ms),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{ours:?} vs {doc:?}"))
    }
}

fn same_object(o: JsonObject<'_>, ms: &[(String, Doc)]) -> Result<(), String> {
    if o.len() != ms.len() {
        return Err(format!("object of {} vs {}", o.len(), ms.len()));
    }
    for ((name, value), (k, v)) in o.iter().zip(ms) {
        if !name.eq_bytes(k.as_bytes()) {
            return Err(format!("member {name:?} vs {k:?}"));
        }
        same(value, v)?;
        // Looking a member up by name finds the same value (compared one level deep: a full
        // comparison here would be exponential in the depth).
        let got = o.get(k.as_bytes()).ok_or("get found nothing")?;
        match (got, v) {
            (JsonValue::Array(a), Doc::Arr(items)) if a.len() == items.len() => {}
            (JsonValue::Object(x), Doc::Obj(ms)) if x.len() == ms.len() => {}
            (JsonValue::Array(_) | JsonValue::Object(_), _) => {
                return Err(format!("get({k:?}) found {got:?}"));
            }
            _ => same(got, v)?,
        }
    }
    Ok(())
}

/// Checks one body against serde_json's verdict.
fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(verdict) = serde_verdict(body) else {
        return Ok(());
    };
    let ours = JsonBody::parse(body);
    match (&verdict, ours) {
        (Some(Doc::Obj(ms)), Ok(b)) => same_object(b.root(), ms).map_err(TestCaseError::fail),
        (None, Err(_)) => Ok(()),
        (v, o) => Err(TestCaseError::fail(format!(
            "serde_json {v:?}, ours {o:?}, body {:?}",
            String::from_utf8_lossy(body)
        ))),
    }
}

/// A generated value; `Num` is the text of a valid number that is no i64 integer.
#[derive(Debug, Clone)]
enum Gen {
    Null,
    Bool(bool),
    Int(i64),
    Num(String),
    Str(String),
    Arr(Vec<Gen>),
    Obj(Vec<(String, Gen)>),
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c]{0,3}",
        2 => "[\"\\\\/\u{0}-\u{1f}a\u{7f}é€😀\u{ffff}\u{10000}\u{10ffff}]{0,6}",
        1 => any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Gen> {
    prop_oneof![
        3 => any::<i64>().prop_map(Gen::Int),
        1 => prop_oneof![
            Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), Just(i64::MIN + 1), Just(i64::MAX - 1)
        ].prop_map(Gen::Int),
        1 => prop_oneof![
            Just("9223372036854775808".to_string()),
            Just("-9223372036854775809".to_string()),
            Just("18446744073709551615".to_string()),
            Just("18446744073709551616".to_string()),
            Just("123456789012345678901234567890".to_string()),
        ].prop_map(Gen::Num),
        2 => (any::<i32>(), "[0-9]{1,5}").prop_map(|(i, f)| Gen::Num(format!("{i}.{f}"))),
        2 => (any::<i16>(), prop_oneof![Just("e"), Just("E")], prop_oneof![Just(""), Just("+"), Just("-")], 0u8..60)
            .prop_map(|(i, e, s, x)| Gen::Num(format!("{i}{e}{s}{x}"))),
        1 => (any::<f64>().prop_filter("finite", |f| f.is_finite())).prop_map(|f| {
            let text = format!("{f:?}");
            if text.contains(['.', 'e', 'E']) { Gen::Num(text) } else { Gen::Num(format!("{text}.0")) }
        }),
    ]
}

fn value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        Just(Gen::Null),
        any::<bool>().prop_map(Gen::Bool),
        number(),
        string().prop_map(Gen::Str),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Gen::Arr),
            object(inner),
        ]
    })
}

/// An object with distinct names (the first of each name kept).
fn object(inner: impl Strategy<Value = Gen>) -> impl Strategy<Value = Gen> {
    proptest::collection::vec((string(), inner), 0..6).prop_map(|ms| {
        let mut seen = std::collections::HashSet::new();
        Gen::Obj(
            ms.into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect(),
        )
    })
}

fn root() -> impl Strategy<Value = Gen> {
    object(value())
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        prop_oneof![Just(0u8), Just(64), Just(255)],
        any::<u64>(),
    )
        .prop_map(|(spaced, escape_per_256, seed)| Style {
            spaced,
            escape_per_256,
            seed: seed | 1,
        })
}

/// Repeats one member name in the `pick`-th non-empty object (preorder, wrapping around).
fn inject_duplicate(g: &mut Gen, pick: usize) {
    fn objects(g: &Gen, n: &mut usize) {
        match g {
            Gen::Arr(items) => items.iter().for_each(|x| objects(x, n)),
            Gen::Obj(ms) => {
                if !ms.is_empty() {
                    *n += 1;
                }
                ms.iter().for_each(|(_, v)| objects(v, n));
            }
            _ => {}
        }
    }
    fn inject(g: &mut Gen, pick: &mut usize, which: usize) -> bool {
        match g {
            Gen::Arr(items) => items.iter_mut().any(|x| inject(x, pick, which)),
            Gen::Obj(ms) => {
                if !ms.is_empty() {
                    if *pick == 0 {
                        let name = ms[which % ms.len()].0.clone();
                        let at = (which / 7) % (ms.len() + 1);
                        ms.insert(at, (name, Gen::Int(which as i64)));
                        return true;
                    }
                    *pick -= 1;
                }
                ms.iter_mut().any(|(_, v)| inject(v, pick, which))
            }
            _ => false,
        }
    }
    let mut n = 0;
    objects(g, &mut n);
    let which = pick.wrapping_mul(31).wrapping_add(3);
    let mut pick = pick % n;
    assert!(inject(g, &mut pick, which));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_read_as_serde_json_reads_them(g in root(), style in style()) {
        let text = write(&g, style);
        let verdict = serde_verdict(text.as_bytes());
        prop_assert!(matches!(verdict, Ok(Some(_)) | Err(())), "serde_json refused {text:?}");
        agree(text.as_bytes())?;
    }

    #[test]
    fn a_repeated_name_is_refused(
        g in root().prop_filter("has a member", |g| matches!(g, Gen::Obj(ms) if !ms.is_empty())),
        style in style(),
        pick in any::<usize>(),
    ) {
        let mut g = g;
        inject_duplicate(&mut g, pick);
        let text = write(&g, style);
        if let Ok(doc) = serde_json::from_str::<Doc>(&text) {
            prop_assert!(doc.has_duplicate());
        }
        let e = JsonBody::parse(text.as_bytes()).expect_err("a duplicate");
        prop_assert_eq!(e.kind(), JsonErrorKind::DuplicateMember, "{}", text);
        // The offset is a member name's opening quote.
        prop_assert_eq!(text.as_bytes()[e.offset()], b'"');
    }

    #[test]
    fn an_escaped_lone_surrogate_is_refused(
        before in "[a-z]{0,3}",
        unit in prop_oneof![0xd800u16..0xdc00, 0xdc00u16..0xe000],
        after in prop_oneof![Just(String::new()), Just("x".into()), Just("\\u0041".into()),
                             Just("\\ud800".into()), Just("\\n".into())],
        in_name in any::<bool>(),
    ) {
        let s = format!("{before}\\u{unit:04x}{after}");
        // Keep an actual pair out: a high surrogate followed by a low one is no lone one.
        let text = if in_name { format!("{{\"{s}\":1}}") } else { format!("{{\"k\":\"{s}\"}}") };
        prop_assert!(serde_json::from_str::<Doc>(&text).is_err(), "serde_json read {text}");
        let e = JsonBody::parse(text.as_bytes()).expect_err("a lone surrogate");
        prop_assert_eq!(e.kind(), JsonErrorKind::LoneSurrogate, "{}", text);
    }

    #[test]
    fn mutated_documents_are_valid_for_both_or_neither(
        g in root(),
        style in style(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, prop_oneof![
            4 => proptest::sample::select(b"{}[],:\"\\ 0123456789-+.eEtrufalsn\t\n\r\x00\x1f\x7f\xc3\xa9\xed\xef".to_vec()),
            1 => any::<u8>(),
        ]), 1..4),
    ) {
        let mut body = write(&g, style).into_bytes();
        for (at, op, byte) in edits {
            let at = at % (body.len() + 1);
            match op {
                0 if at < body.len() => body[at] = byte,
                1 if at < body.len() => { body.remove(at); }
                _ => body.insert(at, byte),
            }
        }
        agree(&body)?;
    }
}

#[test]
fn hand_written_cases_agree_with_serde_json() {
    for c in json_cases::cases() {
        let ours = JsonBody::parse(&c.body);
        match (c.error, ours) {
            (None, Ok(_)) => {}
            (Some((code, at)), Err(e)) => {
                assert_eq!((e.kind().code(), e.offset()), (code, at), "{}", c.name);
            }
            (want, got) => panic!("{}: want {want:?}, got {got:?}", c.name),
        }
        agree(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

#[test]
fn serde_json_reads_minus_zero_as_a_float_and_lone_surrogates_as_errors() {
    // The two places where `same` and the lone-surrogate test lean on serde_json's behaviour.
    assert_eq!(serde_json::from_str::<Doc>("-0").unwrap(), Doc::F64(-0.0));
    assert!(serde_json::from_str::<Doc>(r#""\ud800""#).is_err());
    assert!(serde_json::from_str::<Doc>(r#""\udc00""#).is_err());
}

#[test]
fn the_1_mib_limit() {
    let mut body = b"{\"a\":\"".to_vec();
    body.resize(MAX_BODY_LEN - 2, b'x');
    body.extend_from_slice(b"\"}");
    let b = JsonBody::parse(&body).expect("exactly 1 MiB");
    assert!(
        matches!(b.root().get(b"a"), Some(JsonValue::String(s)) if s.unescaped_len() == MAX_BODY_LEN - 8)
    );
    body.insert(7, b'x');
    let e = JsonBody::parse(&body).unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (JsonErrorKind::TooLong, MAX_BODY_LEN)
    );
}

/// `{"m0":0,...}` with `n` members; member `dup` (if any) named like member `of`, spelled
/// with an escape when `escape`. Returns the body and where member `dup`'s name starts.
fn members(n: usize, dup: Option<(usize, usize)>, escape: bool) -> (Vec<u8>, usize) {
    let mut body = b"{".to_vec();
    let mut at = 0;
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        let name = match dup {
            Some((d, of)) if d == i => {
                at = body.len();
                of
            }
            _ => i,
        };
        if escape && Some(i) == dup.map(|d| d.0) {
            body.extend_from_slice(format!("\"\\u006d{name}\":{i}").as_bytes());
        } else {
            body.extend_from_slice(format!("\"m{name}\":{i}").as_bytes());
        }
    }
    body.push(b'}');
    (body, at)
}

#[test]
fn every_path_of_the_duplicate_check_finds_repeats() {
    // Around the direct comparison's limit (32), within the first block of the table (1920),
    // across blocks, and in the last one; plain and escaped.
    for n in [2usize, 31, 32, 33, 100, 1919, 1920, 1921, 5000] {
        let (ok, _) = members(n, None, false);
        let b = JsonBody::parse(&ok).unwrap();
        assert_eq!(b.root().len(), n);
        let pairs = [
            (1, 0),
            (n - 1, 0),
            (n - 1, n - 2),
            (n / 2, n / 3),
            (n - 1, n / 2),
        ];
        for (d, of) in pairs {
            if d <= of {
                continue;
            }
            for escape in [false, true] {
                let (body, at) = members(n, Some((d, of)), escape);
                let e = JsonBody::parse(&body).unwrap_err();
                assert_eq!(
                    (e.kind(), e.offset()),
                    (JsonErrorKind::DuplicateMember, at),
                    "{n} members, {d} repeats {of}, escaped {escape}"
                );
            }
        }
    }
}

#[test]
fn objects_beyond_the_name_pool_are_checked_when_they_close() {
    // Ten levels of 30 names each before the nested object: the outer levels fill the pool
    // of names kept while reading, so the inner ones are re-read when they close.
    for dup_level in [0usize, 5, 9] {
        let mut body = vec![];
        let mut at = 0;
        for level in 0..10 {
            body.push(b'{');
            for i in 0..30 {
                let name = if level == dup_level && i == 29 { 3 } else { i };
                if level == dup_level && i == 29 {
                    at = body.len();
                }
                body.extend_from_slice(format!("\"n{name}\":{i},").as_bytes());
            }
            body.extend_from_slice(b"\"next\":");
        }
        body.extend_from_slice(b"null");
        body.extend(std::iter::repeat_n(b'}', 10));
        let e = JsonBody::parse(&body).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (JsonErrorKind::DuplicateMember, at),
            "level {dup_level}"
        );
        // And without the repeat, valid.
        let fixed = String::from_utf8(body)
            .unwrap()
            .replacen("\"n3\":29", "\"n29\":29", 1);
        assert!(
            JsonBody::parse(fixed.as_bytes()).is_ok(),
            "level {dup_level}"
        );
    }
}
