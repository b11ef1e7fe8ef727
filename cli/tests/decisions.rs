//! `sign`, `verify` and `inspect` through the real binary: every exit code, every denial the
//! command line can produce, the JSON shapes, stdin, and envelopes crossing between the
//! binary and the libraries in both directions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use assert_cmd::assert::Assert;
use common::{AGENT, Dir, SIGN_ARGS, stderr, stdout};
use laissez_sign::keyfile::{read_secret_key_file, read_trust_file};
use laissez_sign::{EnvelopeBuilder, decode_text, unix_now};
use laissez_verify::{ActionClass, Request, Verifier};

/// A directory with key `k` and the standard envelope.
fn setup() -> (Dir, String) {
    let dir = Dir::new();
    dir.keygen("k");
    let envelope = dir.sign("k", SIGN_ARGS);
    (dir, envelope)
}

fn verify(dir: &Dir, extra: &[&str], envelope: &str) -> Assert {
    let mut args = vec!["verify", "--trust", "k.pub", "--aud", "billing-queue"];
    args.extend_from_slice(extra);
    args.push(envelope);
    dir.laissez(&args).assert()
}

/// Asserts a denial: exit 1 and `denied: REASON` as the first stderr line.
fn assert_denied(assert: Assert, reason: &str) {
    let out = assert.code(1);
    let err = stderr(out.get_output());
    assert_eq!(
        err.lines().next(),
        Some(format!("denied: {reason}").as_str()),
        "{err}"
    );
}

#[test]
fn allowed_requests_exit_0() {
    let (dir, envelope) = setup();
    let out = verify(
        &dir,
        &["--tool", "crm.ticket.read", "--class", "read"],
        &envelope,
    )
    .success();
    assert_eq!(
        stdout(out.get_output()),
        format!("allowed: agent={AGENT} tool=crm.ticket.read class=read")
    );
    verify(
        &dir,
        &["--tool", "crm.ticket.close", "--class", "write"],
        &envelope,
    )
    .success();
    verify(
        &dir,
        &["--tool", "crm.ticket.delete", "--class", "destructive"],
        &envelope,
    )
    .success();
    verify(&dir, &["--agent", AGENT], &envelope).success();
    verify(&dir, &[], &envelope).success();
}

#[test]
fn every_denial_exits_1_with_its_reason() {
    let (dir, envelope) = setup();
    let now = unix_now();
    let late = (now + 3600).to_string();
    let early = (now - 3600).to_string();
    assert_denied(
        verify(
            &dir,
            &["--tool", "billing.refund", "--class", "read"],
            &envelope,
        ),
        "tool_not_granted",
    );
    assert_denied(
        verify(
            &dir,
            &["--tool", "crm.ticket.read", "--class", "destructive"],
            &envelope,
        ),
        "class_not_granted",
    );
    assert_denied(
        verify(
            &dir,
            &["--agent", "spiffe://acme.example/agent/other"],
            &envelope,
        ),
        "wrong_agent",
    );
    assert_denied(verify(&dir, &["--now", &late], &envelope), "expired");
    assert_denied(verify(&dir, &["--now", &early], &envelope), "not_yet_valid");
    assert_denied(
        dir.laissez(&[
            "verify",
            "--trust",
            "k.pub",
            "--aud",
            "audit-queue",
            &envelope,
        ])
        .assert(),
        "wrong_audience",
    );
    // A TTL the verifier's policy does not accept.
    let long = dir.sign(
        "k",
        &[
            "--agent",
            "a",
            "--aud",
            "billing-queue",
            "--tool",
            "t",
            "--ttl",
            "2h",
        ],
    );
    assert_denied(verify(&dir, &[], &long), "lifetime_too_long");
    verify(&dir, &["--max-lifetime", "2h"], &long).success();
    // Signed by a key the verifier does not trust.
    dir.keygen("other");
    let foreign = dir.sign("other", SIGN_ARGS);
    assert_denied(verify(&dir, &[], &foreign), "unknown_key");
    // Tampered: one character of the signature changed.
    let mut tampered = envelope.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_denied(
        verify(&dir, &[], &String::from_utf8(tampered).unwrap()),
        "bad_signature",
    );
    assert_denied(verify(&dir, &[], "bm90IGFuIGVudmVsb3Bl"), "malformed");
    assert_denied(verify(&dir, &[], "*** not base64 ***"), "malformed");
}

