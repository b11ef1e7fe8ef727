//! `laissez delegate`, and `verify` / `inspect` of a delegation chain, on the real binary
//! without a broker (`docs/spec.md` §10, §13): the child's defaults and clamping, every
//! refusal naming what is wrong, the JSON of a chain (root first, the leaf's claims, the
//! root's kid), and the denials of a broken or widened chain with their detail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `laissez ARGS` in `dir`: (exit code, stdout, stderr).
fn laissez(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs it and expects exit 0: its stdout, trimmed.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = laissez(dir, args);
    assert_eq!(code, 0, "laissez {args:?}: {stderr}");
    stdout.trim().to_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Keys orch, a, b, c, d, e in a fresh directory, and the orchestrator's envelope for agent A
/// (holder-bound to a.key): queue q1 and q2, `crm.*` read and write, 3 uses, obo alice,
/// session s-1, from `nbf` for 10 minutes.
fn setup(nbf: u64) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for k in ["orch", "a", "b", "c", "d", "e"] {
        ok(dir.path(), &["keygen", "--out", &format!("{k}.key")]);
    }
    let root = ok(
        dir.path(),
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            "q1",
            "--aud",
            "q2",
            "--tool",
            "crm.*=read+write",
            "--max-uses",
            "3",
            "--ttl",
            "10m",
            "--holder",
            "a.key.pub",
            "--obo",
            "alice",
            "--session",
            "s-1",
            "--nbf",
            &nbf.to_string(),
        ],
    );
    (dir, root)
}

/// The claims of each envelope of a chain's text, root first, as `inspect --json` shows them.
fn chain_claims(dir: &Path, chain: &str) -> Vec<Value> {
    let out = json(&ok(dir, &["inspect", "--json", chain]));
    assert_eq!(out["verified"], false);
    out["chain"].as_array().unwrap().clone()
}

#[test]
fn delegate_takes_the_parents_aud_obo_and_sid_and_clamps_its_times() {
    let nbf = now();
    let (dir, root) = setup(nbf);
    let d = dir.path();
    // Longer than the parent, and starting before it: clamped into it.
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.ticket.read",
            "--ttl",
            "2h",
            "--nbf",
            &(nbf - 100).to_string(),
        ],
    );
    assert_eq!(chain.split('.').count(), 2, "{chain}");
    assert!(chain.starts_with(&root), "the root comes first, unchanged");
    let claims = chain_claims(d, &chain);
    let (parent, child) = (&claims[0], &claims[1]);
    assert_eq!(child["sub"], "B");
    assert_eq!(child["aud"], parent["aud"]);
    assert_eq!(child["grant"]["obo"], "alice");
    assert_eq!(child["grant"]["sid"], "s-1");
    assert_eq!(child["nbf"], parent["nbf"]);
    assert_eq!(child["exp"], parent["exp"]);
    assert_eq!(child["grant"]["max_uses"], 1, "sign's default");
    assert_ne!(child["cnf"], parent["cnf"], "bound to B, not to A");
    // Given explicitly, inside the parent: kept.
    let narrow = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.ticket.read",
            "--aud",
            "q2",
            "--ttl",
            "1m",
            "--max-uses",
            "3",
        ],
    );
    let child = &chain_claims(d, &narrow)[1];
    assert_eq!(child["aud"], "q2", "one audience prints as text");
    assert_eq!(child["grant"]["max_uses"], 3);
    assert_eq!(
        child["exp"].as_u64().unwrap() - child["nbf"].as_u64().unwrap(),
        60
    );
}

