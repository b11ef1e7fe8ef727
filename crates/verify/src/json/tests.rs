//! Every error kind with its offset, and the views over small bodies.

use super::*;

fn fails(body: &[u8]) -> (JsonErrorKind, usize) {
    let e = JsonBody::parse(body).expect_err("must be refused");
    (e.kind(), e.offset())
}

#[test]
fn every_error_kind_with_its_offset() {
    use JsonErrorKind::*;
    let cases: &[(&[u8], JsonErrorKind, usize)] = &[
        (b"", Empty, 0),
        (b" \t\r\n", Empty, 4),
        (b"\xef\xbb\xbf{}", ByteOrderMark, 0),
        (b"{\"a\":\"\xc0\xaf\"}", InvalidUtf8, 6),
        (b"{\"a\":\"\xed\xa0\x80\"}", InvalidUtf8, 6),
        (b"{\"a\" 1}", Syntax, 5),
        (b"{\"a\":1,}", Syntax, 7),
        (b"[1,]", Syntax, 3),
        (b"{\"a\":1", Syntax, 6),
        (b"{\"a\":\"x", Syntax, 7),
        (b"{\"a\":tru}", Syntax, 5),
        (b"{\"a\":+1}", Syntax, 5),
        (b"{\"a\":.5}", Syntax, 5),
        (b"{\"a\":1]", Syntax, 6),
        (b"{\x0c}", Syntax, 1),
        (b"{'a':1}", Syntax, 1),
        (b"{\"a\":\"x\ny\"}", ControlCharacter, 7),
        (b"{\"a\":\"\x00\"}", ControlCharacter, 6),
        (b"{\"a\":\"\\x\"}", InvalidEscape, 6),
        (b"{\"a\":\"\\u12g4\"}", InvalidEscape, 6),
        (b"{\"a\":\"\\u12\"}", InvalidEscape, 6),
        (b"{\"a\":\"\\'\"}", InvalidEscape, 6),
        (b"{\"a\":\"x\\ud800\"}", LoneSurrogate, 7),
        (b"{\"a\":\"\\ud800\\u0041\"}", LoneSurrogate, 6),
        (b"{\"a\":\"\\ud800\\ud800\"}", LoneSurrogate, 6),
        (b"{\"a\":\"\\udc00\"}", LoneSurrogate, 6),
        (b"{\"\\uDFFF\":1}", LoneSurrogate, 2),
        (b"{\"a\":01}", InvalidNumber, 6),
        (b"{\"a\":-01}", InvalidNumber, 7),
        (b"{\"a\":-}", InvalidNumber, 6),
        (b"{\"a\":-a}", InvalidNumber, 6),
        (b"{\"a\":1.}", InvalidNumber, 7),
        (b"{\"a\":1.e5}", InvalidNumber, 7),
        (b"{\"a\":1e}", InvalidNumber, 7),
        (b"{\"a\":1e+}", InvalidNumber, 8),
        (b"{\"a\":\"x\",\"a\":1}", DuplicateMember, 9),
        (b"{\"a\":1,\"\\u0061\":2}", DuplicateMember, 7),
        (b"{\"b\":{\"x\":1,\"y\":{},\"x\":2}}", DuplicateMember, 19),
        (b"[{\"a\":1,\"a\":1}]", DuplicateMember, 8),
        (b"[]", NotAnObject, 0),
        (b" \"x\" ", NotAnObject, 1),
        (b"1", NotAnObject, 0),
        (b"null", NotAnObject, 0),
        (b"{} {}", TrailingBytes, 3),
        (b"{}x", TrailingBytes, 2),
        (b"{}\x00", TrailingBytes, 2),
        (b"{\"a\":1}}", TrailingBytes, 7),
    ];
    for &(body, kind, offset) in cases {
        assert_eq!(
            fails(body),
            (kind, offset),
            "{:?}",
            core::str::from_utf8(body).unwrap_or("<not utf-8>")
        );
    }
}

#[test]
fn too_long_is_refused_at_the_limit() {
    // Built in a static buffer: the crate has no allocator in its unit tests.
    static BIG: [u8; MAX_BODY_LEN + 1] = [b' '; MAX_BODY_LEN + 1];
    assert_eq!(fails(&BIG), (JsonErrorKind::TooLong, MAX_BODY_LEN));
    // Exactly the limit is read (and found empty).
    assert_eq!(
        fails(&BIG[..MAX_BODY_LEN]),
        (JsonErrorKind::Empty, MAX_BODY_LEN)
    );
}

/// `depth` nested arrays inside the top-level object, `{"a":[[...]]}`, in `buf`.
fn nested(buf: &mut [u8; 100], depth: usize) -> &[u8] {
    let mut n = 0;
    for &b in b"{\"a\":" {
        buf[n] = b;
        n += 1;
    }
    for _ in 1..depth {
        buf[n] = b'[';
        n += 1;
    }
    for _ in 1..depth {
        buf[n] = b']';
        n += 1;
    }
    buf[n] = b'}';
    &buf[..n + 1]
}

#[test]
fn depth_32_is_read_and_33_refused() {
    let mut buf = [0; 100];
    assert!(JsonBody::parse(nested(&mut buf, 32)).is_ok());
    let mut buf = [0; 100];
    // The 33rd open bracket is at 5 + 31.
    assert_eq!(fails(nested(&mut buf, 33)), (JsonErrorKind::TooDeep, 36));
}

