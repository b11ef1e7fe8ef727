//! Holder binding through the real binary (`docs/spec.md` §10, §11): `sign --holder`,
//! `invoke`, `verify` with a whole call (`--message-id`, `--body`, `--invocation`,
//! `--require-holder`) and `inspect` of both objects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use assert_cmd::assert::Assert;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AGENT, Dir, stderr, stdout};
use laissez_sign::unix_now;

const AUD: &str = "billing-queue";
const TOOL: &str = "crm.ticket.close";

/// Keys `iss` (the orchestrator) and `agent`, the agent's kid, and an envelope bound to the
/// agent granting `crm.ticket.*` read+write to two audiences.
struct Setup {
    dir: Dir,
    agent_kid: String,
    envelope: String,
}

fn setup() -> Setup {
    let dir = Dir::new();
    dir.keygen("iss");
    let agent_kid = dir.keygen("agent");
    std::fs::write(dir.path("body.json"), br#"{"ticket": 42}"#).unwrap();
    let envelope = dir.sign("iss", &bound_args(&[]));
    Setup {
        dir,
        agent_kid,
        envelope,
    }
}

fn bound_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--agent",
        AGENT,
        "--aud",
        AUD,
        "--aud",
        "audit-queue",
        "--tool",
        "crm.ticket.*",
        "--classes",
        "read+write",
        "--max-uses",
        "3",
        "--holder",
        "agent.pub",
    ];
    args.extend_from_slice(extra);
    args
}

impl Setup {
    /// `laissez invoke` for `envelope` with the standard call and `extra` flags (which
    /// override nothing: clap refuses a repeated flag, so callers pass what differs).
    fn invoke_cmd(&self, envelope: &str, call: &[&str]) -> Assert {
        let mut args = vec!["invoke", "--key", "agent", "--envelope", envelope];
        args.extend_from_slice(call);
        self.dir.laissez(&args).assert()
    }

    fn invoke(&self, envelope: &str, call: &[&str]) -> String {
        stdout(self.invoke_cmd(envelope, call).success().get_output())
    }

    fn verify(&self, extra: &[&str], envelope: &str) -> Assert {
        let mut args = vec!["verify", "--trust", "iss.pub"];
        args.extend_from_slice(extra);
        args.push(envelope);
        self.dir.laissez(&args).assert()
    }
}

/// The standard call: audience, message id, tool, class, body.
const CALL: &[&str] = &[
    "--aud",
    AUD,
    "--message-id",
    "msg-1",
    "--tool",
    TOOL,
    "--class",
    "write",
    "--body",
    "body.json",
];

fn with<'a>(base: &[&'a str], invocation: &'a str) -> Vec<&'a str> {
    let mut args = base.to_vec();
    args.extend_from_slice(&["--invocation", invocation]);
    args
}

/// Exit 1, `denied: REASON` first on stderr; returns the JSON decision when `--json` was on.
fn assert_denied(assert: Assert, reason: &str) -> Option<serde_json::Value> {
    let out = assert.code(1);
    let err = stderr(out.get_output());
    assert_eq!(
        err.lines().next(),
        Some(format!("denied: {reason}").as_str()),
        "{err}"
    );
    serde_json::from_str(&stdout(out.get_output())).ok()
}

/// The JSON `detail` of a denial, checked against its reason.
fn detail(s: &Setup, extra: &[&str], envelope: &str, reason: &str) -> String {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let json = assert_denied(s.verify(&args, envelope), reason).unwrap();
    assert_eq!(json["reason"], reason);
    json["detail"].as_str().unwrap().to_owned()
}