/// Attack 6 of issue 23: the orchestrator named no principal and no session; a delegate cannot
/// claim one (`docs/spec.md` §13: exactly the parent's, or none).
#[test]
fn delegate_refuses_an_obo_or_session_its_parent_never_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for k in ["orch", "a", "b"] {
        ok(d, &["keygen", "--out", &format!("{k}.key")]);
    }
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            "q1",
            "--tool",
            "crm.*",
            "--holder",
            "a.key.pub",
        ],
    );
    let base = [
        "delegate",
        "--key",
        "a.key",
        "--parent",
        &root,
        "--agent",
        "B",
        "--holder",
        "b.key.pub",
        "--tool",
        "crm.read",
    ];
    for (extra, needle) in [
        (["--obo", "ceo@acme.example"], "(obo)"),
        (["--session", "s-9"], "(sid)"),
    ] {
        let args = [&base[..], &extra[..]].concat();
        let (code, stdout, stderr) = laissez(d, &args);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(stdout.is_empty(), "{extra:?} printed {stdout}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // Without them the child is signed, and names neither.
    let chain = ok(d, &base);
    let leaf = &chain_claims(d, &chain)[1];
    assert!(
        leaf["grant"].get("obo").is_none_or(Value::is_null),
        "{leaf}"
    );
    assert!(
        leaf["grant"].get("sid").is_none_or(Value::is_null),
        "{leaf}"
    );
}

#[test]
fn delegate_refuses_what_would_not_hold_naming_the_field() {
    let (dir, root) = setup(now());
    let d = dir.path();
    let base = [
        "delegate",
        "--key",
        "a.key",
        "--parent",
        &root,
        "--agent",
        "B",
        "--holder",
        "b.key.pub",
        "--tool",
        "crm.ticket.read",
    ];
    let refused = |extra: &[&str], code: i32, needle: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let (got, stdout, stderr) = laissez(d, &args);
        assert_eq!(got, code, "{extra:?}: {stderr}");
        assert!(stdout.is_empty(), "{extra:?} printed {stdout}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    };
    refused(&["--max-uses", "4"], 2, "(max_uses)");
    refused(&["--aud", "q9"], 2, "(aud)");
    refused(&["--tool", "billing.pay"], 2, "(tools)");
    refused(&["--tool", "crm.drop=destructive"], 2, "(tools)");
    refused(&["--obo", "bob"], 2, "(obo)");
    refused(&["--session", "s-2"], 2, "(sid)");
    // Not A's key: the parent is bound to another holder.
    let (code, _, stderr) = laissez(
        d,
        &[
            "delegate",
            "--key",
            "b.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "c.key.pub",
            "--tool",
            "crm.read",
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("bound to the holder key"), "{stderr}");
    // No --holder: a child is never a bearer envelope, and it says so.
    let (code, _, stderr) = laissez(
        d,
        &[
            "delegate", "--key", "a.key", "--parent", &root, "--agent", "B", "--tool", "crm.read",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--holder PUBFILE is required"), "{stderr}");
    assert!(stderr.contains("never a bearer"), "{stderr}");
    // A bearer parent cannot delegate.
    let bearer = ok(
        d,
        &[
            "sign", "--key", "orch.key", "--agent", "A", "--aud", "q1", "--tool", "crm.*",
        ],
    );
    let (code, _, stderr) = laissez(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &bearer,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.read",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not holder-bound"), "{stderr}");
    // Garbage for a parent is malformed.
    let (code, _, stderr) = laissez(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            "abc.!!",
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.read",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("denied: malformed"), "{stderr}");
    // Four envelopes is the most: the fourth holder cannot delegate again.
    let mut chain = root.clone();
    for (key, agent, next) in [("a", "B", "b"), ("b", "C", "c"), ("c", "D", "d")] {
        chain = ok(
            d,
            &[
                "delegate",
                "--key",
                &format!("{key}.key"),
                "--parent",
                &chain,
                "--agent",
                agent,
                "--holder",
                &format!("{next}.key.pub"),
                "--tool",
                "crm.ticket.read",
            ],
        );
    }
    assert_eq!(chain.split('.').count(), 4);
    let (code, _, stderr) = laissez(
        d,
        &[
            "delegate",
            "--key",
            "d.key",
            "--parent",
            &chain,
            "--agent",
            "E",
            "--holder",
            "e.key.pub",
            "--tool",
            "crm.ticket.read",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("at most 4"), "{stderr}");
}

#[test]
fn verify_json_of_a_chain_lists_it_root_first_with_the_leafs_claims_and_the_roots_kid() {
    let (dir, root) = setup(now());
    let d = dir.path();
    let orch_kid = json(&ok(d, &["inspect", "--json", &root]))["kid"].clone();
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.ticket.read",
            "--max-uses",
            "2",
        ],
    );
    let call = [
        "--aud",
        "q1",
        "--tool",
        "crm.ticket.read",
        "--class",
        "read",
        "--message-id",
        "m-1",
    ];
    let mut invoke = vec!["invoke", "--key", "b.key", "--envelope", &chain];
    invoke.extend_from_slice(&call);
    let invocation = ok(d, &invoke);
    let mut verify = vec!["verify", "--trust", "orch.key.pub", "--json"];
    verify.extend_from_slice(&call);
    verify.extend_from_slice(&["--invocation", &invocation, &chain]);
    let out = json(&ok(d, &verify));
    assert_eq!(out["allowed"], true, "{out}");
    assert_eq!(out["kid"], orch_kid, "the root's kid");
    assert_eq!(out["claims"]["sub"], "B", "the leaf's claims");
    let subs: Vec<&str> = out["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sub"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["A", "B"]);
    // Text output names the chain too.
    let mut plain = vec!["verify", "--trust", "orch.key.pub"];
    plain.extend_from_slice(&call);
    plain.extend_from_slice(&["--invocation", &invocation, &chain]);
    assert_eq!(
        ok(d, &plain),
        "allowed: agent=B chain=A>B tool=crm.ticket.read class=read"
    );
    // A's invocation is not B's: the leaf's holder signs.
    let mut by_a = vec!["invoke", "--key", "a.key", "--envelope", &chain];
    by_a.extend_from_slice(&call);
    let (code, _, stderr) = laissez(d, &by_a);
    assert_eq!(code, 3, "{stderr}");

    // The leaf alone names a key nobody trusts; under another root it is a broken link.
    let leaf = chain.split('.').nth(1).unwrap();
    let denied = |env: &str| {
        let (code, stdout, stderr) = laissez(
            d,
            &[
                "verify",
                "--trust",
                "orch.key.pub",
                "--aud",
                "q1",
                "--json",
                env,
            ],
        );
        assert_eq!(code, 1, "{stderr}");
        json(&stdout)
    };
    assert_eq!(denied(leaf)["reason"], "unknown_key");
    let other_root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            "q1",
            "--tool",
            "crm.*",
            "--holder",
            "a.key.pub",
        ],
    );
    let spliced = denied(&format!("{other_root}.{leaf}"));
    assert_eq!(spliced["reason"], "bad_delegation", "{spliced}");
    assert_eq!(spliced["detail"], "wrong_parent");
    assert_eq!(spliced["kid"], orch_kid);
    assert_eq!(spliced["chain"], Value::Null);
    // A child signed without delegate's checks, granting more uses than its parent.
    let wide = ok(
        d,
        &[
            "sign",
            "--key",
            "a.key",
            "--agent",
            "B",
            "--aud",
            "q1",
            "--tool",
            "crm.*",
            "--max-uses",
            "9",
            "--holder",
            "b.key.pub",
        ],
    );
    let wide = laissez_sign::decode_text(&wide).unwrap();
    let root_bytes = laissez_sign::decode_text(&root).unwrap();
    let seed =
        laissez_test_support::seed_of_pkcs8_pem(&std::fs::read_to_string(d.join("a.key")).unwrap())
            .unwrap();
    let forced = laissez_test_support::force_child(&root_bytes, &wide, &seed).unwrap();
    let widened = denied(&format!("{root}.{}", laissez_sign::encode_text(&forced)));
    assert_eq!(widened["reason"], "not_attenuated", "{widened}");
    assert_eq!(widened["detail"], "max_uses");
    assert_eq!(widened["claims"]["sub"], "B");
    assert_eq!(widened["chain"].as_array().unwrap().len(), 2);
    // Text that is not a chain's: malformed, saying which envelope.
    let broken = denied(&format!("{root}.!!"));
    assert_eq!(broken["reason"], "malformed");
    let (_, _, stderr) = laissez(
        d,
        &[
            "verify",
            "--trust",
            "orch.key.pub",
            "--aud",
            "q1",
            &format!("{root}..{leaf}"),
        ],
    );
    assert!(stderr.contains("envelope 1 of the chain"), "{stderr}");
}

#[test]
fn inspect_shows_each_envelope_of_a_chain_unverified_root_first() {
    let (dir, root) = setup(now());
    let d = dir.path();
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.ticket.read",
        ],
    );
    let text = ok(d, &["inspect", &chain]);
    assert!(
        text.starts_with("UNVERIFIED: a delegation chain of 2 envelopes, root first (A > B)"),
        "{text}"
    );
    assert_eq!(text.matches("\nUNVERIFIED:").count(), 2, "{text}");
    assert!(text.contains("-- envelope 0 (root)"), "{text}");
    assert!(text.contains("-- envelope 1 (leaf)"), "{text}");
    assert_eq!(
        text.matches("\nparent ").count(),
        1,
        "only the child names a parent"
    );
    let out = json(&ok(d, &["inspect", "--json", &chain]));
    assert_eq!(
        out["kid"],
        json(&ok(d, &["inspect", "--json", &root]))["kid"]
    );
    assert_eq!(out["claims"]["sub"], "B");
    assert_eq!(out["chain"][0]["sub"], "A");
    assert_eq!(out["chain"][1], out["claims"]);
    // One envelope prints as before: no "chain".
    assert_eq!(
        json(&ok(d, &["inspect", "--json", &root]))["chain"],
        Value::Null
    );
}