#[test]
fn usage_errors_exit_2_and_io_errors_exit_3() {
    let (dir, envelope) = setup();
    for extra in [
        &["--tool", "crm.ticket.read"][..],
        &["--class", "read"],
        &["--tool", "crm.ticket.read", "--class", "admin"],
        &["--tool", "crm.*", "--class", "read"],
        &["--leeway", "2m"],
        &["--leeway", "soon"],
        &["--max-lifetime", "169h"],
        &["--ledger", "uses.redb"],
        &["--message-id", "m1"],
        &["--ledger", "uses.redb", "--message-id", ""],
        &["--now", "yesterday"],
    ] {
        let out = verify(&dir, extra, &envelope).code(2);
        assert!(!stderr(out.get_output()).is_empty(), "{extra:?}");
    }
    assert!(
        !dir.path("uses.redb").exists(),
        "nothing is written on failure"
    );
    dir.laissez(&["verify", "--aud", "q", &envelope])
        .assert()
        .code(2);
    dir.laissez(&["verify", "--trust", "k.pub", &envelope])
        .assert()
        .code(2);
    dir.laissez(&["frobnicate"]).assert().code(2);

    let out = dir
        .laissez(&["verify", "--trust", "missing.pub", "--aud", "q", &envelope])
        .assert()
        .code(3);
    assert!(stderr(out.get_output()).contains("missing.pub"));
    // A secret key where a trust file is expected.
    let out = dir
        .laissez(&["verify", "--trust", "k", "--aud", "q", &envelope])
        .assert()
        .code(3);
    assert!(stderr(out.get_output()).contains("PRIVATE KEY"));
}

/// An empty name or path is a usage error that names the flag, never a decision: `verify
/// --aud ""` would otherwise accept an envelope whose aud lists "".
#[test]
fn empty_names_and_paths_are_usage_errors() {
    let (dir, envelope) = setup();
    let verify = ["verify", "--trust", "k.pub", "--aud", "billing-queue"];
    let sign = [
        "sign", "--key", "k", "--agent", "a", "--aud", "q", "--tool", "t",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["verify", "--trust", "k.pub", "--aud", "", &envelope],
            "--aud",
        ),
        (
            [&verify[..], &["--agent", "", &envelope]].concat(),
            "--agent",
        ),
        (
            vec!["verify", "--trust", "", "--aud", "q", &envelope],
            "--trust",
        ),
        (
            [
                &verify[..],
                &["--ledger", "", "--message-id", "m", &envelope],
            ]
            .concat(),
            "--ledger",
        ),
        (
            vec![
                "sign", "--key", "k", "--agent", "", "--aud", "q", "--tool", "t",
            ],
            "--agent",
        ),
        (
            vec![
                "sign", "--key", "k", "--agent", "a", "--aud", "", "--tool", "t",
            ],
            "--aud",
        ),
        ([&sign[..], &["--iss", ""]].concat(), "--iss"),
        ([&sign[..], &["--obo", ""]].concat(), "--obo"),
        ([&sign[..], &["--session", ""]].concat(), "--session"),
        ([&sign[..], &["--profile", ""]].concat(), "--profile"),
        (
            vec![
                "sign", "--key", "", "--agent", "a", "--aud", "q", "--tool", "t",
            ],
            "--key",
        ),
        (vec!["pubkey", "--key", ""], "--key"),
    ];
    for (args, flag) in cases {
        let out = dir.laissez(&args).assert().code(2);
        let err = stderr(out.get_output());
        assert!(
            err.contains(flag) && err.contains("must not be empty"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn verify_json_has_the_contract_shape() {
    let (dir, envelope) = setup();
    let kid = read_trust_file(&dir.path("k.pub")).unwrap()[0]
        .kid()
        .to_string();
    let out = verify(
        &dir,
        &["--json", "--tool", "crm.ticket.read", "--class", "read"],
        &envelope,
    )
    .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["allowed", "reason", "kid", "claims"]);
    assert_eq!(json["allowed"], true);
    assert_eq!(json["reason"], serde_json::Value::Null);
    assert_eq!(json["kid"], kid);
    let claims = &json["claims"];
    assert_eq!(claims["sub"], AGENT);
    assert_eq!(claims["aud"], "billing-queue");
    assert_eq!(claims["cti"].as_str().unwrap().len(), 32);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap();
    assert_eq!(lifetime, 300, "default TTL 5m");
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_eq!(
        claims["grant"],
        serde_json::json!({
            "v": 1,
            "tools": ["crm.ticket.*", ["crm.ticket.delete", ["destructive"]]],
            "classes": ["read", "write"],
            "max_uses": 2,
        })
    );

    // Denied after the signature holds: claims present.
    let out = verify(
        &dir,
        &["--json", "--tool", "billing.refund", "--class", "read"],
        &envelope,
    )
    .code(1);
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["reason"], "tool_not_granted");
    assert_eq!(json["claims"]["sub"], AGENT);
    assert!(stderr(out.get_output()).starts_with("denied: tool_not_granted\n"));

    // Denied before the signature holds: no claims, but the kid is known.
    dir.keygen("other");
    let foreign = dir.sign("other", SIGN_ARGS);
    let out = verify(&dir, &["--json"], &foreign).code(1);
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["reason"], "unknown_key");
    assert_eq!(json["claims"], serde_json::Value::Null);
    assert_eq!(json["kid"].as_str().unwrap().len(), 16);

    // Not an envelope at all: no kid either.
    let out = verify(&dir, &["--json"], "bm90IGFuIGVudmVsb3Bl").code(1);
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(
        (json["reason"].as_str(), json["kid"].is_null()),
        (Some("malformed"), true)
    );
}

