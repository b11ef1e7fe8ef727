//! `keygen` and `pubkey` through the real binary: file modes, refusal to overwrite, refusal
//! of loose permissions, and keys written by OpenSSL and Python's `cryptography`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Dir, mode, set_mode, stderr, stdout};
use laissez_sign::keyfile::{read_secret_key_file, read_trust_file};

#[test]
fn keygen_writes_0600_secret_and_public_and_prints_the_kid() {
    let dir = Dir::new();
    let kid = dir.keygen("orch.key");
    assert_eq!(kid.len(), 16);
    assert!(
        kid.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(mode(&dir.path("orch.key")), 0o600);
    assert_eq!(mode(&dir.path("orch.key.pub")), 0o644);
    let secret = std::fs::read_to_string(dir.path("orch.key")).unwrap();
    assert!(secret.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let keys = read_trust_file(&dir.path("orch.key.pub")).unwrap();
    assert_eq!(keys[0].kid().to_string(), kid);
    assert_eq!(
        read_secret_key_file(&dir.path("orch.key"))
            .unwrap()
            .kid()
            .to_string(),
        kid
    );
}

#[test]
fn keygen_refuses_to_overwrite_unless_forced() {
    let dir = Dir::new();
    let first = dir.keygen("k");
    let before = std::fs::read(dir.path("k")).unwrap();
    let out = dir.laissez(&["keygen", "--out", "k"]).assert().code(3);
    let err = stderr(out.get_output());
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path("k")).unwrap(),
        before,
        "nothing is written on failure"
    );

    let out = dir
        .laissez(&["keygen", "--out", "k", "--force"])
        .assert()
        .success();
    let second = stdout(out.get_output());
    assert_ne!(first, second);
    assert_eq!(mode(&dir.path("k")), 0o600);
    let pub_kid = read_trust_file(&dir.path("k.pub")).unwrap()[0]
        .kid()
        .to_string();
    assert_eq!(
        pub_kid, second,
        "FILE.pub was replaced with the new key too"
    );
}

#[test]
fn keygen_into_a_missing_directory_is_an_io_error_and_writes_nothing() {
    let dir = Dir::new();
    let out = dir
        .laissez(&["keygen", "--out", "no/such/dir/k"])
        .assert()
        .code(3);
    assert!(stderr(out.get_output()).contains("no/such/dir/k"));
    assert_eq!(std::fs::read_dir(dir.tmp.path()).unwrap().count(), 0);
}

#[test]
fn pubkey_prints_the_spki_pem_of_the_secret_key() {
    let dir = Dir::new();
    dir.keygen("k");
    let out = dir.laissez(&["pubkey", "--key", "k"]).assert().success();
    let pem = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(pem, std::fs::read_to_string(dir.path("k.pub")).unwrap());
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
}

#[test]
fn a_secret_key_readable_by_group_or_others_is_refused_with_the_fix() {
    let dir = Dir::new();
    dir.keygen("k");
    for loose in [0o640, 0o604, 0o644] {
        set_mode(&dir.path("k"), loose);
        let out = dir.laissez(&["pubkey", "--key", "k"]).assert().code(3);
        let err = stderr(out.get_output());
        assert!(err.contains("chmod 600 k"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        let out = dir
            .laissez(&[
                "sign", "--key", "k", "--agent", "a", "--aud", "q", "--tool", "t",
            ])
            .assert()
            .code(3);
        assert!(stderr(out.get_output()).contains("chmod 600 k"));
    }
}

#[test]
fn unreadable_and_non_key_files_are_io_errors() {
    let dir = Dir::new();
    let out = dir
        .laissez(&["pubkey", "--key", "missing.key"])
        .assert()
        .code(3);
    assert!(stderr(out.get_output()).contains("missing.key"));
    std::fs::write(dir.path("junk"), "not a key\n").unwrap();
    set_mode(&dir.path("junk"), 0o600);
    let out = dir.laissez(&["pubkey", "--key", "junk"]).assert().code(3);
    assert!(stderr(out.get_output()).contains("PRIVATE KEY"));
    // A public key where a secret key is expected.
    dir.keygen("k");
    set_mode(&dir.path("k.pub"), 0o600);
    dir.laissez(&["pubkey", "--key", "k.pub"]).assert().code(3);
}

/// Keys written by Python's `cryptography` and by OpenSSL are read, and their kids match
/// the ones computed by Python's hashlib when the fixtures were made.
#[test]
fn keys_written_by_python_cryptography_and_openssl_are_accepted() {
    for (name, kid) in [
        ("python-ed25519", "68dc42df3154aa2e"),
        ("openssl-ed25519", "cec37dcbbfacf666"),
    ] {
        let dir = Dir::new();
        let secret = format!("{name}.pem");
        let public = format!("{name}.pub.pem");
        dir.fixture(&secret);
        dir.fixture(&public);
        let out = dir
            .laissez(&["pubkey", "--key", &secret])
            .assert()
            .success();
        let ours = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let theirs = std::fs::read_to_string(dir.path(&public)).unwrap();
        assert_eq!(
            ours.trim(),
            theirs.trim(),
            "{name}: same SPKI PEM as the other tool wrote"
        );

        let envelope = dir.sign(&secret, &["--agent", "a", "--aud", "q", "--tool", "t"]);
        let out = dir
            .laissez(&[
                "verify", "--json", "--trust", &public, "--aud", "q", "--tool", "t", "--class",
                "read", &envelope,
            ])
            .assert()
            .success();
        let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
        assert_eq!(json["kid"], kid, "{name}");
    }
}

#[test]
fn a_small_order_trusted_key_is_refused_naming_the_file() {
    let dir = Dir::new();
    dir.keygen("k");
    dir.fixture("small-order.pub.pem");
    let envelope = dir.sign("k", &["--agent", "a", "--aud", "q", "--tool", "t"]);
    let out = dir
        .laissez(&[
            "verify",
            "--trust",
            "k.pub",
            "--trust",
            "small-order.pub.pem",
            "--aud",
            "q",
            &envelope,
        ])
        .assert()
        .code(3);
    let err = stderr(out.get_output());
    assert!(
        err.contains("small-order.pub.pem") && err.contains("small-order point"),
        "{err}"
    );
}