#[test]
fn invoke_then_verify_allows_exactly_that_call() {
    let s = setup();
    let inv = s.invoke(&s.envelope, CALL);
    let out = s.verify(&with(CALL, &inv), &s.envelope).success();
    assert_eq!(
        stdout(out.get_output()),
        format!("allowed: agent={AGENT} tool={TOOL} class=write")
    );
    // The JSON names the holder by its kid.
    let mut json_args = with(CALL, &inv);
    json_args.push("--json");
    let out = s.verify(&json_args, &s.envelope).success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["claims"]["cnf"], s.agent_kid.as_str());
    assert!(json.get("detail").is_none(), "{json}");

    // The invocation and the body from stdin, the envelope from stdin: the same decision.
    let mut cmd = s.dir.laissez(&[
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
        "write",
        "--body",
        "-",
        "--invocation",
        &inv,
        &s.envelope,
    ]);
    cmd.write_stdin(r#"{"ticket": 42}"#).assert().success();
    let mut cmd = s
        .dir
        .laissez(&["verify", "--trust", "iss.pub", "--invocation", "-"]);
    cmd.args(CALL)
        .arg(&s.envelope)
        .write_stdin(format!("{inv}\n"))
        .assert()
        .success();
    // invoke reads the envelope from stdin too.
    let mut cmd = s
        .dir
        .laissez(&["invoke", "--key", "agent", "--envelope", "-"]);
    cmd.args(CALL)
        .write_stdin(s.envelope.clone())
        .assert()
        .success();

    // With the ledger: one use per message id, whatever the invocation.
    let mut spend = with(CALL, &inv);
    spend.extend_from_slice(&["--ledger", "uses.redb"]);
    let out = s.verify(&spend, &s.envelope).success();
    assert!(stdout(out.get_output()).ends_with("use=1/3"));
    assert_denied(s.verify(&spend, &s.envelope), "replayed");
}

#[test]
fn a_copied_envelope_and_invocation_serve_no_other_call() {
    let s = setup();
    let inv = s.invoke(&s.envelope, CALL);
    std::fs::write(s.dir.path("other.json"), br#"{"ticket": 43}"#).unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("--message-id", "msg-2", "message_id"),
        ("--body", "other.json", "body"),
        ("--tool", "crm.ticket.reopen", "tool"),
        ("--class", "read", "class"),
        ("--aud", "audit-queue", "audience"),
    ];
    for (flag, value, field) in cases {
        let mut call = CALL.to_vec();
        let at = call.iter().position(|a| *a == flag).unwrap();
        call[at + 1] = value;
        assert_eq!(
            detail(&s, &with(&call, &inv), &s.envelope, "invocation_mismatch"),
            field,
            "{flag} {value}"
        );
    }
    // No body at all is another body too.
    let no_body = &CALL[..CALL.len() - 2];
    assert_eq!(
        detail(&s, &with(no_body, &inv), &s.envelope, "invocation_mismatch"),
        "body"
    );
    // The invocation of one envelope does not serve another, even for the same holder.
    let second = s.dir.sign("iss", &bound_args(&[]));
    assert_eq!(
        detail(&s, &with(CALL, &inv), &second, "invocation_mismatch"),
        "envelope"
    );
    // Made later than the worker's clock (and its leeway).
    let now = unix_now();
    let later = (now + 60).to_string();
    let mut future = CALL.to_vec();
    future.extend_from_slice(&["--now", &later]);
    let early_inv = s.invoke(&s.envelope, &future);
    let mut at_now = with(CALL, &early_inv);
    let now_text = now.to_string();
    at_now.extend_from_slice(&["--now", &now_text]);
    assert_eq!(
        detail(&s, &at_now, &s.envelope, "invocation_mismatch"),
        "iat_in_future"
    );
    // The human line says which field differs.
    let out = s
        .verify(
            &with(&[&CALL[..3], &["msg-9"], &CALL[4..]].concat(), &inv),
            &s.envelope,
        )
        .code(1);
    assert!(stderr(out.get_output()).contains("another message id"));
}

