//! Human approval through the real binary (`docs/spec.md` §10, §12): `sign --approval
//! --approvals --approver`, `verify --approval --approvers --require-approval` on a whole
//! call, and `inspect` of an approval. Approvals are made with the library here; `laissez
//! approve` has tests of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{AGENT, Dir, stderr, stdout};
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{Approval, decode_text, unix_now};
use laissez_verify::ActionClass;
use laissez_verify::invocation::Call;

const AUD: &str = "billing-queue";
const TOOL: &str = "crm.ticket.delete";
const BODY: &[u8] = br#"{"ticket": 42}"#;

/// Keys: the issuer and approvers a, b, c; an envelope whose destructive calls need 2 of
/// a, b, c.
fn setup() -> (Dir, String) {
    let dir = Dir::new();
    for name in ["iss", "a", "b", "c"] {
        dir.keygen(name);
    }
    std::fs::write(dir.path("body.json"), BODY).unwrap();
    let envelope = dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "crm.ticket.*",
            "--classes",
            "read+write+destructive",
            "--approval",
            "destructive",
            "--approvals",
            "2",
            "--approver",
            "a.pub",
            "--approver",
            "b.pub",
            "--approver",
            "c.pub",
        ],
    );
    (dir, envelope)
}

fn approval(dir: &Dir, who: &str, envelope: &str) -> String {
    let key = read_secret_key_file(&dir.path(who)).unwrap();
    let bytes = decode_text(envelope).unwrap();
    let call = Call::new(&bytes, AUD, "msg-1", TOOL, ActionClass::Destructive, BODY).unwrap();
    let now = unix_now();
    Approval::sign(&key, &bytes, &call, now, now + 600, Some(who))
        .unwrap()
        .to_text()
}

fn verify(dir: &Dir, extra: &[&str], envelope: &str) -> assert_cmd::assert::Assert {
    let mut args = vec![
        "verify",
        "--trust",
        "iss.pub",
        "--aud",
        AUD,
        "--message-id",
        "msg-1",
        "--tool",
        TOOL,
        "--class",
        "destructive",
        "--body",
        "body.json",
        "--approvers",
        "a.pub",
        "--approvers",
        "b.pub",
        "--approvers",
        "c.pub",
        "--json",
    ];
    args.extend_from_slice(extra);
    args.push(envelope);
    dir.laissez(&args).assert()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap()
}

#[test]
fn two_of_three_approvals_let_a_destructive_call_through() {
    let (dir, envelope) = setup();
    let (apv_a, apv_b) = (
        approval(&dir, "a", &envelope),
        approval(&dir, "b", &envelope),
    );

    let none = verify(&dir, &[], &envelope).code(1);
    let v = json(none.get_output());
    assert_eq!(v["reason"], "approval_required");
    assert_eq!(v["detail"], "0 of 2");

    // The same approval twice counts once.
    let one = verify(
        &dir,
        &["--approval", &apv_a, "--approval", &apv_a],
        &envelope,
    )
    .code(1);
    assert_eq!(json(one.get_output())["detail"], "1 of 2");
    assert!(stderr(one.get_output()).contains("denied: approval_required"));

    let two = verify(
        &dir,
        &["--approval", &apv_a, "--approval", &apv_b],
        &envelope,
    )
    .success();
    let v = json(two.get_output());
    assert_eq!(v["allowed"], true);
    let rule = &v["claims"]["grant"]["approval"];
    assert_eq!(rule["m"], 2);
    assert_eq!(rule["classes"], serde_json::json!(["destructive"]));
    assert_eq!(rule["approvers"].as_array().unwrap().len(), 3);

    // The worker must hold the approvers' keys: without --approvers nothing counts.
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "iss.pub",
            "--aud",
            AUD,
            "--message-id",
            "msg-1",
            "--tool",
            TOOL,
            "--class",
            "destructive",
            "--body",
            "body.json",
            "--approval",
            &apv_a,
            "--approval",
            &apv_b,
            &envelope,
        ])
        .assert()
        .code(1);
    assert!(stderr(out.get_output()).contains("denied: approval_required"));
}