#[test]
fn verify_ledger_spends_a_use_of_every_envelope_of_the_chain() {
    let (dir, root) = setup(now());
    let d = dir.path();
    // A (3 uses) hands 3 uses each to B and to C: together they still get 3.
    let child = |agent: &str, key: &str| {
        ok(
            d,
            &[
                "delegate",
                "--key",
                "a.key",
                "--parent",
                &root,
                "--agent",
                agent,
                "--holder",
                &format!("{key}.key.pub"),
                "--tool",
                "crm.ticket.read",
                "--max-uses",
                "3",
            ],
        )
    };
    let (b, c) = (child("B", "b"), child("C", "c"));
    let spend = |chain: &str, key: &str, id: &str| {
        let call = [
            "--aud",
            "q1",
            "--tool",
            "crm.ticket.read",
            "--class",
            "read",
            "--message-id",
            id,
        ];
        let mut invoke = vec!["invoke", "--key", key, "--envelope", chain];
        invoke.extend_from_slice(&call);
        let invocation = ok(d, &invoke);
        let mut verify = vec!["verify", "--trust", "orch.key.pub", "--json"];
        verify.extend_from_slice(&call);
        verify.extend_from_slice(&["--ledger", "uses.redb", "--invocation", &invocation, chain]);
        let (_, stdout, stderr) = laissez(d, &verify);
        let out = json(&stdout);
        let reason = out["reason"].as_str().unwrap_or("allowed").to_owned();
        assert!(out["allowed"] == (reason == "allowed"), "{stderr}");
        (reason, out["use"].as_u64())
    };
    let allowed = |n| ("allowed".to_owned(), Some(n));
    assert_eq!(spend(&b, "b.key", "m-1"), allowed(1));
    assert_eq!(spend(&c, "c.key", "m-2"), allowed(1));
    // The same id under another child is another (leaf cti, message id): A's third use.
    assert_eq!(spend(&b, "b.key", "m-2"), allowed(2));
    assert_eq!(spend(&b, "b.key", "m-1").0, "replayed");
    assert_eq!(spend(&c, "c.key", "m-3").0, "uses_exhausted");
    assert_eq!(spend(&b, "b.key", "m-4").0, "uses_exhausted");
    // The root itself has none left either.
    assert_eq!(spend(&root, "a.key", "m-5").0, "uses_exhausted");
}