#[test]
fn an_invocation_is_required_and_must_be_the_holders() {
    let s = setup();
    // No call: a holder-bound envelope is never usable.
    assert_eq!(
        detail(&s, &["--aud", AUD], &s.envelope, "invocation_required"),
        "holder_bound"
    );
    assert_denied(
        s.verify(
            &["--aud", AUD, "--tool", TOOL, "--class", "write"],
            &s.envelope,
        ),
        "invocation_required",
    );
    // A call without an invocation.
    assert_eq!(
        detail(&s, CALL, &s.envelope, "invocation_required"),
        "holder_bound"
    );

    // Another holder's invocation: the kid is not this envelope's holder.
    s.dir.keygen("thief");
    let thiefs = s.dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "crm.*",
            "--classes",
            "write",
            "--holder",
            "thief.pub",
        ],
    );
    let mut cmd = s
        .dir
        .laissez(&["invoke", "--key", "thief", "--envelope", &thiefs]);
    let out = cmd.args(CALL).assert().success();
    let stolen = stdout(out.get_output());
    assert_eq!(
        detail(&s, &with(CALL, &stolen), &s.envelope, "bad_invocation"),
        "wrong_key"
    );
    // A flipped signature bit.
    let inv = s.invoke(&s.envelope, CALL);
    let mut bytes = URL_SAFE_NO_PAD.decode(&inv).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let flipped = URL_SAFE_NO_PAD.encode(&bytes);
    assert_eq!(
        detail(&s, &with(CALL, &flipped), &s.envelope, "bad_invocation"),
        "bad_signature"
    );
    // Not an invocation: an envelope in its place, bytes that are no COSE_Sign1, no base64.
    let as_envelope = detail(&s, &with(CALL, &s.envelope), &s.envelope, "bad_invocation");
    assert!(as_envelope.starts_with("malformed: "), "{as_envelope}");
    let garbage = detail(&s, &with(CALL, "AAAA"), &s.envelope, "bad_invocation");
    assert!(garbage.starts_with("malformed: "), "{garbage}");
    let text = detail(&s, &with(CALL, "*** no ***"), &s.envelope, "bad_invocation");
    assert_eq!(text, "not_base64url");

    // The envelope's own checks come first: a bad invocation of a call the envelope does not
    // grant is that call's denial.
    let mut wrong_class = with(CALL, "*** no ***");
    let at = wrong_class.iter().position(|a| *a == "write").unwrap();
    wrong_class[at] = "destructive";
    assert_denied(s.verify(&wrong_class, &s.envelope), "class_not_granted");
    // Nothing was spent by any denial.
    let mut spend = with(CALL, &stolen);
    spend.extend_from_slice(&["--ledger", "uses.redb", "--json"]);
    let json = assert_denied(s.verify(&spend, &s.envelope), "bad_invocation").unwrap();
    assert_eq!(json["use"], serde_json::Value::Null);
}

#[test]
fn require_holder_refuses_bearer_envelopes_which_ignore_invocations() {
    let s = setup();
    let bearer = s.dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "crm.*",
            "--classes",
            "write",
        ],
    );
    // An invocation that comes with a bearer envelope is ignored, even a broken one.
    s.verify(&with(CALL, "*** no ***"), &bearer).success();
    s.verify(&["--aud", AUD], &bearer).success();
    let mut required = CALL.to_vec();
    required.push("--require-holder");
    assert_eq!(
        detail(&s, &required, &bearer, "invocation_required"),
        "require_holder"
    );
    let out = s
        .verify(&["--aud", AUD, "--require-holder"], &bearer)
        .code(1);
    assert!(stderr(out.get_output()).contains("not holder-bound"));
    // A holder-bound envelope with its invocation passes the policy.
    let inv = s.invoke(&s.envelope, CALL);
    s.verify(&with(&required, &inv), &s.envelope).success();
}