#[test]
fn an_approval_for_another_body_or_garbage_does_not_count() {
    let (dir, envelope) = setup();
    let apv_a = approval(&dir, "a", &envelope);
    let apv_b = approval(&dir, "b", &envelope);
    std::fs::write(dir.path("other.json"), b"{}").unwrap();
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "iss.pub",
            "--aud",
            AUD,
            "--message-id",
            "msg-1",
            "--tool",
            TOOL,
            "--class",
            "destructive",
            "--body",
            "other.json",
            "--approvers",
            "a.pub",
            "--approvers",
            "b.pub",
            "--approval",
            &apv_a,
            "--approval",
            &apv_b,
            "--json",
            &envelope,
        ])
        .assert()
        .code(1);
    assert_eq!(json(out.get_output())["detail"], "0 of 2");
    let out = verify(
        &dir,
        &["--approval", "not base64url!", "--approval", &apv_b],
        &envelope,
    )
    .code(1);
    assert_eq!(json(out.get_output())["detail"], "1 of 2");
}

#[test]
fn an_issuer_key_is_never_an_approver() {
    let (dir, envelope) = setup();
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "iss.pub",
            "--aud",
            AUD,
            "--approvers",
            "iss.pub",
            &envelope,
        ])
        .assert()
        .code(3);
    assert!(stderr(out.get_output()).contains("never approves"));
    // Nor does sign accept its own key among the approvers.
    let out = dir
        .laissez(&[
            "sign",
            "--key",
            "iss",
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "t",
            "--approval",
            "destructive",
            "--approvals",
            "1",
            "--approver",
            "iss.pub",
        ])
        .assert()
        .code(2);
    assert!(stderr(out.get_output()).contains("never approves"));
}

#[test]
fn the_rule_flags_are_checked() {
    let dir = Dir::new();
    dir.keygen("iss");
    dir.keygen("a");
    let base = [
        "sign", "--key", "iss", "--agent", AGENT, "--aud", AUD, "--tool", "t",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        dir.laissez(&args).assert().code(2)
    };
    let out = run(&[
        "--approval",
        "destructive",
        "--approvals",
        "2",
        "--approver",
        "a.pub",
    ]);
    assert!(stderr(out.get_output()).contains("2 approvals of 1 approvers"));
    run(&["--approval", "destructive", "--approver", "a.pub"]);
    run(&["--approvals", "1", "--approver", "a.pub"]);
    run(&[
        "--approval",
        "nuclear",
        "--approvals",
        "1",
        "--approver",
        "a.pub",
    ]);
}

#[test]
fn require_approval_without_a_rule_and_without_a_call() {
    let (dir, envelope) = setup();
    // No call: a class that needs approval is never usable.
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "iss.pub",
            "--aud",
            AUD,
            "--tool",
            TOOL,
            "--class",
            "destructive",
            &envelope,
        ])
        .assert()
        .code(1);
    assert!(stderr(out.get_output()).contains("approval_required"));
    let plain = dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "crm.ticket.*",
            "--classes",
            "destructive",
        ],
    );
    let out = verify(&dir, &["--require-approval", "destructive"], &plain).code(1);
    let v = json(out.get_output());
    assert_eq!(v["reason"], "approval_required");
    assert_eq!(v["detail"], "require_approval");
    verify(&dir, &[], &plain).success();
}

#[test]
fn inspect_shows_an_approval_and_the_rule() {
    let (dir, envelope) = setup();
    let apv = approval(&dir, "a", &envelope);
    let out = dir.laissez(&["inspect", "--json", &apv]).assert().success();
    let v = json(out.get_output());
    assert_eq!(v["verified"], false);
    assert_eq!(v["approval"]["msg"], "msg-1");
    assert_eq!(v["approval"]["class"], "destructive");
    assert_eq!(v["approval"]["by"], "a");
    let text = stdout(
        dir.laissez(&["inspect", &apv])
            .assert()
            .success()
            .get_output(),
    );
    assert!(text.starts_with("UNVERIFIED: an approval"));
    let text = stdout(
        dir.laissez(&["inspect", &envelope])
            .assert()
            .success()
            .get_output(),
    );
    assert!(
        text.contains("approval destructive needs 2 of 3 approvers"),
        "{text}"
    );
}

#[test]
fn more_than_sixteen_approvals_is_the_decision_malformed() {
    let (dir, envelope) = setup();
    let apv_a = approval(&dir, "a", &envelope);
    let mut flags: Vec<&str> = vec![];
    for _ in 0..17 {
        flags.extend(["--approval", apv_a.as_str()]);
    }
    // A decision (exit 1), not a usage error (exit 2): the same as the middleware's header.
    let out = verify(&dir, &flags, &envelope).code(1);
    assert_eq!(json(out.get_output())["reason"], "malformed");
    let sixteen = &flags[..32];
    let out = verify(&dir, sixteen, &envelope).code(1);
    assert_eq!(json(out.get_output())["detail"], "1 of 2");
}
