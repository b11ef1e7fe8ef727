//! `laissez revoke`, `verify --revocations` and `inspect` of a record, offline
//! (`docs/spec.md` §10, §14).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{AGENT, Dir, stderr, stdout};

const AUD: &str = "billing-queue";

fn sign(dir: &Dir, session: &str) -> String {
    dir.sign(
        "iss",
        &[
            "--agent",
            AGENT,
            "--aud",
            AUD,
            "--tool",
            "crm.read",
            "--session",
            session,
            "--obo",
            "user:alice",
        ],
    )
}

fn revoke(dir: &Dir, args: &[&str]) -> String {
    let mut all = vec!["revoke", "--key", "iss"];
    all.extend_from_slice(args);
    stdout(dir.laissez(&all).assert().success().get_output())
}

/// `verify` of `envelope` holding the records in FILE; returns (exit code, stderr).
fn verify(dir: &Dir, file: &str, envelope: &str) -> (i32, String) {
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "iss.pub",
            "--aud",
            AUD,
            "--tool",
            "crm.read",
            "--class",
            "read",
            "--revocations",
            file,
            envelope,
        ])
        .output()
        .unwrap();
    (out.status.code().unwrap(), stderr(&out))
}

#[test]
fn a_revoked_session_is_denied_and_others_are_not() {
    let dir = Dir::new();
    dir.keygen("iss");
    let ended = sign(&dir, "task-42");
    let other = sign(&dir, "task-43");
    let record = revoke(&dir, &["--session", "task-42"]);
    std::fs::write(dir.path("revoked.txt"), format!("\n{record}\n\n")).unwrap();
    let (code, err) = verify(&dir, "revoked.txt", &ended);
    assert_eq!(code, 1);
    assert!(err.starts_with("denied: revoked\n"), "{err}");
    assert_eq!(verify(&dir, "revoked.txt", &other).0, 0);
    // Without the file it is allowed: the record is what denies.
    let none = dir.path("none.txt");
    std::fs::write(&none, "").unwrap();
    assert_eq!(verify(&dir, "none.txt", &ended).0, 0);
}

#[test]
fn each_entry_kind_revokes_what_it_names() {
    let dir = Dir::new();
    let kid = dir.keygen("iss");
    let envelope = sign(&dir, "task-1");
    let cti = {
        let out = dir
            .laissez(&["inspect", "--json", &envelope])
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
        v["claims"]["cti"].as_str().unwrap().to_owned()
    };
    for args in [
        vec!["--cti", cti.as_str()],
        vec!["--kid", kid.as_str()],
        vec!["--agent", AGENT],
        vec!["--obo", "user:alice"],
    ] {
        let record = revoke(&dir, &args);
        std::fs::write(dir.path("r.txt"), record).unwrap();
        assert_eq!(verify(&dir, "r.txt", &envelope).0, 1, "{args:?}");
    }
}

#[test]
fn bad_lines_are_reported_and_ignored() {
    let dir = Dir::new();
    dir.keygen("iss");
    dir.keygen("stranger");
    let envelope = sign(&dir, "task-42");
    let untrusted = stdout(
        dir.laissez(&["revoke", "--key", "stranger", "--session", "task-42"])
            .assert()
            .success()
            .get_output(),
    );
    std::fs::write(
        dir.path("bad.txt"),
        format!("not base64!\n{untrusted}\n{envelope}\n"),
    )
    .unwrap();
    let (code, err) = verify(&dir, "bad.txt", &envelope);
    assert_eq!(code, 0, "{err}");
    for line in 1..=3 {
        assert!(
            err.contains(&format!("bad.txt line {line}: ignored")),
            "{err}"
        );
    }
    assert!(
        err.contains("unknown_key") || err.contains("names no trusted key"),
        "{err}"
    );
    // A file that cannot be read is exit 3.
    assert_eq!(verify(&dir, "missing.txt", &envelope).0, 3);
}

#[test]
fn usage_errors_are_exit_2() {
    let dir = Dir::new();
    dir.keygen("iss");
    for args in [
        vec!["revoke", "--key", "iss"],
        vec!["revoke", "--key", "iss", "--kid", "abc"],
        vec!["revoke", "--key", "iss", "--cti", "00"],
        vec!["revoke", "--key", "iss", "--session", ""],
        vec!["revoke", "--key", "iss", "--session", "s", "--keep", "169h"],
        vec!["revoke", "--key", "iss", "--session", "s", "--stream", "x"],
    ] {
        dir.laissez(&args).assert().code(2);
    }
    dir.laissez(&["revoke", "--key", "absent", "--session", "s"])
        .assert()
        .code(3);
}

#[test]
fn inspect_shows_a_record_unverified() {
    let dir = Dir::new();
    let kid = dir.keygen("iss");
    let record = revoke(
        &dir,
        &["--session", "task-42", "--kid", &kid, "--keep", "1h"],
    );
    let text = stdout(
        dir.laissez(&["inspect", &record])
            .assert()
            .success()
            .get_output(),
    );
    assert!(
        text.starts_with("UNVERIFIED: a revocation record"),
        "{text}"
    );
    assert!(text.contains("revokes  sid task-42"), "{text}");
    assert!(text.contains(&format!("revokes  kid {kid}")), "{text}");
    assert!(text.contains("(kept 3600 s)"), "{text}");
    let json = stdout(
        dir.laissez(&["inspect", "--json", &record])
            .assert()
            .success()
            .get_output(),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["kid"], kid.as_str());
    assert_eq!(v["revocation"]["entries"][0]["kind"], "kid");
    assert_eq!(v["revocation"]["entries"][1]["value"], "task-42");
    let until = v["revocation"]["until"].as_u64().unwrap();
    assert_eq!(until - v["revocation"]["iat"].as_u64().unwrap(), 3600);
}
