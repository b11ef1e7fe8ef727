use serde_json::json;

use super::*;

/// The bytes ciborium writes for the tree the envelope's encoder gets.
fn via_ciborium(args: &Args) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&args.to_value(), &mut out).unwrap();
    out
}

fn refused(text: &str) -> ArgsError {
    match Args::from_json_str(text) {
        Ok(args) => panic!("{text} was accepted as {args:?}"),
        Err(e) => e,
    }
}

/// Refused at `path` with `code`, and the message names the path.
fn assert_refused(text: &str, path: &str, code: &str) {
    let e = refused(text);
    assert_eq!((e.path(), e.code()), (path, code), "{text}: {e}");
    if !path.is_empty() {
        assert!(e.to_string().starts_with(&format!("at {path}: ")), "{e}");
    }
}

#[test]
fn every_kind_round_trips_json_owned_cbor() {
    let text = r#"{
        "any": "any",
        "opt": {"optional": {"max_len": 10}},
        "eq": {"eq": -3},
        "one": {"one_of": ["b", "a"]},
        "not": {"not_one_of": [null, true]},
        "range": {"range": [null, 500]},
        "pre": {"prefix": "ab"},
        "suf": {"suffix": ".pdf"},
        "path": {"subpath": "/srv/data"},
        "len": {"max_len": 300},
        "obj": {"object": {"*": "any", "k": {"eq": "v"}}},
        "each": {"each": {"range": [0, null]}, "max_items": 4},
        "all": {"all": [{"prefix": "a"}, {"suffix": "z"}]}
    }"#;
    let args = Args::from_json_str(text).unwrap();
    assert_eq!(args.members().len(), 13);
    assert_eq!(
        args.get("opt"),
        Some(&Constraint::Optional(Box::new(Constraint::MaxLen(10))))
    );
    assert_eq!(
        args.get("one"),
        Some(&Constraint::OneOf(vec![
            Value::Text("a".into()),
            Value::Text("b".into())
        ]))
    );
    assert_eq!(args.get("range"), Some(&Constraint::Range(None, Some(500))));
    // JSON out and in again gives the same args; the output is the input, sorted.
    let out = args.to_json();
    assert_eq!(Args::from_json(&out).unwrap(), args);
    assert_eq!(out["one"], json!({"one_of": ["a", "b"]}));
    assert_eq!(out["not"], json!({"not_one_of": [true, null]}));
    assert_eq!(
        out["each"],
        json!({"each": {"range": [0, null]}, "max_items": 4})
    );
    // Both writers agree, byte for byte.
    assert_eq!(args.to_cbor(), via_ciborium(&args));
    // Members in wire order: shorter names first, then bytewise.
    let names: Vec<&str> = args.members().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "eq", "all", "any", "len", "not", "obj", "one", "opt", "pre", "suf", "each", "path",
            "range"
        ]
    );
}

#[test]
fn the_encoding_of_each_kind_is_the_contracts() {
    let cases: &[(serde_json::Value, &[u8])] = &[
        (json!("any"), &[0x81, 0x00]),
        (json!({"optional": "any"}), &[0x82, 0x01, 0x81, 0x00]),
        (json!({"eq": true}), &[0x82, 0x02, 0xf5]),
        (json!({"one_of": [2, -1]}), &[0x82, 0x03, 0x82, 0x02, 0x20]),
        (
            json!({"not_one_of": ["x"]}),
            &[0x82, 0x04, 0x81, 0x61, b'x'],
        ),
        (
            json!({"range": [-24, 1000]}),
            &[0x83, 0x05, 0x37, 0x19, 0x03, 0xe8],
        ),
        (json!({"range": [5, null]}), &[0x83, 0x05, 0x05, 0xf6]),
        (json!({"prefix": "a"}), &[0x82, 0x06, 0x61, b'a']),
        (json!({"suffix": "b"}), &[0x82, 0x07, 0x61, b'b']),
        (json!({"subpath": "/"}), &[0x82, 0x08, 0x61, b'/']),
        (json!({"max_len": 24}), &[0x82, 0x09, 0x18, 0x18]),
        (
            json!({"object": {"k": "any"}}),
            &[0x82, 0x0a, 0xa1, 0x61, b'k', 0x81, 0x00],
        ),
        (
            json!({"each": "any", "max_items": 3}),
            &[0x83, 0x0b, 0x81, 0x00, 0x03],
        ),
        (
            json!({"all": ["any", {"eq": null}]}),
            &[0x82, 0x0c, 0x82, 0x81, 0x00, 0x82, 0x02, 0xf6],
        ),
    ];
    for (constraint, bytes) in cases {
        let args = Args::from_json(&json!({ "m": constraint })).unwrap();
        let mut expected = vec![0xa1, 0x61, b'm'];
        expected.extend_from_slice(bytes);
        assert_eq!(args.to_cbor(), expected, "{constraint}");
        assert_eq!(via_ciborium(&args), expected, "{constraint}");
    }
}