#[test]
fn the_ledger_counts_uses_and_refuses_replays() {
    let (dir, envelope) = setup();
    let spend = |id: &str| {
        verify(
            &dir,
            &[
                "--tool",
                "crm.ticket.read",
                "--class",
                "read",
                "--ledger",
                "uses.redb",
                "--message-id",
                id,
            ],
            &envelope,
        )
    };
    let out = spend("msg-1").success();
    assert!(
        stdout(out.get_output()).ends_with("use=1/2"),
        "{}",
        stdout(out.get_output())
    );
    assert_denied(spend("msg-1"), "replayed");
    let out = spend("msg-2").success();
    assert!(stdout(out.get_output()).ends_with("use=2/2"));
    assert_denied(spend("msg-3"), "uses_exhausted");
    assert_denied(spend("msg-2"), "replayed");
    // A denied request spends nothing.
    let (dir2, envelope2) = setup();
    let denied = [
        "--tool",
        "billing.refund",
        "--class",
        "read",
        "--ledger",
        "uses.redb",
        "--message-id",
        "x",
    ];
    assert_denied(verify(&dir2, &denied, &envelope2), "tool_not_granted");
    let out = verify(
        &dir2,
        &[
            "--json",
            "--tool",
            "crm.ticket.read",
            "--class",
            "read",
            "--ledger",
            "uses.redb",
            "--message-id",
            "x",
        ],
        &envelope2,
    )
    .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["use"], 1);
}

#[test]
fn stdin_takes_text_with_whitespace_and_padding_or_raw_bytes() {
    let (dir, envelope) = setup();
    let padding = "=".repeat((4 - envelope.len() % 4) % 4);
    let wrapped = format!("\n  {}\n{}{padding}  \n", &envelope[..40], &envelope[40..]);
    assert_denied(verify(&dir, &[], "-"), "malformed"); // empty stdin
    let mut cmd = dir.laissez(&["verify", "--trust", "k.pub", "--aud", "billing-queue", "-"]);
    cmd.write_stdin(wrapped).assert().success();

    let out = dir
        .laissez(&[
            "sign",
            "--key",
            "k",
            "--raw",
            "--agent",
            "a",
            "--aud",
            "billing-queue",
            "--tool",
            "t",
        ])
        .assert()
        .success();
    let raw = out.get_output().stdout.clone();
    assert_eq!(raw[0], 0xd2, "--raw writes the CBOR bytes");
    let mut cmd = dir.laissez(&["verify", "--trust", "k.pub", "--aud", "billing-queue", "-"]);
    cmd.write_stdin(raw).assert().success();
}

#[test]
fn cli_envelopes_verify_in_the_library_and_library_envelopes_in_the_cli() {
    let (dir, envelope) = setup();
    let keys = read_trust_file(&dir.path("k.pub")).unwrap();
    let bytes = decode_text(&envelope).unwrap();
    let request = Request::new("crm.ticket.delete", ActionClass::Destructive).unwrap();
    let verified = Verifier::new(&keys, "billing-queue")
        .verify(&bytes, unix_now(), Some(&request))
        .unwrap();
    assert_eq!(verified.claims().sub(), AGENT);
    assert_eq!(verified.claims().max_uses(), 2);

    let key = read_secret_key_file(&dir.path("k")).unwrap();
    let signed = EnvelopeBuilder::new("lib-agent")
        .audience("billing-queue")
        .tool("reports.read")
        .sign(&key)
        .unwrap();
    let text = signed.to_text();
    verify(
        &dir,
        &[
            "--agent",
            "lib-agent",
            "--tool",
            "reports.read",
            "--class",
            "read",
        ],
        &text,
    )
    .success();
    assert_denied(
        verify(&dir, &["--tool", "reports.read", "--class", "write"], &text),
        "class_not_granted",
    );
}

