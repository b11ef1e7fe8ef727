//! Hand-written edge cases of the body reader (`docs/spec.md` §16): the source of
//! `tests/vectors/json/json_cases.json` (written by `json_vectors.rs`) and a corpus the
//! differential test runs against serde_json.

/// One body and what the reader must say about it.
pub(crate) struct Case {
    /// A stable name.
    pub(crate) name: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// `None` when valid; else the error's code and offset.
    pub(crate) error: Option<(&'static str, usize)>,
}

fn case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    error: Option<(&'static str, usize)>,
) -> Case {
    Case {
        name,
        body: body.into(),
        error,
    }
}

/// `{"a":` + `depth - 1` nested arrays + `}`: `depth` containers open at once.
fn nested(depth: usize) -> Vec<u8> {
    let mut b = b"{\"a\":".to_vec();
    b.extend(std::iter::repeat_n(b'[', depth - 1));
    b.extend(std::iter::repeat_n(b']', depth - 1));
    b.push(b'}');
    b
}

/// Every case, valid ones first. (The 1 MiB limit is tested in `json_differential.rs`: a
/// body that size does not belong in a vector file.)
pub(crate) fn cases() -> Vec<Case> {
    let ok = |name, body: &[u8]| case(name, body, None);
    let bad = |name, body: &[u8], code, at| case(name, body, Some((code, at)));
    let mut nested_objects = Vec::new();
    for _ in 0..32 {
        nested_objects.extend_from_slice(b"{\"o\":");
    }
    nested_objects.extend_from_slice(b"1");
    nested_objects.extend(std::iter::repeat_n(b'}', 32));
    let mut too_deep_objects = b"{\"o\":".to_vec();
    too_deep_objects.extend_from_slice(&nested_objects);
    too_deep_objects.push(b'}');
    vec![
        ok("empty_object", b"{}"),
        ok("spaced_empty_object", b" \t\r\n{ \t\r\n} \t\r\n"),
        ok("minus_zero", b"{\"n\":-0}"),
        ok("fraction", b"{\"n\":1.0}"),
        ok("exponent", b"{\"n\":1e2}"),
        ok("exponent_signs", b"{\"a\":1E+2,\"b\":-1e-2,\"c\":0.5e0}"),
        ok("i64_max", b"{\"n\":9223372036854775807}"),
        ok("i64_min", b"{\"n\":-9223372036854775808}"),
        ok("past_i64_max", b"{\"n\":9223372036854775808}"),
        ok("past_i64_min", b"{\"n\":-9223372036854775809}"),
        ok("escaped_nul", b"{\"s\":\"\\u0000\"}"),
        ok(
            "every_short_escape",
            b"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        ),
        ok("surrogate_pair", b"{\"s\":\"\\ud83d\\ude00\"}"),
        ok("raw_non_ascii", "{\"é\":\"😀\u{7f}\u{10ffff}\"}".as_bytes()),
        ok("depth_32_arrays", &nested(32)),
        ok("depth_32_objects", &nested_objects),
        ok(
            "literals",
            b"{\"t\":true,\"f\":false,\"n\":null,\"a\":[true,false,null]}",
        ),
        ok(
            "same_name_in_sibling_objects",
            b"{\"a\":{\"x\":1},\"b\":{\"x\":1}}",
        ),
        ok(
            "names_differ_after_unescaping",
            b"{\"a\":1,\"\\u0062\":2,\"a\\u0000\":3}",
        ),
        bad("empty_body", b"", "empty", 0),
        bad("whitespace_only", b" \n\t\r ", "empty", 5),
        bad("byte_order_mark", b"\xef\xbb\xbf{}", "byte_order_mark", 0),
        bad("invalid_utf8", b"{\"s\":\"\xff\"}", "invalid_utf8", 6),
        bad("overlong_utf8", b"{\"s\":\"\xc0\x80\"}", "invalid_utf8", 6),
        bad(
            "utf8_encoded_surrogate",
            b"{\"s\":\"\xed\xa0\x80\"}",
            "invalid_utf8",
            6,
        ),
        bad("truncated_utf8", b"{\"s\":\"\xe2\x82\"}", "invalid_utf8", 6),
        bad("depth_33_arrays", &nested(33), "too_deep", 36),
        bad("depth_33_objects", &too_deep_objects, "too_deep", 160),
        bad("leading_zero", b"{\"n\":01}", "invalid_number", 6),
        bad("dot_without_fraction", b"{\"n\":1.}", "invalid_number", 7),
        bad("fraction_without_integer", b"{\"n\":.5}", "syntax", 5),
        bad("plus_sign", b"{\"n\":+1}", "syntax", 5),
        bad("minus_alone", b"{\"n\":-}", "invalid_number", 6),
        bad(
            "exponent_without_digits",
            b"{\"n\":1e}",
            "invalid_number",
            7,
        ),
        bad("hex_number", b"{\"n\":0x1}", "syntax", 6),
        bad("nan", b"{\"n\":NaN}", "syntax", 5),
        bad(
            "control_character_in_string",
            b"{\"s\":\"a\tb\"}",
            "control_character",
            7,
        ),
        bad(
            "control_character_in_name",
            b"{\"\x1f\":1}",
            "control_character",
            2,
        ),
        bad("unknown_escape", b"{\"s\":\"\\a\"}", "invalid_escape", 6),
        bad(
            "short_unicode_escape",
            b"{\"s\":\"\\u00e\"}",
            "invalid_escape",
            6,
        ),
        bad(
            "lone_high_surrogate",
            b"{\"s\":\"\\ud800\"}",
            "lone_surrogate",
            6,
        ),
        bad(
            "lone_low_surrogate",
            b"{\"s\":\"\\udfff\"}",
            "lone_surrogate",
            6,
        ),
        bad(
            "reversed_surrogates",
            b"{\"s\":\"\\ude00\\ud83d\"}",
            "lone_surrogate",
            6,
        ),
        bad(
            "high_then_text",
            b"{\"s\":\"\\ud83dx\"}",
            "lone_surrogate",
            6,
        ),
        bad("duplicate", b"{\"a\":1,\"a\":2}", "duplicate_member", 7),
        bad(
            "duplicate_via_escape",
            b"{\"a\":1,\"\\u0061\":2}",
            "duplicate_member",
            7,
        ),
        bad(
            "duplicate_via_solidus",
            b"{\"/\":1,\"\\/\":2}",
            "duplicate_member",
            7,
        ),
        bad(
            "duplicate_nested",
            b"{\"x\":[{\"a\":1,\"b\":2,\"a\":3}]}",
            "duplicate_member",
            19,
        ),
        bad("trailing_comma_object", b"{\"a\":1,}", "syntax", 7),
        bad("trailing_comma_array", b"{\"a\":[1,]}", "syntax", 8),
        bad("trailing_garbage", b"{}x", "trailing_bytes", 2),
        bad("two_objects", b"{}{}", "trailing_bytes", 2),
        bad("form_feed_whitespace", b"{\x0c}", "syntax", 1),
        bad("nbsp_whitespace", "{\u{a0}}".as_bytes(), "syntax", 1),
        bad("single_quotes", b"{'a':1}", "syntax", 1),
        bad("unquoted_name", b"{a:1}", "syntax", 1),
        bad("unclosed_object", b"{\"a\":1", "syntax", 6),
        bad("unclosed_string", b"{\"a\":\"", "syntax", 6),
        bad("mismatched_bracket", b"{\"a\":[1}}", "syntax", 7),
        bad("top_level_array", b"[]", "not_an_object", 0),
        bad("top_level_string", b"\"x\"", "not_an_object", 0),
        bad("top_level_number", b" 1 ", "not_an_object", 1),
        bad("top_level_null", b"null", "not_an_object", 0),
    ]
}