#[test]
fn values_are_sorted_by_their_encodings() {
    let args =
        Args::from_json(&json!({"v": {"one_of": [null, "aa", true, "b", -1, 1, false, -300]}}))
            .unwrap();
    let Some(Constraint::OneOf(values)) = args.get("v") else {
        panic!("{args:?}");
    };
    // 0x01, 0x20, 0x39 0x01 0x2b, 0x61 "b", 0x62 "aa", 0xf4, 0xf5, 0xf6.
    assert_eq!(
        values,
        &[
            Value::Int(1),
            Value::Int(-1),
            Value::Int(-300),
            Value::Text("b".into()),
            Value::Text("aa".into()),
            Value::Bool(false),
            Value::Bool(true),
            Value::Null,
        ]
    );
    // Extreme integers keep their exact value and a shortest head.
    let args = Args::from_json(&json!({"v": {"range": [i64::MIN, i64::MAX]}})).unwrap();
    assert_eq!(
        args.get("v"),
        Some(&Constraint::Range(Some(i64::MIN), Some(i64::MAX)))
    );
    assert_eq!(args.to_cbor(), via_ciborium(&args));
}

#[test]
fn args_built_in_code_are_checked_and_sorted_like_json() {
    let inner = Args::new([("b".to_owned(), Constraint::Any)]).unwrap();
    let args = Args::new([
        (
            "zz".to_owned(),
            Constraint::NotOneOf(vec![Value::Null, Value::Int(0)]),
        ),
        ("a".to_owned(), Constraint::Object(inner)),
    ])
    .unwrap();
    assert_eq!(args.members()[0].0, "a");
    assert_eq!(
        args.get("zz"),
        Some(&Constraint::NotOneOf(vec![Value::Int(0), Value::Null]))
    );
    let twice = Args::new([
        ("a".to_owned(), Constraint::Any),
        ("a".to_owned(), Constraint::MaxLen(1)),
    ]);
    assert_eq!(twice.unwrap_err().code(), "duplicate_member");
    let nested = Args::new([(
        "a".to_owned(),
        Constraint::Each(Box::new(Constraint::Optional(Box::new(Constraint::Any))), 1),
    )]);
    assert_eq!(nested.unwrap_err().path(), "a.each");
}

