//! `cli_parse`: text through the parsers of the command line and signing profiles
//! (`docs/spec.md` §10) and the verifier's tool grammar.
//!
//! Proves, for every text: nothing panics; what parses round-trips through its display
//! form ([`ToolSpec`], class lists, durations written back as `XhYmZs`, envelope text);
//! a parsed duration is accepted as a TTL by the builder exactly when it is within
//! `1..=MAX_TTL`; [`is_tool_name`] agrees with an independent reading of the grammar
//! (dot-separated segments of 1 to 64 of `a-z 0-9 _ -`), and [`ToolPattern::matches`] with the
//! contract's rule (`ns.*` matches names strictly below `ns`, `*` everything, a name itself).
//!
//! The input is read as UTF-8 (invalid sequences replaced); the grammar checks also run on
//! the two halves around the first newline, as (pattern, name) pairs.

use laissez_sign::{
    BuildError, EnvelopeBuilder, MAX_TTL, SpecError, ToolSpec, decode_input, decode_text,
    encode_text, parse_classes, parse_duration,
};
use laissez_verify::tools::{MAX_SEGMENT_LEN, ToolPattern, is_tool_name, is_tool_pattern};
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::{ActionClass, Request};

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    duration(&text);
    classes(&text);
    tool_spec(&text);
    grammar(&text);
    let (first, second) = text.split_once('\n').unwrap_or((&text, ""));
    for s in [first, second] {
        grammar(s);
        tool_spec(s);
    }
    matching(first, second);
    matching(second, first);
    envelope_text(data, &text);
}

fn duration(text: &str) {
    match parse_duration(text) {
        Ok(secs) => {
            assert!(
                text.trim()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"hms".contains(&b)),
                "a duration parsed from {text:?}"
            );
            let canonical = format!("{}h{}m{}s", secs / 3600, secs / 60 % 60, secs % 60);
            assert_eq!(
                parse_duration(&canonical),
                Ok(secs),
                "{canonical} != {secs}s"
            );
            // The signer's bound: a TTL is accepted exactly when it is 1 s to MAX_TTL.
            let builder = EnvelopeBuilder::new("agent")
                .audience("q")
                .tool("t")
                .ttl_secs(secs);
            match builder.validate() {
                Ok(()) => assert!((1..=MAX_TTL).contains(&secs), "TTL {secs} accepted"),
                Err(BuildError::TtlZero) => assert_eq!(secs, 0),
                Err(BuildError::TtlTooLong(n)) => assert!(n == secs && secs > MAX_TTL),
                Err(e) => panic!("a valid builder refused with TTL {secs}: {e}"),
            }
        }
        Err(e) => assert!(matches!(e, SpecError::Duration(_)), "{e:?}"),
    }
}

fn classes(text: &str) {
    match parse_classes(text) {
        Ok(set) => {
            assert!((1..=7).contains(&set.bits()));
            let shown = set.to_string();
            assert_eq!(
                parse_classes(&shown),
                Ok(set),
                "{shown:?} does not parse back"
            );
            for class in set.iter() {
                assert!(
                    text.contains(class.name()),
                    "{class} out of nowhere in {text:?}"
                );
            }
        }
        Err(e) => assert!(!e.code().is_empty() && !e.to_string().is_empty()),
    }
}

fn tool_spec(text: &str) {
    match text.parse::<ToolSpec>() {
        Ok(spec) => {
            assert!(
                is_tool_pattern(&spec.pattern),
                "{:?} out of grammar",
                spec.pattern
            );
            let shown = spec.to_string();
            assert_eq!(shown.parse::<ToolSpec>().as_ref(), Ok(&spec), "{shown:?}");
            if !text.contains('=') {
                assert_eq!(spec.pattern, text);
                assert_eq!(spec.classes, None);
            }
        }
        Err(SpecError::ToolPattern(p)) => assert!(!is_tool_pattern(&p), "{p:?} refused"),
        Err(e) => assert!(!e.code().is_empty()),
    }
}

/// The tool-name grammar read directly from its definition.
fn is_name_reference(s: &str) -> bool {
    s.split('.').all(|segment| {
        (1..=MAX_SEGMENT_LEN).contains(&segment.len())
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

/// The pattern's verdict through the one public matcher.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    ToolPattern::new(pattern).is_ok_and(|p| p.matches(name))
}

fn grammar(s: &str) {
    let name = is_tool_name(s);
    assert_eq!(name, is_name_reference(s), "is_tool_name({s:?}) = {name}");
    let pattern = is_tool_pattern(s);
    let pattern_reference = s == "*" || is_name_reference(s.strip_suffix(".*").unwrap_or(s));
    assert_eq!(
        pattern, pattern_reference,
        "is_tool_pattern({s:?}) = {pattern}"
    );
    assert_eq!(Request::new(s, ActionClass::Read).is_ok(), name);
    if name {
        assert!(pattern);
        assert!(pattern_matches(s, s) && pattern_matches("*", s));
        let below = format!("{s}.*");
        assert!(is_tool_pattern(&below));
        assert!(!pattern_matches(&below, s), "{below} matches {s}");
        assert!(pattern_matches(&below, &format!("{s}.x")));
    }
}

fn matching(pattern: &str, name: &str) {
    if !is_tool_pattern(pattern) || !is_tool_name(name) {
        return;
    }
    let expected = match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(ns) => name
            .strip_prefix(ns)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == name,
    };
    assert_eq!(
        pattern_matches(pattern, name),
        expected,
        "{pattern:?} vs {name:?}"
    );
}

fn envelope_text(data: &[u8], text: &str) {
    if let Ok(bytes) = decode_text(text) {
        assert_eq!(decode_text(&encode_text(&bytes)), Ok(bytes));
    }
    if let Ok(bytes) = decode_input(data)
        && data.first() == Some(&ENVELOPE_FIRST_BYTE)
    {
        assert_eq!(bytes, data, "raw input changed");
    }
}
