//! `sign` and `delegate` with `--args`, `--budget` and `--approval-unless` on the real binary
//! (`docs/spec.md` §10, §12, §16, §17): every usage error is exit 2 and says what is wrong
//! and where; what is signed is what was asked for, as `inspect --json` shows it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{AGENT, Dir, stderr, stdout};
use serde_json::{Value, json};

const REFUND: &str = "billing.refund";

fn dir_with_keys() -> Dir {
    let dir = Dir::new();
    for name in ["iss", "a", "b", "agent", "sub"] {
        dir.keygen(name);
    }
    dir
}

/// `sign` with the standard grant (billing.refund, write) and `extra`.
fn sign_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sign",
        "--key",
        "iss",
        "--agent",
        AGENT,
        "--aud",
        "billing-queue",
        "--tool",
        "billing.refund",
        "--classes",
        "write",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs it, expects exit 2, returns stderr.
fn usage_error(dir: &Dir, args: &[&str]) -> String {
    let out = dir.laissez(args).assert().code(2);
    stderr(out.get_output())
}

#[test]
fn args_json_that_is_not_the_json_form_is_exit_2_naming_what_and_where() {
    let dir = dir_with_keys();
    let cases = [
        (
            r#"billing.refund={"amount": {"range": [10, 5]}}"#,
            "at amount.range: min 10 is above max 5",
        ),
        (
            r#"billing.refund={"amount": "any", "amount": {"eq": 1}}"#,
            "the member \"amount\" is repeated",
        ),
        (
            r#"billing.refund={"amount": {"eq": 1.5}}"#,
            "at amount.eq: 1.5 is not an integer",
        ),
        (
            r#"billing.refund={"items": {"each": "any"}}"#,
            "at items: the field \"max_items\" is required",
        ),
        (
            r#"billing.refund={"amount": {"between": [1, 2]}}"#,
            "no constraint is called \"between\"",
        ),
        (
            r#"billing.refund={"*": {"optional": "any"}}"#,
            "the constraint of \"*\" is never optional",
        ),
        (
            r#"billing.refund={"path": {"subpath": "/srv/../etc"}}"#,
            "at path.subpath: subpath root must not hold a . or .. segment",
        ),
        (r#"billing.refund={"amount": "any""#, "not JSON"),
        (r#"billing.refund"#, "is not PATTERN=JSON"),
    ];
    for (value, says) in cases {
        let err = usage_error(&dir, &sign_args(&["--args", value]));
        assert!(err.contains(says), "--args {value}: {err}");
    }
}

#[test]
fn args_for_a_pattern_no_tool_names_or_given_twice_is_exit_2() {
    let dir = dir_with_keys();
    let err = usage_error(
        &dir,
        &sign_args(&["--args", r#"billing.*={"amount": "any"}"#]),
    );
    assert!(err.contains("\"billing.*\""), "{err}");
    assert!(err.contains("no tool grant has that pattern"), "{err}");
    let err = usage_error(
        &dir,
        &sign_args(&[
            "--args",
            r#"billing.refund={"amount": "any"}"#,
            "--args",
            r#"billing.refund={"amount": {"range": [1, 5]}}"#,
        ]),
    );
    assert!(err.contains("args are given twice"), "{err}");
}

#[test]
fn budgets_out_of_form_range_or_repeated_are_exit_2() {
    let dir = dir_with_keys();
    for (value, says) in [
        (
            "billing.refund:amount=0",
            "not an integer from 1 to 9007199254740991",
        ),
        (
            "billing.refund:amount=9007199254740992",
            "not an integer from 1",
        ),
        ("billing.refund:amount=-5", "not an integer from 1"),
        ("billing.refund=5", "is not PATTERN:MEMBER=LIMIT"),
        ("Billing:amount=5", "out of grammar"),
    ] {
        let err = usage_error(&dir, &sign_args(&["--budget", value]));
        assert!(err.contains(says), "--budget {value}: {err}");
    }
    let err = usage_error(
        &dir,
        &sign_args(&[
            "--budget",
            "billing.*:amount=5",
            "--budget",
            "billing.*:amount=7",
        ]),
    );
    assert!(err.contains("two budgets"), "{err}");
}

#[test]
fn approval_unless_needs_approval() {
    let dir = dir_with_keys();
    let err = usage_error(
        &dir,
        &sign_args(&[
            "--approval-unless",
            r#"billing.refund={"amount": {"range": [null, 100]}}"#,
        ]),
    );
    assert!(err.contains("--approval <CLASSES>"), "{err}");
    let err = usage_error(
        &dir,
        &sign_args(&[
            "--approval",
            "write",
            "--approvals",
            "1",
            "--approver",
            "a.pub",
            "--approval-unless",
            r#"billing.refund={"amount": {"range": [null, null]}}"#,
        ]),
    );
    assert!(
        err.contains("at amount.range: min and max are both null"),
        "{err}"
    );
}

#[test]
fn delegate_refuses_malformed_args_and_unnamed_patterns() {
    let dir = dir_with_keys();
    let parent = dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            "billing-queue",
            "--tool",
            "billing.*=write",
            "--holder",
            "agent.pub",
            "--max-uses",
            "3",
        ],
    );
    let delegate = |extra: &[&str]| {
        let mut args = vec![
            "delegate",
            "--key",
            "agent",
            "--parent",
            &parent,
            "--agent",
            "spiffe://acme.example/agent/refunder",
            "--holder",
            "sub.pub",
            "--tool",
            "billing.refund=write",
        ];
        args.extend_from_slice(extra);
        usage_error(&dir, &args)
    };
    let err = delegate(&["--args", r#"billing.refund={"amount": {"range": [5, 1]}}"#]);
    assert!(
        err.contains("at amount.range: min 5 is above max 1"),
        "{err}"
    );
    let err = delegate(&["--args", r#"billing.read={"amount": "any"}"#]);
    assert!(err.contains("no tool grant has that pattern"), "{err}");
    let err = delegate(&["--budget", "billing.refund:amount=0"]);
    assert!(err.contains("not an integer from 1"), "{err}");
    let err = delegate(&["--approval-unless", r#"billing.refund={"a": "any"}"#]);
    assert!(err.contains("--approval <CLASSES>"), "{err}");
}

/// `inspect --json` of an envelope: its claims' grant.
fn grant_of(dir: &Dir, envelope: &str) -> Value {
    let out = dir
        .laissez(&["inspect", "--json", envelope])
        .assert()
        .success();
    let value: Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    value["claims"]["grant"].clone()
}

#[test]
fn a_signed_envelope_carries_the_args_budgets_and_waivers_asked_for() {
    let dir = dir_with_keys();
    let envelope = dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            "billing-queue",
            "--tool",
            REFUND,
            "--tool",
            "billing.read=read",
            "--classes",
            "write",
            "--args",
            r#"billing.refund={"currency": {"one_of": ["USD", "EUR"]}, "amount": {"range": [1, 500]}}"#,
            "--budget",
            "billing.refund:amount=2000",
            "--budget",
            "billing.*:amount=5000",
            "--approval",
            "write",
            "--approvals",
            "1",
            "--approver",
            "a.pub",
            "--approver",
            "b.pub",
            "--approval-unless",
            r#"billing.refund={"amount": {"range": [null, 100]}}"#,
        ],
    );
    let grant = grant_of(&dir, &envelope);
    // A bare pattern given args takes --classes; values come out sorted.
    assert_eq!(
        grant["tools"],
        json!([
            [
                REFUND,
                ["write"],
                {"amount": {"range": [1, 500]}, "currency": {"one_of": ["EUR", "USD"]}}
            ],
            ["billing.read", ["read"]]
        ])
    );
    assert_eq!(
        grant["budgets"],
        json!([[REFUND, "amount", 2000], ["billing.*", "amount", 5000]])
    );
    assert_eq!(
        grant["approval"]["unless"],
        json!([[REFUND, {"amount": {"range": [null, 100]}}]])
    );
    assert_eq!(grant["approval"]["m"], json!(1));
    // The text form shows them too: a grant shown without args has none.
    let out = dir.laissez(&["inspect", &envelope]).assert().success();
    let text = stdout(out.get_output());
    for line in [
        r#"tools    billing.refund (write) args {"amount":{"range":[1,500]},"currency":{"one_of":["EUR","USD"]}}, billing.read (read)"#,
        "budget   billing.refund: the sum of amount at most 2000",
        "budget   billing.*: the sum of amount at most 5000",
        r#"unless   billing.refund when the body holds {"amount":{"range":[null,100]}}"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
}

#[test]
fn delegate_signs_only_children_with_narrower_args() {
    let dir = dir_with_keys();
    let parent = dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            "billing-queue",
            "--tool",
            "billing.refund=write",
            "--args",
            r#"billing.refund={"amount": {"range": [1, 500]}, "note": {"optional": {"max_len": 200}}}"#,
            "--holder",
            "agent.pub",
            "--max-uses",
            "3",
        ],
    );
    let delegate = |extra: &[&str]| {
        let mut args = vec![
            "delegate",
            "--key",
            "agent",
            "--parent",
            &parent,
            "--agent",
            "spiffe://acme.example/agent/refunder",
            "--holder",
            "sub.pub",
            "--tool",
            "billing.refund=write",
        ];
        args.extend_from_slice(extra);
        dir.laissez(&args).assert()
    };
    // Wider: a larger range, and no args at all.
    for extra in [
        &[
            "--args",
            r#"billing.refund={"amount": {"range": [1, 1000]}}"#,
        ][..],
        &[][..],
    ] {
        let out = delegate(extra).code(2);
        let err = stderr(out.get_output());
        assert!(
            err.contains("grants more than its parent (args)"),
            "{extra:?}: {err}"
        );
        if !extra.is_empty() {
            assert!(err.contains("amount"), "{err}");
        }
    }
    // Narrower: a smaller range, the optional member dropped; a budget of its own.
    let out = delegate(&[
        "--args",
        r#"billing.refund={"amount": {"range": [1, 50]}}"#,
        "--budget",
        "billing.refund:amount=200",
        "--json",
    ])
    .success();
    let value: Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(
        value["claims"]["grant"]["tools"],
        json!([[REFUND, ["write"], {"amount": {"range": [1, 50]}}]])
    );
    assert_eq!(
        value["claims"]["grant"]["budgets"],
        json!([[REFUND, "amount", 200]])
    );
}