#[test]
fn an_approval_rule_of_the_root_holds_for_the_leaf_and_approve_signs_it_over_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for k in ["orch", "a", "b", "alice", "mallory"] {
        ok(d, &["keygen", "--out", &format!("{k}.key")]);
    }
    // The orchestrator requires alice's approval for destructive calls; A hands B a
    // destructive tool, with no rule of its own: the root's still holds.
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            "q1",
            "--tool",
            "crm.*=read+destructive",
            "--max-uses",
            "3",
            "--holder",
            "a.key.pub",
            "--approval",
            "destructive",
            "--approvals",
            "1",
            "--approver",
            "alice.key.pub",
        ],
    );
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.drop=destructive",
        ],
    );
    let call = [
        "--aud",
        "q1",
        "--tool",
        "crm.drop",
        "--class",
        "destructive",
        "--message-id",
        "m-1",
    ];
    let mut invoke = vec!["invoke", "--key", "b.key", "--envelope", &chain];
    invoke.extend_from_slice(&call);
    let invocation = ok(d, &invoke);
    let verify = |approval: Option<&str>| {
        let mut args = vec![
            "verify",
            "--trust",
            "orch.key.pub",
            "--approvers",
            "alice.key.pub",
            "--json",
        ];
        args.extend_from_slice(&call);
        args.extend_from_slice(&["--invocation", &invocation]);
        if let Some(approval) = approval {
            args.extend_from_slice(&["--approval", approval]);
        }
        args.push(&chain);
        let (_, stdout, _) = laissez(d, &args);
        json(&stdout)
    };
    let without = verify(None);
    assert_eq!(without["reason"], "approval_required", "{without}");
    assert_eq!(without["detail"], "0 of 1");
    let approve = |key: &str| {
        let mut args = vec!["approve", "--key", key, "--envelope", &chain];
        args.extend_from_slice(&call);
        laissez(d, &args)
    };
    let (code, approval, stderr) = approve("alice.key");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("delegated:  A > B"), "{stderr}");
    let with = verify(Some(approval.trim()));
    assert_eq!(with["allowed"], true, "{with}");
    // Someone the rule does not list cannot approve (a key error), and nothing is printed.
    let (code, stdout, stderr) = approve("mallory.key");
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn revoking_the_root_or_a_middle_envelope_stops_the_leaf() {
    let (dir, root) = setup(now());
    let d = dir.path();
    let b = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.ticket.*",
        ],
    );
    let c = ok(
        d,
        &[
            "delegate",
            "--key",
            "b.key",
            "--parent",
            &b,
            "--agent",
            "C",
            "--holder",
            "c.key.pub",
            "--tool",
            "crm.ticket.read",
        ],
    );
    let claims = chain_claims(d, &c);
    let call = [
        "--aud",
        "q1",
        "--tool",
        "crm.ticket.read",
        "--class",
        "read",
        "--message-id",
        "m-1",
    ];
    let mut invoke = vec!["invoke", "--key", "c.key", "--envelope", &c];
    invoke.extend_from_slice(&call);
    let invocation = ok(d, &invoke);
    let decide = |records: &str| {
        std::fs::write(d.join("revoked.txt"), records).unwrap();
        let mut args = vec!["verify", "--trust", "orch.key.pub", "--json"];
        args.extend_from_slice(&call);
        args.extend_from_slice(&[
            "--invocation",
            &invocation,
            "--revocations",
            "revoked.txt",
            &c,
        ]);
        let (_, stdout, stderr) = laissez(d, &args);
        let out = json(&stdout);
        out["reason"]
            .as_str()
            .map_or_else(|| format!("allowed {stderr}"), str::to_owned)
    };
    assert!(decide("").starts_with("allowed"));
    let revoke = |what: &[&str]| {
        let mut args = vec!["revoke", "--key", "orch.key"];
        args.extend_from_slice(what);
        ok(d, &args)
    };
    let root_cti = claims[0]["cti"].as_str().unwrap();
    assert_eq!(
        decide(&revoke(&["--cti", root_cti])),
        "revoked",
        "the root's cti"
    );
    let middle_cti = claims[1]["cti"].as_str().unwrap();
    assert_eq!(
        decide(&revoke(&["--cti", middle_cti])),
        "revoked",
        "B's cti"
    );
    assert_eq!(
        decide(&revoke(&["--agent", "B"])),
        "revoked",
        "the middle agent"
    );
    // A record about someone else changes nothing.
    assert!(decide(&revoke(&["--agent", "Z"])).starts_with("allowed"));
}
