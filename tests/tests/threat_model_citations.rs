//! The threat model cites a test for each claim: every citation must name something that
//! exists, so a renamed or deleted test cannot leave a claim standing without its proof.
//!
//! Forms checked (docs/threat-model.md, "How to read the tables"):
//! - `` `path.rs::name` ``: `path.rs` exists and defines `fn name`;
//! - *vector* / *vectors* `` `name` ``: an entry of the committed envelope vectors;
//! - *scenario* `` `name` ``: a function in the ledger's shared test scenarios;
//! - *fuzz* `` `target` ``: a cargo-fuzz target.
//!
//! This reads sources only: that a cited `path.rs::name` is a compiled, not ignored `#[test]`
//! of the binary that builds `path.rs` (not cfg'd out, not a plain function) is checked from
//! the test binaries' own `--list` by `scripts/check-tests`, for every document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;

use laissez_test_support::repo_root;

/// Stands for an earlier span in the text before a span.
const SPAN: char = '\u{1}';

/// The backticked spans of `text`, each with what stands before it on its line (earlier
/// spans replaced by [`SPAN`]).
fn backticked(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        let mut before = String::new();
        while let Some(open) = rest.find('`') {
            before.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('`') else { break };
            out.push((before.clone(), after[..close].to_owned()));
            before.push(SPAN);
            rest = &after[close + 1..];
        }
    }
    out
}

/// The word (vector, scenario, fuzz) a span belongs to: the last such word before it on
/// its line, with only earlier spans, commas and spaces between (`vectors `a`, `b``).
fn kind_of(before: &str) -> Option<&'static str> {
    let (at, word) = ["vectors", "vector", "scenario", "fuzz"]
        .iter()
        .filter_map(|w| before.rfind(w).map(|at| (at, *w)))
        .max_by_key(|(at, w)| (*at, w.len()))?;
    let between = &before[at + word.len()..];
    if !between.chars().all(|c| c == SPAN || c == ',' || c == ' ') {
        return None;
    }
    Some(match word {
        "vectors" | "vector" => "vector",
        "scenario" => "scenario",
        _ => "fuzz",
    })
}

#[test]
fn every_test_the_threat_model_cites_exists() {
    let root = repo_root();
    let model = fs::read_to_string(root.join("docs/threat-model.md")).unwrap();
    let vectors: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root.join("crates/verify/tests/vectors/envelopes.json")).unwrap(),
    )
    .unwrap();
    let vector_names: BTreeSet<&str> = vectors["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    // The shared scenarios: `common/mod.rs` and the modules beside it (budgets, chains, ...).
    let mut scenarios = String::new();
    for entry in fs::read_dir(root.join("crates/ledger/tests/common")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            scenarios.push_str(&fs::read_to_string(path).unwrap());
        }
    }

    let mut missing = Vec::new();
    let mut checked = 0;
    // The legend above "## 1." shows the forms with placeholder names.
    let body = model
        .split_once("\n## 1.")
        .map_or(model.as_str(), |(_, body)| body);
    for (before, span) in backticked(body) {
        if let Some((path, name)) = span.split_once("::")
            && path.ends_with(".rs")
        {
            checked += 1;
            match fs::read_to_string(root.join(path)) {
                Ok(source) if defines_fn(&source, name) => {}
                Ok(_) => missing.push(format!("{span}: no `fn {name}` in {path}")),
                Err(_) => missing.push(format!("{span}: no file {path}")),
            }
            continue;
        }
        match kind_of(&before) {
            Some("vector") if is_identifier(&span) => {
                checked += 1;
                if !vector_names.contains(span.as_str()) {
                    missing.push(format!("vector `{span}` is not in envelopes.json"));
                }
            }
            Some("scenario") if is_identifier(&span) => {
                checked += 1;
                if !defines_fn(&scenarios, &span) {
                    missing.push(format!(
                        "scenario `{span}` is not in the ledger's scenarios"
                    ));
                }
            }
            Some("fuzz") if is_identifier(&span) => {
                checked += 1;
                if !root.join(format!("fuzz/fuzz_targets/{span}.rs")).exists() {
                    missing.push(format!("fuzz target `{span}` does not exist"));
                }
            }
            _ => {}
        }
    }
    assert!(
        missing.is_empty(),
        "stale citations:\n{}",
        missing.join("\n")
    );
    // The parser must have found the citations: a threat model with none is suspicious.
    assert!(checked > 50, "only {checked} citations found");
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn defines_fn(source: &str, name: &str) -> bool {
    source.lines().any(|line| {
        let line = line.trim_start();
        [
            "fn ",
            "async fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(crate) async fn ",
        ]
        .iter()
        .any(|prefix| {
            line.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
        })
    })
}

#[test]
fn the_checker_finds_a_stale_citation() {
    // Guards the guard: a made-up test name must be reported.
    let source = "fn real_test() {}\n    async fn other<T>() {}";
    assert!(defines_fn(source, "real_test"));
    assert!(defines_fn(source, "other"));
    assert!(!defines_fn(source, "real"));
    assert!(!defines_fn(source, "made_up"));
    let spans = backticked("vectors `a`, `b`; scenario `c` and `d`; fuzz `e`");
    let kinds: Vec<_> = spans.iter().map(|(b, _)| kind_of(b)).collect();
    assert_eq!(
        kinds,
        [
            Some("vector"),
            Some("vector"),
            Some("scenario"),
            None,
            Some("fuzz")
        ]
    );
}