#[test]
fn inspect_says_unverified() {
    let (dir, envelope) = setup();
    let out = dir.laissez(&["inspect", &envelope]).assert().success();
    let text = stdout(out.get_output());
    assert!(
        text.lines().next().unwrap().contains("UNVERIFIED"),
        "{text}"
    );
    assert!(text.contains(AGENT) && text.contains("crm.ticket.delete (destructive)"));

    let out = dir
        .laissez(&["inspect", "--json", &envelope])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(json["verified"], false);
    assert_eq!(json["claims"]["sub"], AGENT);
    assert_eq!(json["kid"].as_str().unwrap().len(), 16);

    // Inspect decodes even what verify would refuse: a foreign key.
    dir.keygen("other");
    dir.laissez(&["inspect", &dir.sign("other", SIGN_ARGS)])
        .assert()
        .success();
    assert_denied(dir.laissez(&["inspect", "AAAA"]).assert(), "malformed");
    let mut cmd = dir.laissez(&["inspect", "-"]);
    cmd.write_stdin(format!("{envelope}\n")).assert().success();
}

/// Text claims are whatever the envelope's maker chose: `inspect` must not let them clear
/// the screen, move the cursor, reorder text or print lines of their own (a forged banner).
#[test]
fn inspect_escapes_hostile_text_claims() {
    let (dir, _) = setup();
    let hostile = "\u{1b}[2J\u{1b}[H\rUNVERIFIED? no\nVERIFIED: signature good\nsub      root\
                   \u{7f}\u{9b}31m\u{202e}gnp.exe\\";
    let escaped = "\\u{1b}[2J\\u{1b}[H\\u{d}UNVERIFIED? no\\u{a}VERIFIED: signature good\\u{a}\
                   sub      root\\u{7f}\\u{9b}31m\\u{202e}gnp.exe\\\\";
    let envelope = dir.sign(
        "k",
        &[
            "--agent",
            hostile,
            "--aud",
            "billing-queue",
            "--aud",
            hostile,
            "--tool",
            "t",
            "--iss",
            hostile,
            "--obo",
            hostile,
            "--session",
            hostile,
        ],
    );
    let unsafe_char =
        |c: char| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c);

    let out = dir.laissez(&["inspect", &envelope]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.chars().any(unsafe_char), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("UNVERIFIED: decoded without checking"),
        "{text}"
    );
    assert_eq!(lines.len(), 13, "one line per claim, none injected: {text}");
    for name in ["iss", "sub", "obo", "sid"] {
        assert!(
            lines.contains(&format!("{name:<9}{escaped}").as_str()),
            "{name}: {text}"
        );
    }
    assert!(lines.contains(&format!("aud      billing-queue, {escaped}").as_str()));
    assert!(
        lines[1..]
            .iter()
            .all(|l| !l.starts_with("UNVERIFIED") && !l.starts_with("VERIFIED")),
        "{text}"
    );

    let out = dir
        .laissez(&["inspect", "--json", &envelope])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.chars().any(unsafe_char), "{text:?}");
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let claims = &json["claims"];
    assert_eq!(claims["iss"], hostile, "JSON escaping loses nothing");
    assert_eq!(claims["sub"], hostile);
    assert_eq!(claims["aud"][1], hostile);
    assert_eq!(claims["grant"]["obo"], hostile);
    assert_eq!(claims["grant"]["sid"], hostile);

    // verify prints the (now signed) agent too, under the same escaping.
    for json in [false, true] {
        let mut args = vec!["verify", "--trust", "k.pub", "--aud", "billing-queue"];
        if json {
            args.push("--json");
        }
        args.push(&envelope);
        let out = dir.laissez(&args).assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(!text.chars().any(unsafe_char), "{text:?}");
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        if !json {
            assert_eq!(text, format!("allowed: agent={escaped}\n"));
        }
    }
}