#[test]
fn codes_and_display_are_stable() {
    let e = JsonBody::parse(b"{\"a\":1,\"a\":2}").unwrap_err();
    assert_eq!(e.kind().code(), "duplicate_member");
    let mut buf = [0u8; 64];
    let mut w = Buf(&mut buf, 0);
    core::fmt::write(&mut w, format_args!("{e}")).unwrap();
    let n = w.1;
    assert_eq!(&buf[..n], b"json: duplicate member name at byte 7");
}

struct Buf<'a>(&'a mut [u8], usize);
impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
        self.1 += s.len();
        Ok(())
    }
}

#[test]
fn numbers_split_into_integers_and_others() {
    let body = JsonBody::parse(
        br#"{"a":-0,"b":9223372036854775807,"c":-9223372036854775808,"d":9223372036854775808,
            "e":-9223372036854775809,"f":1.0,"g":1e2,"h":0,"i":-12,"j":123456789012345678901234}"#,
    )
    .unwrap();
    let root = body.root();
    let int = |n: &[u8]| match root.get(n) {
        Some(JsonValue::Integer(v)) => Some(v),
        _ => None,
    };
    let other = |n: &[u8]| match root.get(n) {
        Some(JsonValue::Number(s)) => Some(s),
        _ => None,
    };
    assert_eq!(int(b"a"), Some(0));
    assert_eq!(int(b"b"), Some(i64::MAX));
    assert_eq!(int(b"c"), Some(i64::MIN));
    assert_eq!(other(b"d"), Some("9223372036854775808"));
    assert_eq!(other(b"e"), Some("-9223372036854775809"));
    assert_eq!(other(b"f"), Some("1.0"));
    assert_eq!(other(b"g"), Some("1e2"));
    assert_eq!(int(b"h"), Some(0));
    assert_eq!(int(b"i"), Some(-12));
    assert_eq!(other(b"j"), Some("123456789012345678901234"));
    assert!(root.get(b"z").is_none());
    assert_eq!(root.len(), 10);
}

#[test]
fn strings_unescape() {
    let body = JsonBody::parse(
        br#"{"s":"a\"\\\/\b\f\n\r\t\u0000\u00e9\u20AC\ud83d\ude00z","p":"plain \u00e9","q":"plain"}"#,
    )
    .unwrap();
    let root = body.root();
    let Some(JsonValue::String(s)) = root.get(b"s") else {
        panic!("s is a string")
    };
    let want = "a\"\\/\u{8}\u{c}\n\r\t\0é€😀z".as_bytes();
    assert!(s.eq_bytes(want));
    assert!(!s.eq_bytes(&want[..want.len() - 1]));
    assert_eq!(s.unescaped_len(), want.len());
    assert!(s.bytes().eq(want.iter().copied()));
    assert!(s.starts_with(b"a\"\\"));
    assert!(s.ends_with("😀z".as_bytes()));
    assert!(!s.ends_with(b"y"));
    assert!(s.as_plain().is_none());
    let Some(JsonValue::String(q)) = root.get(b"q") else {
        panic!("q is a string")
    };
    assert_eq!(q.as_plain(), Some("plain"));
    assert!(root.get("p".as_bytes()).is_some());
    // A name given escaped is found by its unescaped bytes.
    let body = JsonBody::parse(br#"{"\u0070ath":1}"#).unwrap();
    assert!(matches!(
        body.root().get(b"path"),
        Some(JsonValue::Integer(1))
    ));
}

#[test]
fn nested_values_are_skipped_whole() {
    let body = JsonBody::parse(
        br#" { "a" : [ 1 , { "x" : "]}\"" , "y" : [ [ ] ] } , [ ] , "s" ] , "b" : { } , "c" : true , "d" : null , "e" : false } "#,
    )
    .unwrap();
    let root = body.root();
    let names: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
    for ((name, _), want) in root.iter().zip(names) {
        assert_eq!(name.raw(), want);
    }
    let Some(JsonValue::Array(a)) = root.get(b"a") else {
        panic!("a is an array")
    };
    assert_eq!(a.len(), 4);
    let mut items = a.iter();
    assert!(matches!(items.next(), Some(JsonValue::Integer(1))));
    let Some(JsonValue::Object(o)) = items.next() else {
        panic!("an object")
    };
    assert_eq!(o.len(), 2);
    assert!(matches!(o.get(b"x"), Some(JsonValue::String(s)) if s.eq_bytes(b"]}\"")));
    assert!(matches!(items.next(), Some(JsonValue::Array(e)) if e.is_empty()));
    assert!(matches!(items.next(), Some(JsonValue::String(_))));
    assert!(items.next().is_none());
    assert!(matches!(root.get(b"b"), Some(JsonValue::Object(o)) if o.is_empty()));
    assert!(matches!(root.get(b"c"), Some(JsonValue::Bool(true))));
    assert!(matches!(root.get(b"d"), Some(JsonValue::Null)));
    assert!(matches!(root.get(b"e"), Some(JsonValue::Bool(false))));
}

#[test]
fn escaped_nul_and_distinct_names_are_fine() {
    assert!(JsonBody::parse(br#"{"a":"\u0000"}"#).is_ok());
    // Same raw prefix, different unescaped bytes; and names that differ only by escaping
    // of different characters.
    assert!(JsonBody::parse(br#"{"a":1,"\u0062":2,"ab":3,"a\u0000":4,"":5}"#).is_ok());
    assert!(JsonBody::parse(br#"{"\ud83d\ude00":1,"\ud83d\ude01":2}"#).is_ok());
    assert_eq!(
        fails("{\"\\ud83d\\ude00\":1,\"😀\":2}".as_bytes()),
        (JsonErrorKind::DuplicateMember, 18)
    );
}