#[test]
fn invoke_signs_only_what_the_envelope_grants() {
    let s = setup();
    let call_with = |flag: &str, value: &'static str| {
        let mut call = CALL.to_vec();
        let at = call.iter().position(|a| *a == flag).unwrap();
        call[at + 1] = value;
        call
    };
    for (flag, value, reason) in [
        ("--aud", "payments-queue", "wrong_audience"),
        ("--tool", "billing.refund", "tool_not_granted"),
        ("--class", "destructive", "class_not_granted"),
    ] {
        let out = s.invoke_cmd(&s.envelope, &call_with(flag, value)).code(1);
        let err = stderr(out.get_output());
        assert!(err.starts_with(&format!("denied: {reason}\n")), "{err}");
        assert!(stdout(out.get_output()).is_empty());
    }
    let (past, future) = (
        (unix_now() - 3600).to_string(),
        (unix_now() + 3600).to_string(),
    );
    for (now, reason) in [(&past, "not_yet_valid"), (&future, "expired")] {
        let mut call = CALL.to_vec();
        call.extend_from_slice(&["--now", now]);
        assert_denied(s.invoke_cmd(&s.envelope, &call), reason);
    }
    assert_denied(s.invoke_cmd("AAAA", CALL), "malformed");
    assert_denied(s.invoke_cmd("*** no ***", CALL), "malformed");

    // The wrong key is a key error; a bearer envelope has nothing to invoke.
    let mut cmd = s
        .dir
        .laissez(&["invoke", "--key", "iss", "--envelope", &s.envelope]);
    let out = cmd.args(CALL).assert().code(3);
    assert!(stderr(out.get_output()).contains("not to this key"));
    let bearer = s
        .dir
        .sign("iss", &["--agent", "a", "--aud", AUD, "--tool", "crm.*"]);
    let out = s.invoke_cmd(&bearer, CALL).code(2);
    assert!(stderr(out.get_output()).contains("not holder-bound"));

    // A clock up to 5 s behind nbf signs at nbf; further behind is refused.
    let nbf = unix_now() + 3;
    let nbf_text = nbf.to_string();
    let soon = s.dir.sign("iss", &bound_args(&["--nbf", &nbf_text]));
    let inv = s.invoke(&soon, CALL);
    let out = s
        .dir
        .laissez(&["inspect", "--json", &inv])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["invocation"]["iat"], nbf);
    let late_text = (unix_now() + 30).to_string();
    let late = s.dir.sign("iss", &bound_args(&["--nbf", &late_text]));
    assert_denied(s.invoke_cmd(&late, CALL), "not_yet_valid");
}

#[test]
fn usage_and_key_errors() {
    let s = setup();
    let base = ["--aud", AUD];
    for extra in [
        &["--message-id", "m1"][..],
        &["--message-id", "m1", "--tool", TOOL],
        &["--invocation", "AAAA"],
        &["--ledger", "uses.redb", "--tool", TOOL, "--class", "write"],
        &["--message-id", "", "--tool", TOOL, "--class", "write"],
        &[
            "--message-id",
            "m",
            "--tool",
            TOOL,
            "--class",
            "write",
            "--body",
            "-",
            "--invocation",
            "-",
        ],
    ] {
        let out = s.verify(&[&base[..], extra].concat(), &s.envelope).code(2);
        assert!(!stderr(out.get_output()).is_empty(), "{extra:?}");
    }
    // A body without a call is no usage error: it is read for args, budgets and waivers
    // (docs/spec.md §16), and this holder-bound envelope still needs an invocation.
    assert_denied(
        s.verify(&["--aud", AUD, "--body", "body.json"], &s.envelope),
        "invocation_required",
    );
    // ENVELOPE and --invocation both from stdin.
    let out = s.verify(&with(CALL, "-"), "-").code(2);
    assert!(stderr(out.get_output()).contains("stdin"));

    let long = "m".repeat(257);
    for call in [
        vec![
            "--aud",
            AUD,
            "--message-id",
            &long,
            "--tool",
            TOOL,
            "--class",
            "write",
        ],
        vec![
            "--aud",
            AUD,
            "--message-id",
            "m",
            "--tool",
            "crm.*",
            "--class",
            "write",
        ],
        vec!["--aud", AUD, "--message-id", "m", "--tool", TOOL],
        vec![
            "--aud",
            "",
            "--message-id",
            "m",
            "--tool",
            TOOL,
            "--class",
            "write",
        ],
        vec![
            "--aud",
            AUD,
            "--message-id",
            "m",
            "--tool",
            TOOL,
            "--class",
            "admin",
        ],
    ] {
        s.invoke_cmd(&s.envelope, &call).code(2);
    }
    let mut both = CALL.to_vec();
    both[CALL.len() - 1] = "-";
    s.invoke_cmd("-", &both).code(2);
    // A body file that cannot be read, a key that is missing.
    let mut missing = CALL.to_vec();
    missing[CALL.len() - 1] = "missing.json";
    let out = s.invoke_cmd(&s.envelope, &missing).code(3);
    assert!(stderr(out.get_output()).contains("missing.json"));
    let mut cmd = s
        .dir
        .laissez(&["invoke", "--key", "nokey", "--envelope", &s.envelope]);
    cmd.args(CALL).assert().code(3);

    // sign --holder: the file must hold one sound public key (exit 3 otherwise).
    s.dir.fixture("small-order.pub.pem");
    let pem = std::fs::read_to_string(s.dir.path("agent.pub")).unwrap();
    std::fs::write(s.dir.path("two.pub"), format!("{pem}{pem}")).unwrap();
    for (file, says) in [
        ("missing.pub", "missing.pub"),
        ("small-order.pub.pem", "small-order"),
        ("agent", "PRIVATE KEY"),
        ("two.pub", "exactly one key"),
    ] {
        let args = [
            "--agent", "a", "--aud", AUD, "--tool", "t", "--holder", file,
        ];
        let mut all = vec!["sign", "--key", "iss"];
        all.extend_from_slice(&args);
        let out = s.dir.laissez(&all).assert().code(3);
        let err = stderr(out.get_output());
        assert!(
            err.to_lowercase().contains(&says.to_lowercase()),
            "{file}: {err}"
        );
    }
}

