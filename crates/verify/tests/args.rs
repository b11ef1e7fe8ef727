//! Arguments (`docs/spec.md` §16): every constraint kind holding and failing on a body, the
//! detail that names the member, and every narrowing rule holding and failing. The cases are
//! committed as vectors (`tests/vectors/args.json`, args in both their JSON form and CBOR)
//! for other implementations; regenerate with
//! `LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --all-features --test args`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::args::Args;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::{ActionClass, Denial, Presented, Request, TrustedKey, Verifier};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use support::*;

const FILE: &str = "tests/vectors/args.json";
const TOOL: &str = "files.read";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Satisfy {
    name: String,
    /// The args in §16's JSON form, and their CBOR (hex).
    args: Json,
    args_cbor: String,
    /// The body, as text.
    body: String,
    /// `allowed`, or the member path the detail names (`body` for the body itself).
    expect: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Narrow {
    name: String,
    child: Json,
    child_cbor: String,
    parent: Json,
    parent_cbor: String,
    /// `narrower`, or `RULE at PATH`.
    expect: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct VectorFile {
    description: String,
    regenerate: String,
    satisfy: Vec<Satisfy>,
    narrow: Vec<Narrow>,
}

fn satisfy_cases() -> Vec<(&'static str, Json, &'static str, &'static str)> {
    vec![
        (
            "any",
            json!({"a": "any"}),
            r#"{"a": [1, {"x": null}]}"#,
            "allowed",
        ),
        ("any_absent", json!({"a": "any"}), r#"{}"#, "a"),
        ("closed", json!({"a": "any"}), r#"{"a": 1, "b": 2}"#, "b"),
        (
            "wildcard_opens",
            json!({"a": "any", "*": {"max_len": 3}}),
            r#"{"a": 1, "b": "xyz"}"#,
            "allowed",
        ),
        (
            "wildcard_constrains",
            json!({"*": {"max_len": 3}}),
            r#"{"b": "wxyz"}"#,
            "b",
        ),
        (
            "optional_absent",
            json!({"a": {"optional": {"eq": 1}}}),
            r#"{}"#,
            "allowed",
        ),
        (
            "optional_present_fails",
            json!({"a": {"optional": {"eq": 1}}}),
            r#"{"a": 2}"#,
            "a",
        ),
        (
            "eq_text",
            json!({"env": {"eq": "prod"}}),
            r#"{"env": "prod"}"#,
            "allowed",
        ),
        (
            "eq_text_escaped",
            json!({"env": {"eq": "prod"}}),
            r#"{"env": "pr\u006fd"}"#,
            "allowed",
        ),
        (
            "eq_like_with_like",
            json!({"n": {"eq": 1}}),
            r#"{"n": "1"}"#,
            "n",
        ),
        (
            "eq_not_integer",
            json!({"n": {"eq": 1}}),
            r#"{"n": 1.0}"#,
            "n",
        ),
        (
            "eq_exponent",
            json!({"n": {"eq": 100}}),
            r#"{"n": 1e2}"#,
            "n",
        ),
        (
            "eq_minus_zero",
            json!({"n": {"eq": 0}}),
            r#"{"n": -0}"#,
            "allowed",
        ),
        (
            "eq_bool",
            json!({"f": {"eq": true}}),
            r#"{"f": true}"#,
            "allowed",
        ),
        (
            "eq_null",
            json!({"f": {"eq": null}}),
            r#"{"f": false}"#,
            "f",
        ),
        (
            "one_of",
            json!({"env": {"one_of": ["dev", "staging"]}}),
            r#"{"env": "staging"}"#,
            "allowed",
        ),
        (
            "one_of_fails",
            json!({"env": {"one_of": ["dev", "staging"]}}),
            r#"{"env": "prod"}"#,
            "env",
        ),
        (
            "not_one_of",
            json!({"env": {"not_one_of": ["prod", 1]}}),
            r#"{"env": "dev"}"#,
            "allowed",
        ),
        (
            "not_one_of_fails",
            json!({"env": {"not_one_of": ["prod", 1]}}),
            r#"{"env": "prod"}"#,
            "env",
        ),
        (
            "not_one_of_no_scalar",
            json!({"env": {"not_one_of": ["prod"]}}),
            r#"{"env": ["dev"]}"#,
            "env",
        ),
        (
            "not_one_of_no_integer",
            json!({"env": {"not_one_of": ["prod"]}}),
            r#"{"env": 2.5}"#,
            "env",
        ),
        (
            "range",
            json!({"amount": {"range": [0, 500]}}),
            r#"{"amount": 500}"#,
            "allowed",
        ),
        (
            "range_above",
            json!({"amount": {"range": [0, 500]}}),
            r#"{"amount": 501}"#,
            "amount",
        ),
        (
            "range_unbounded_low",
            json!({"amount": {"range": [null, 5]}}),
            r#"{"amount": -9223372036854775808}"#,
            "allowed",
        ),
        (
            "range_huge",
            json!({"amount": {"range": [0, null]}}),
            r#"{"amount": 9223372036854775808}"#,
            "amount",
        ),
        (
            "range_fraction",
            json!({"amount": {"range": [0, 500]}}),
            r#"{"amount": 5.5}"#,
            "amount",
        ),
        (
            "prefix",
            json!({"to": {"prefix": "ops-"}}),
            r#"{"to": "ops-team"}"#,
            "allowed",
        ),
        (
            "prefix_fails",
            json!({"to": {"prefix": "ops-"}}),
            r#"{"to": "dev-ops-"}"#,
            "to",
        ),
        (
            "suffix_email_domain",
            json!({"to": {"suffix": "@acme.example"}}),
            r#"{"to": "a@acme.example"}"#,
            "allowed",
        ),
        (
            "suffix_fails",
            json!({"to": {"suffix": "@acme.example"}}),
            r#"{"to": "a@acme.example.evil"}"#,
            "to",
        ),
        (
            "suffix_escaped",
            json!({"to": {"suffix": "@acme.example"}}),
            r#"{"to": "a\u0040acme.example"}"#,
            "allowed",
        ),
        (
            "subpath",
            json!({"path": {"subpath": "/srv/data"}}),
            r#"{"path": "/srv/data/x/../y.csv"}"#,
            "allowed",
        ),
        (
            "subpath_escape",
            json!({"path": {"subpath": "/srv/data"}}),
            r#"{"path": "/srv/data/../../etc/shadow"}"#,
            "path",
        ),
        (
            "subpath_sibling",
            json!({"path": {"subpath": "/srv/data"}}),
            r#"{"path": "/srv/database"}"#,
            "path",
        ),
        (
            "subpath_relative",
            json!({"path": {"subpath": "/srv/data"}}),
            r#"{"path": "srv/data"}"#,
            "path",
        ),
        (
            "subpath_nul",
            json!({"path": {"subpath": "/srv/data"}}),
            r#"{"path": "/srv/data/a\u0000"}"#,
            "path",
        ),
        (
            "max_len_bytes",
            json!({"s": {"max_len": 2}}),
            r#"{"s": "é"}"#,
            "allowed",
        ),
        (
            "max_len_fails",
            json!({"s": {"max_len": 2}}),
            r#"{"s": "éa"}"#,
            "s",
        ),
        (
            "object",
            json!({"o": {"object": {"id": {"range": [1, 9]}}}}),
            r#"{"o": {"id": 3}}"#,
            "allowed",
        ),
        (
            "object_nested_fails",
            json!({"o": {"object": {"id": {"range": [1, 9]}}}}),
            r#"{"o": {"id": 30}}"#,
            "o.id",
        ),
        (
            "object_closed",
            json!({"o": {"object": {"id": "any"}}}),
            r#"{"o": {"id": 3, "x": 1}}"#,
            "o.x",
        ),
        (
            "object_not_object",
            json!({"o": {"object": {"id": "any"}}}),
            r#"{"o": [3]}"#,
            "o",
        ),
        (
            "each",
            json!({"items": {"each": {"object": {"sku": {"prefix": "A-"}}}, "max_items": 3}}),
            r#"{"items": [{"sku": "A-1"}, {"sku": "A-2"}]}"#,
            "allowed",
        ),
        (
            "each_item_fails",
            json!({"items": {"each": {"object": {"sku": {"prefix": "A-"}}}, "max_items": 3}}),
            r#"{"items": [{"sku": "A-1"}, {"sku": "A-2"}, {"sku": "B-3"}]}"#,
            "items[2].sku",
        ),
        (
            "each_too_many",
            json!({"items": {"each": "any", "max_items": 1}}),
            r#"{"items": [1, 2]}"#,
            "items",
        ),
        (
            "all",
            json!({"to": {"all": [{"suffix": "@acme.example"}, {"max_len": 20}]}}),
            r#"{"to": "a@acme.example"}"#,
            "allowed",
        ),
        (
            "all_fails",
            json!({"to": {"all": [{"suffix": "@acme.example"}, {"max_len": 5}]}}),
            r#"{"to": "a@acme.example"}"#,
            "to",
        ),
        ("body_not_object", json!({"a": "any"}), r#"[1]"#, "body"),
        (
            "body_duplicate",
            json!({"a": "any"}),
            r#"{"a": 1, "\u0061": 2}"#,
            "body",
        ),
        (
            "body_duplicate_nested",
            json!({"a": "any"}),
            r#"{"a": {"x": 1, "x": 1}}"#,
            "body",
        ),
        (
            "body_lone_surrogate",
            json!({"a": "any"}),
            r#"{"a": "\ud800"}"#,
            "body",
        ),
        (
            "body_trailing",
            json!({"a": "any"}),
            r#"{"a": 1} x"#,
            "body",
        ),
        (
            "member_name_escaped",
            json!({"a b": {"eq": 1}}),
            r#"{"a\u0020b": 1}"#,
            "allowed",
        ),
    ]
}

fn narrow_cases() -> Vec<(&'static str, Json, Json, &'static str)> {
    vec![
        // Rule 1: p any.
        (
            "any_parent",
            json!({"a": {"eq": 1}}),
            json!({"a": "any"}),
            "narrower",
        ),
        // Rule 2: p all: narrower than each.
        (
            "all_parent",
            json!({"a": {"range": [1, 5]}}),
            json!({"a": {"all": [{"range": [0, 9]}, {"range": [1, null]}]}}),
            "narrower",
        ),
        (
            "all_parent_fails",
            json!({"a": {"range": [0, 5]}}),
            json!({"a": {"all": [{"range": [0, 9]}, {"range": [1, null]}]}}),
            "wider at a",
        ),
        // Rule 3: c all: one of c's.
        (
            "all_child",
            json!({"a": {"all": [{"max_len": 9}, {"prefix": "x"}]}}),
            json!({"a": {"prefix": "x"}}),
            "narrower",
        ),
        (
            "all_child_fails",
            json!({"a": {"all": [{"max_len": 9}, {"suffix": "x"}]}}),
            json!({"a": {"prefix": "x"}}),
            "wider at a",
        ),
        // Rule 4: eq / one_of against p as a body value.
        (
            "eq_in_range",
            json!({"a": {"eq": 5}}),
            json!({"a": {"range": [0, 9]}}),
            "narrower",
        ),
        (
            "eq_out_of_range",
            json!({"a": {"eq": 50}}),
            json!({"a": {"range": [0, 9]}}),
            "wider at a",
        ),
        (
            "one_of_in_one_of",
            json!({"a": {"one_of": ["dev"]}}),
            json!({"a": {"one_of": ["dev", "qa"]}}),
            "narrower",
        ),
        (
            "one_of_prefix",
            json!({"a": {"one_of": ["ops-1", "ops-2"]}}),
            json!({"a": {"prefix": "ops-"}}),
            "narrower",
        ),
        (
            "one_of_fails",
            json!({"a": {"one_of": ["dev", "prod"]}}),
            json!({"a": {"not_one_of": ["prod"]}}),
            "wider at a",
        ),
        (
            "eq_optional_parent",
            json!({"a": {"eq": 1}}),
            json!({"a": {"optional": {"range": [0, 2]}}}),
            "narrower",
        ),
        // Rule 5: p optional.
        (
            "optional_both",
            json!({"a": {"optional": {"max_len": 3}}}),
            json!({"a": {"optional": {"max_len": 5}}}),
            "narrower",
        ),
        (
            "optional_made_required",
            json!({"a": {"max_len": 3}}),
            json!({"a": {"optional": {"max_len": 5}}}),
            "narrower",
        ),
        // Rule 6: c optional, p not.
        (
            "optional_child",
            json!({"a": {"optional": {"max_len": 3}}}),
            json!({"a": {"max_len": 5}}),
            "made_optional at a",
        ),
        // Rule 7: same kinds.
        (
            "range_within",
            json!({"a": {"range": [2, 3]}}),
            json!({"a": {"range": [1, 5]}}),
            "narrower",
        ),
        (
            "range_unbounded_under_bounded",
            json!({"a": {"range": [null, 3]}}),
            json!({"a": {"range": [1, 5]}}),
            "wider at a",
        ),
        (
            "range_under_unbounded",
            json!({"a": {"range": [2, 3]}}),
            json!({"a": {"range": [null, 10]}}),
            "narrower",
        ),
        (
            "prefix_longer",
            json!({"a": {"prefix": "ops-eu-"}}),
            json!({"a": {"prefix": "ops-"}}),
            "narrower",
        ),
        (
            "prefix_other",
            json!({"a": {"prefix": "dev-"}}),
            json!({"a": {"prefix": "ops-"}}),
            "wider at a",
        ),
        (
            "suffix_longer",
            json!({"a": {"suffix": ".eu.acme.example"}}),
            json!({"a": {"suffix": ".acme.example"}}),
            "narrower",
        ),
        (
            "subpath_below",
            json!({"p": {"subpath": "/srv/data/in"}}),
            json!({"p": {"subpath": "/srv/data"}}),
            "narrower",
        ),
        (
            "subpath_sibling",
            json!({"p": {"subpath": "/srv/database"}}),
            json!({"p": {"subpath": "/srv/data"}}),
            "wider at p",
        ),
        (
            "max_len_less",
            json!({"s": {"max_len": 3}}),
            json!({"s": {"max_len": 5}}),
            "narrower",
        ),
        (
            "max_len_more",
            json!({"s": {"max_len": 7}}),
            json!({"s": {"max_len": 5}}),
            "wider at s",
        ),
        (
            "not_one_of_superset",
            json!({"e": {"not_one_of": ["prod", "qa"]}}),
            json!({"e": {"not_one_of": ["prod"]}}),
            "narrower",
        ),
        (
            "not_one_of_subset",
            json!({"e": {"not_one_of": ["qa"]}}),
            json!({"e": {"not_one_of": ["prod"]}}),
            "wider at e",
        ),
        (
            "object_narrower",
            json!({"o": {"object": {"id": {"eq": 3}}}}),
            json!({"o": {"object": {"id": {"range": [1, 9]}}}}),
            "narrower",
        ),
        (
            "object_wider",
            json!({"o": {"object": {"id": {"eq": 30}}}}),
            json!({"o": {"object": {"id": {"range": [1, 9]}}}}),
            "wider at o.id",
        ),
        (
            "each_narrower",
            json!({"i": {"each": {"max_len": 3}, "max_items": 2}}),
            json!({"i": {"each": {"max_len": 5}, "max_items": 4}}),
            "narrower",
        ),
        (
            "each_more_items",
            json!({"i": {"each": {"max_len": 3}, "max_items": 9}}),
            json!({"i": {"each": {"max_len": 5}, "max_items": 4}}),
            "wider at i",
        ),
        // Rule 8: different kinds are never narrower, even when they would be in fact.
        (
            "range_vs_one_of",
            json!({"a": {"range": [1, 2]}}),
            json!({"a": {"one_of": [1, 2]}}),
            "wider at a",
        ),
        (
            "prefix_vs_max_len",
            json!({"a": {"prefix": "x"}}),
            json!({"a": {"max_len": 5}}),
            "wider at a",
        ),
        // Members.
        (
            "member_not_named",
            json!({"a": "any", "b": "any"}),
            json!({"a": "any"}),
            "not_named at b",
        ),
        (
            "member_under_wildcard",
            json!({"a": "any", "b": {"max_len": 2}}),
            json!({"a": "any", "*": {"max_len": 4}}),
            "narrower",
        ),
        (
            "required_missing",
            json!({"a": "any"}),
            json!({"a": "any", "b": {"eq": 1}}),
            "required at b",
        ),
        (
            "optional_may_be_dropped",
            json!({"a": "any"}),
            json!({"a": "any", "b": {"optional": {"eq": 1}}}),
            "narrower",
        ),
        (
            "wildcard_without_parent",
            json!({"a": "any", "*": {"max_len": 1}}),
            json!({"a": "any"}),
            "opened at *",
        ),
        (
            "wildcard_narrower",
            json!({"*": {"max_len": 1}}),
            json!({"*": {"max_len": 4}}),
            "narrower",
        ),
        (
            "wildcard_against_named",
            json!({"*": {"max_len": 1}}),
            json!({"a": {"optional": {"eq": "x"}}, "*": "any"}),
            "wider at *",
        ),
    ]
}

fn generate() -> VectorFile {
    let hex_of = |form: &Json| hex::encode(args_cbor(form));
    VectorFile {
        description: "laissez v1 args vectors (docs/spec.md §16): args in JSON form and CBOR, a \
                      body and the member its failure names; child and parent args and whether \
                      the child is narrower (else the rule and member)"
            .into(),
        regenerate:
            "LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --all-features --test args".into(),
        satisfy: satisfy_cases()
            .into_iter()
            .map(|(name, args, body, expect)| Satisfy {
                name: name.into(),
                args_cbor: hex_of(&args),
                args,
                body: body.into(),
                expect: expect.into(),
            })
            .collect(),
        narrow: narrow_cases()
            .into_iter()
            .map(|(name, child, parent, expect)| Narrow {
                name: name.into(),
                child_cbor: hex_of(&child),
                child,
                parent_cbor: hex_of(&parent),
                parent,
                expect: expect.into(),
            })
            .collect(),
    }
}

#[test]
fn committed_vectors_match_the_generator() {
    let file = generate();
    let json = serde_json::to_string_pretty(&file).unwrap() + "\n";
    if std::env::var_os("LAISSEZ_REGEN_VECTORS").is_some() {
        std::fs::write(FILE, &json).unwrap();
    }
    let committed = std::fs::read_to_string(FILE).expect("tests/vectors/args.json");
    // Compared as JSON values: the order of an object's members in the text depends on
    // whether serde_json keeps insertion order, a feature another crate of the workspace
    // turns on; the vectors are the same either way.
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(
        committed == serde_json::to_value(&file).unwrap(),
        "{FILE} differs from the generator; regenerate with: {}",
        file.regenerate
    );
}

/// An envelope granting files.read (read) with `args` (CBOR), signed by the trusted key.
fn envelope_with(args: &[u8]) -> Vec<u8> {
    let mut grant = RawGrant::standard();
    grant.set(
        1,
        raw_array(&[raw_array(&[text(TOOL), int(1), args.to_vec()])]),
    );
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    envelope(&key_for(1), &claims.encode())
}

fn committed() -> VectorFile {
    serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap()
}

#[test]
fn every_body_vector_gives_its_outcome_through_the_gate() {
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let verifier = Verifier::new(&keys, "billing");
    let file = committed();
    assert!(file.satisfy.len() >= 50);
    let mut failures = vec![];
    for v in &file.satisfy {
        let env = envelope_with(&hex::decode(&v.args_cbor).unwrap());
        let links: [&[u8]; 1] = [&env];
        let request = Request::new(TOOL, ActionClass::Read).unwrap();
        let presented = Presented::new(&links)
            .request(request)
            .body(v.body.as_bytes());
        let got = match verifier.decide(&presented, NOW) {
            Ok(_) => "allowed".to_owned(),
            Err(refused) => match refused.denial() {
                Denial::ArgumentsNotGranted(path) => path.to_string(),
                other => format!("unexpected {other:?}"),
            },
        };
        if got != v.expect {
            failures.push(format!("{}: expected {}, got {got}", v.name, v.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The args of the single tool grant of an envelope built around `cbor`.
fn decoded(env: &[u8]) -> Args<'_> {
    UntrustedEnvelope::decode(env)
        .unwrap()
        .claims_unverified()
        .unwrap()
        .tools()
        .next()
        .unwrap()
        .args
        .unwrap()
}

#[test]
fn every_narrowing_vector_gives_its_outcome() {
    let file = committed();
    assert!(file.narrow.len() >= 35);
    let mut failures = vec![];
    for v in &file.narrow {
        let child_env = envelope_with(&hex::decode(&v.child_cbor).unwrap());
        let parent_env = envelope_with(&hex::decode(&v.parent_cbor).unwrap());
        let got = match decoded(&child_env).narrower_than(&decoded(&parent_env)) {
            Ok(()) => "narrower".to_owned(),
            Err(why) => format!("{} at {}", why.rule.code(), why.path),
        };
        if got != v.expect {
            failures.push(format!("{}: expected {}, got {got}", v.name, v.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
