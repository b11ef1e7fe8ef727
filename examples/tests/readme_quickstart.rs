//! The README's "The quickstart" section shows one run's output: it must be what the
//! quickstart prints, line for line. Only the random parts differ between runs (the kids, the
//! envelope's text and an envelope id), and they are compared by shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The ```text block of the README's "## The quickstart" section.
fn readme_output() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split_once("\n## The quickstart\n")
        .expect("README has a quickstart section")
        .1;
    let block = section
        .split_once("```text\n")
        .expect("the section shows the output in a ```text block")
        .1;
    block.split_once("```").unwrap().0.to_owned()
}

/// `line` with its random parts replaced: a 16-hex-digit kid after `kid `, the
/// 32-hex-digit envelope id after `laissez-cti: `, and the envelope's text (a line of
/// base64url after the indent) by its length.
fn shape(line: &str) -> String {
    if let Some(text) = line.strip_prefix("          ")
        && !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return format!("          <{} base64url characters>", text.len());
    }
    let line = hide_hex(line, "kid ", 16, "<kid>");
    hide_hex(&line, "laissez-cti: ", 32, "<cti>")
}

/// `line` with each run of `digits` lowercase hex digits after `marker` replaced by `mask`.
fn hide_hex(line: &str, marker: &str, digits: usize, mask: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let hex = rest.get(..digits).unwrap_or("");
        if hex.len() == digits
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            out.push_str(mask);
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_readme_shows_what_the_quickstart_prints() {
    let mut out = Vec::new();
    laissez_examples::quickstart(&mut out).unwrap();
    let printed = String::from_utf8(out).unwrap();
    let shown = readme_output();
    let printed: Vec<String> = printed.lines().map(shape).collect();
    let shown: Vec<String> = shown.lines().map(shape).collect();
    for (n, (p, s)) in printed.iter().zip(&shown).enumerate() {
        assert_eq!(
            p,
            s,
            "line {} of the README's quickstart output differs",
            n + 1
        );
    }
    assert_eq!(
        printed.len(),
        shown.len(),
        "the README shows {} lines, the quickstart prints {}",
        shown.len(),
        printed.len()
    );
}

#[test]
fn the_shape_hides_only_the_random_parts() {
    assert_eq!(
        shape("key       generated from the OS RNG, kid c2c0504e2d2485d4"),
        "key       generated from the OS RNG, kid <kid>"
    );
    assert_eq!(
        shape("          0oRNogEnBEjCwFBO-_"),
        "          <18 base64url characters>"
    );
    assert_eq!(shape(" 1. allowed -> ALLOWED"), " 1. allowed -> ALLOWED");
    assert_eq!(shape("kid C2C0504E2D2485D4"), "kid C2C0504E2D2485D4");
    assert_eq!(
        shape("laissez-cti: 48b153cfac2073a0a52e0a619f41a2c2; laissez-use: 1"),
        "laissez-cti: <cti>; laissez-use: 1"
    );
    assert_eq!(
        shape("laissez-cti: 48b153cfac2073a0; laissez-use: 1"),
        "laissez-cti: 48b153cfac2073a0; laissez-use: 1"
    );
}