#[test]
fn inspect_recognises_envelopes_and_invocations() {
    let s = setup();
    let out = s.dir.laissez(&["inspect", &s.envelope]).assert().success();
    let text = stdout(out.get_output());
    assert!(
        text.contains(&format!("cnf      {} (holder kid", s.agent_kid)),
        "{text}"
    );
    let out = s
        .dir
        .laissez(&["inspect", "--json", &s.envelope])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["claims"]["cnf"], s.agent_kid.as_str());

    let mut call = CALL.to_vec();
    call.extend_from_slice(&["--now", "1800000000"]);
    let later = s.dir.sign("iss", &bound_args(&["--nbf", "1799999990"]));
    let inv = s.invoke(&later, &call);
    let out = s.dir.laissez(&["inspect", &inv]).assert().success();
    let text = stdout(out.get_output());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("UNVERIFIED: an invocation"), "{text}");
    let body = hex::encode(sha256(br#"{"ticket": 42}"#));
    let env = hex::encode(sha256(&URL_SAFE_NO_PAD.decode(&later).unwrap()));
    assert_eq!(
        lines[1..],
        [
            format!("kid      {}", s.agent_kid),
            format!("env      {env}"),
            format!("aud      {AUD}"),
            "msg      msg-1".to_owned(),
            format!("tool     {TOOL}"),
            "class    write".to_owned(),
            format!("body     {body}"),
            "iat      1800000000".to_owned(),
        ]
    );
    let mut cmd = s.dir.laissez(&["inspect", "--json", "-"]);
    let out = cmd.write_stdin(inv).assert().success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["verified", "kid", "invocation"]);
    assert_eq!(json["verified"], false);
    assert_eq!(
        json["invocation"],
        serde_json::json!({
            "env": env, "aud": AUD, "msg": "msg-1", "tool": TOOL, "class": "write",
            "body": body, "iat": 1_800_000_000u64,
        })
    );

    // Hostile text in the call is escaped like claims are.
    let hostile = "q\u{1b}[2J\nUNVERIFIED? no\u{202e}";
    let odd = s.dir.sign(
        "iss",
        &[
            "--agent",
            "a",
            "--aud",
            hostile,
            "--tool",
            "t",
            "--holder",
            "agent.pub",
        ],
    );
    let inv = s.invoke(
        &odd,
        &[
            "--aud",
            hostile,
            "--message-id",
            hostile,
            "--tool",
            "t",
            "--class",
            "read",
        ],
    );
    let out = s.dir.laissez(&["inspect", &inv]).assert().success();
    let text = stdout(out.get_output());
    assert_eq!(text.lines().count(), 9, "{text}");
    assert!(
        text.contains("msg      q\\u{1b}[2J\\u{a}UNVERIFIED? no\\u{202e}"),
        "{text}"
    );

    // Neither an envelope nor an invocation.
    let out = s.dir.laissez(&["inspect", "AAAA"]).assert().code(1);
    assert!(stderr(out.get_output()).starts_with("denied: malformed\n"));
}

/// SHA-256 through the verifier's own `Call` (its envelope digest), no other hash crate.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let call = laissez_verify::invocation::Call::new(
        bytes,
        "a",
        "m",
        "t",
        laissez_verify::ActionClass::Read,
        b"",
    )
    .unwrap();
    *call.envelope_digest()
}