#[test]
fn malformed_shapes_are_refused_with_their_path() {
    // `n` items made by `item` from their index, joined by commas.
    let many =
        |n: usize, item: &dyn Fn(usize) -> String| (0..n).map(item).collect::<Vec<_>>().join(",");
    let cases: Vec<(String, &str, &str)> = vec![
        ("[]".into(), "", "not_an_object"),
        ("{}".into(), "", "member_count"),
        (
            format!("{{{}}}", many(33, &|i| format!(r#""m{i}": "any""#))),
            "",
            "member_count",
        ),
        (r#"{"a": 1}"#.into(), "a", "not_a_constraint"),
        (r#"{"a": "all"}"#.into(), "a", "unknown_kind"),
        (r#"{"a": {}}"#.into(), "a", "not_a_constraint"),
        (r#"{"a": {"between": [1, 2]}}"#.into(), "a", "unknown_kind"),
        (
            r#"{"a": {"eq": 1, "prefix": "x"}}"#.into(),
            "a",
            "unexpected_field",
        ),
        (r#"{"a": {"each": "any"}}"#.into(), "a", "missing_field"),
        (r#"{"a": {"max_items": 3}}"#.into(), "a", "missing_field"),
        (
            r#"{"a": {"each": "any", "max_items": 3, "x": 1}}"#.into(),
            "a",
            "unexpected_field",
        ),
        (
            r#"{"a": {"each": "any", "max_items": -1}}"#.into(),
            "a.max_items",
            "not_a_count",
        ),
        (r#"{"a": {"eq": [1]}}"#.into(), "a.eq", "not_a_value"),
        (r#"{"a": {"eq": 1.5}}"#.into(), "a.eq", "not_an_integer"),
        (r#"{"a": {"eq": 1.0}}"#.into(), "a.eq", "not_an_integer"),
        (r#"{"a": {"eq": 1e2}}"#.into(), "a.eq", "not_an_integer"),
        (
            r#"{"a": {"eq": 9223372036854775808}}"#.into(),
            "a.eq",
            "not_an_integer",
        ),
        (r#"{"a": {"one_of": []}}"#.into(), "a.one_of", "value_count"),
        (
            format!(
                r#"{{"a": {{"one_of": [{}]}}}}"#,
                many(33, &|i| i.to_string())
            ),
            "a.one_of",
            "value_count",
        ),
        (
            r#"{"a": {"one_of": [1, "1", 1]}}"#.into(),
            "a.one_of",
            "repeated_value",
        ),
        (
            r#"{"a": {"not_one_of": [null, null]}}"#.into(),
            "a.not_one_of",
            "repeated_value",
        ),
        (
            r#"{"a": {"one_of": [{"x": 1}]}}"#.into(),
            "a.one_of[0]",
            "not_a_value",
        ),
        (r#"{"a": {"one_of": "x"}}"#.into(), "a.one_of", "not_a_list"),
        (r#"{"a": {"range": [1]}}"#.into(), "a.range", "not_a_range"),
        (r#"{"a": {"range": 1}}"#.into(), "a.range", "not_a_range"),
        (
            r#"{"a": {"range": ["1", 2]}}"#.into(),
            "a.range",
            "not_a_range",
        ),
        (
            r#"{"a": {"range": [0.5, 2]}}"#.into(),
            "a.range",
            "not_an_integer",
        ),
        (
            r#"{"a": {"range": [null, null]}}"#.into(),
            "a.range",
            "range_unbounded",
        ),
        (
            r#"{"a": {"range": [10, 5]}}"#.into(),
            "a.range",
            "range_order",
        ),
        (r#"{"a": {"prefix": 1}}"#.into(), "a.prefix", "not_text"),
        (
            r#"{"a": {"max_len": -1}}"#.into(),
            "a.max_len",
            "not_a_count",
        ),
        (
            r#"{"a": {"max_len": 1.5}}"#.into(),
            "a.max_len",
            "not_a_count",
        ),
        (
            r#"{"a": {"subpath": "srv"}}"#.into(),
            "a.subpath",
            "subpath",
        ),
        (
            r#"{"a": {"subpath": "/srv/"}}"#.into(),
            "a.subpath",
            "subpath",
        ),
        (
            r#"{"a": {"subpath": "/srv//x"}}"#.into(),
            "a.subpath",
            "subpath",
        ),
        (
            r#"{"a": {"subpath": "/srv/./x"}}"#.into(),
            "a.subpath",
            "subpath",
        ),
        (
            r#"{"a": {"subpath": "/srv/.."}}"#.into(),
            "a.subpath",
            "subpath",
        ),
        (r#"{"a": {"subpath": ""}}"#.into(), "a.subpath", "subpath"),
        (
            r#"{"a": {"object": {}}}"#.into(),
            "a.object",
            "member_count",
        ),
        (
            r#"{"a": {"object": []}}"#.into(),
            "a.object",
            "not_an_object",
        ),
        (r#"{"a": {"all": ["any"]}}"#.into(), "a.all", "all_count"),
        (
            format!(
                r#"{{"a": {{"all": [{}]}}}}"#,
                many(9, &|i| format!(r#"{{"max_len": {i}}}"#))
            ),
            "a.all",
            "all_count",
        ),
        (
            r#"{"a": {"all": ["any", {"nope": 1}]}}"#.into(),
            "a.all[1]",
            "unknown_kind",
        ),
        (r#"{"*": {"optional": "any"}}"#.into(), "*", "optional_star"),
        (
            r#"{"a": {"optional": {"optional": "any"}}}"#.into(),
            "a.optional",
            "optional_nested",
        ),
        (
            r#"{"a": {"all": [{"optional": "any"}, "any"]}}"#.into(),
            "a.all[0]",
            "optional_nested",
        ),
        (
            r#"{"a": {"each": {"optional": "any"}, "max_items": 1}}"#.into(),
            "a.each",
            "optional_nested",
        ),
        (
            r#"{"a": "any", "a": {"eq": 1}}"#.into(),
            "",
            "duplicate_member",
        ),
        (
            r#"{"a": {"object": {"b": "any", "b": "any"}}}"#.into(),
            "a.object",
            "duplicate_member",
        ),
        (
            r#"{"a": {"eq": 1, "eq": 2}}"#.into(),
            "a",
            "duplicate_member",
        ),
        (r#"{"a": "any""#.into(), "", "not_json"),
        (r#"{"a": "any"} x"#.into(), "", "not_json"),
    ];
    for (text, path, code) in &cases {
        assert_refused(text, path, code);
    }
}

#[test]
fn the_messages_say_what_is_wrong() {
    assert_eq!(
        refused(r#"{"amount": {"range": [10, 5]}}"#).to_string(),
        "at amount.range: min 10 is above max 5"
    );
    assert_eq!(
        refused(r#"{"a": "any", "a": "any"}"#).to_string(),
        "at the top level: the member \"a\" is repeated"
    );
    let e = refused(r#"{"a.b": {"eq": []}}"#);
    assert_eq!(e.path(), r#"["a.b"].eq"#);
}

/// `levels` optional/object/each/all wrappers around `any`, as one member's constraint.
fn nested(levels: usize) -> String {
    let mut c = "\"any\"".to_owned();
    for i in 0..levels {
        c = match i % 3 {
            0 => format!(r#"{{"each": {c}, "max_items": 2}}"#),
            1 => format!(r#"{{"object": {{"x": {c}}}}}"#),
            _ => format!(r#"{{"all": [{c}, "any"]}}"#),
        };
    }
    format!(r#"{{"m": {{"optional": {c}}}}}"#)
}

#[test]
fn at_most_eight_levels_enclose_one_another() {
    // optional plus seven more: eight levels.
    let args = Args::from_json_str(&nested(7)).unwrap();
    assert_eq!(args.to_cbor(), via_ciborium(&args));
    assert_eq!(refused(&nested(8)).code(), "too_deep");
    // A deep document stops at the limit rather than at the parser's recursion limit.
    assert_eq!(refused(&nested(60)).code(), "too_deep");
    // In code too: nine levels are refused.
    let mut c = Constraint::Any;
    for _ in 0..8 {
        c = Constraint::Each(Box::new(c), 1);
    }
    assert!(Args::new([("m".to_owned(), c.clone())]).is_ok());
    let nine = Constraint::Each(Box::new(c), 1);
    assert_eq!(
        Args::new([("m".to_owned(), nine)]).unwrap_err().code(),
        "too_deep"
    );
}

#[test]
fn subpath_roots() {
    for ok in ["/", "/srv", "/srv/data", "/a/.b/c..", "/x\\y"] {
        assert!(
            Args::from_json(&json!({"p": {"subpath": ok}})).is_ok(),
            "{ok}"
        );
    }
}
