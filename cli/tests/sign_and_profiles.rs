//! `sign` through the real binary: JSON output, `--out`, bad input (exit 2 or 3, nothing
//! written), signing profiles; and shell completions and help examples.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Dir, SIGN_ARGS, mode, stderr, stdout};
use laissez_sign::decode_text;

/// A directory with key `k` and the standard envelope.
fn setup() -> (Dir, String) {
    let dir = Dir::new();
    dir.keygen("k");
    let envelope = dir.sign("k", SIGN_ARGS);
    (dir, envelope)
}

#[test]
fn sign_json_out_and_bad_input() {
    let (dir, _) = setup();
    let out = dir
        .laissez(&[
            "sign",
            "--key",
            "k",
            "--json",
            "--agent",
            "a",
            "--aud",
            "q",
            "--aud",
            "r",
            "--tool",
            "t",
            "--obo",
            "user:1",
            "--session",
            "s-9",
            "--iss",
            "orch",
            "--nbf",
            "2000000000",
            "--ttl",
            "1h30m",
            "--max-uses",
            "7",
        ])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["envelope", "kid", "cti", "claims"]);
    assert_eq!(json["claims"]["cti"], json["cti"]);
    assert_eq!(json["claims"]["aud"], serde_json::json!(["q", "r"]));
    assert_eq!(json["claims"]["iss"], "orch");
    assert_eq!(
        (
            json["claims"]["nbf"].as_u64(),
            json["claims"]["exp"].as_u64()
        ),
        (Some(2_000_000_000), Some(2_000_005_400))
    );
    assert_eq!(json["claims"]["grant"]["obo"], "user:1");
    assert_eq!(json["claims"]["grant"]["sid"], "s-9");
    assert_eq!(json["claims"]["grant"]["max_uses"], 7);
    assert!(decode_text(json["envelope"].as_str().unwrap()).is_ok());

    dir.laissez(&[
        "sign", "--key", "k", "--out", "env.txt", "--agent", "a", "--aud", "q", "--tool", "t",
    ])
    .assert()
    .success()
    .stdout("");
    let written = std::fs::read_to_string(dir.path("env.txt")).unwrap();
    dir.laissez(&["verify", "--trust", "k.pub", "--aud", "q", written.trim()])
        .assert()
        .success();

    let base = [
        "sign", "--key", "k", "--out", "bad.txt", "--agent", "a", "--aud", "q",
    ];
    for (extra, code, needle) in [
        (&["--tool", "t", "--classes", "admin"][..], 2, "admin"),
        (&["--tool", "t=read+delete"], 2, "delete"),
        (&["--tool", "t", "--ttl", "90"], 2, "duration"),
        (&["--tool", "t", "--ttl", "25h"], 2, "24h"),
        (&["--tool", "t", "--ttl", "0s"], 2, "TTL"),
        (&["--tool", "t", "--max-uses", "0"], 2, "max uses"),
        (&["--tool", "Bad.Tool"], 2, "Bad.Tool"),
        (&["--tool", "crm.*.x"], 2, "crm.*.x"),
        (&[], 2, "--tool"),
        (&["--tool", "t", "--raw", "--json"], 2, "--json"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = dir.laissez(&args).assert().code(code);
        let err = stderr(out.get_output());
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(
            !dir.path("bad.txt").exists(),
            "{extra:?}: nothing is written on failure"
        );
    }
    dir.laissez(&[
        "sign", "--key", "missing", "--agent", "a", "--aud", "q", "--tool", "t",
    ])
    .assert()
    .code(3);
    dir.laissez(&["sign", "--key", "k", "--aud", "q", "--tool", "t"])
        .assert()
        .code(2);
}

#[test]
fn sign_out_is_0600_exclusive_and_never_follows_a_link() {
    let (dir, _) = setup();
    let sign_to = |extra: &[&str]| {
        let mut args = vec![
            "sign", "--key", "k", "--agent", "a", "--aud", "q", "--tool", "t", "--out", "env.txt",
        ];
        args.extend_from_slice(extra);
        dir.laissez(&args).assert()
    };
    sign_to(&[]).success();
    assert_eq!(mode(&dir.path("env.txt")), 0o600);
    let first = std::fs::read(dir.path("env.txt")).unwrap();

    let out = sign_to(&[]).code(3);
    let err = stderr(out.get_output());
    assert!(
        err.contains("env.txt") && err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path("env.txt")).unwrap(), first);

    sign_to(&["--force"]).success();
    let second = std::fs::read(dir.path("env.txt")).unwrap();
    assert_ne!(second, first, "--force replaced it");
    assert_eq!(mode(&dir.path("env.txt")), 0o600);
    assert_eq!(
        std::fs::read_dir(dir.tmp.path()).unwrap().count(),
        3,
        "k, k.pub, env.txt and no temporary file"
    );

    // A link planted at the path: refused without --force, replaced (not followed) with it.
    std::fs::remove_file(dir.path("env.txt")).unwrap();
    std::fs::write(dir.path("victim"), "keep me").unwrap();
    std::os::unix::fs::symlink("victim", dir.path("env.txt")).unwrap();
    sign_to(&[]).code(3);
    sign_to(&["--force"]).success();
    assert_eq!(
        std::fs::read_to_string(dir.path("victim")).unwrap(),
        "keep me"
    );
    assert!(
        !std::fs::symlink_metadata(dir.path("env.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(mode(&dir.path("env.txt")), 0o600);
    // A dangling link is not followed either.
    std::fs::remove_file(dir.path("env.txt")).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.path("env.txt")).unwrap();
    sign_to(&[]).code(3);
    assert!(!dir.path("nowhere").exists());

    dir.laissez(&[
        "sign", "--key", "k", "--agent", "a", "--aud", "q", "--tool", "t", "--force",
    ])
    .assert()
    .code(2);
}

#[test]
fn signing_profiles_fill_in_flags_and_flags_override() {
    let (dir, _) = setup();
    std::fs::write(
        dir.path("bot.toml"),
        "agent = \"spiffe://acme.example/agent/bot\"\naud = [\"billing-queue\"]\n\
         tool = [\"crm.ticket.*\", \"crm.ticket.close=write\"]\nclasses = \"read\"\n\
         max_uses = 3\nttl = \"15m\"\nobo = \"user:42\"\nsession = \"task-1\"\niss = \"orch\"\n",
    )
    .unwrap();
    let out = dir
        .laissez(&[
            "sign",
            "--key",
            "k",
            "--profile",
            "bot.toml",
            "--json",
            "--max-uses",
            "5",
        ])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    let c = &json["claims"];
    assert_eq!(c["sub"], "spiffe://acme.example/agent/bot");
    assert_eq!(c["grant"]["max_uses"], 5, "the flag overrides the profile");
    assert_eq!(
        c["grant"]["tools"],
        serde_json::json!(["crm.ticket.*", ["crm.ticket.close", ["write"]]])
    );
    assert_eq!(c["exp"].as_u64().unwrap() - c["nbf"].as_u64().unwrap(), 900);
    assert_eq!(
        (
            c["iss"].as_str(),
            c["grant"]["obo"].as_str(),
            c["grant"]["sid"].as_str()
        ),
        (Some("orch"), Some("user:42"), Some("task-1"))
    );
    let out = dir
        .laissez(&[
            "sign",
            "--key",
            "k",
            "--profile",
            "bot.toml",
            "--json",
            "--tool",
            "reports.read",
        ])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(out.get_output())).unwrap();
    assert_eq!(
        json["claims"]["grant"]["tools"],
        serde_json::json!(["reports.read"]),
        "--tool replaces the list"
    );

    std::fs::write(
        dir.path("typo.toml"),
        "agent = \"a\"\naud = [\"q\"]\ntool = [\"t\"]\nmax_use = 3\n",
    )
    .unwrap();
    let out = dir
        .laissez(&["sign", "--key", "k", "--profile", "typo.toml"])
        .assert()
        .code(2);
    let err = stderr(out.get_output());
    assert!(
        err.contains("typo.toml") && err.contains("max_use") && err.contains("line 4"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::write(dir.path("badttl.toml"), "ttl = \"forever\"\n").unwrap();
    let out = dir
        .laissez(&["sign", "--key", "k", "--profile", "badttl.toml"])
        .assert()
        .code(2);
    assert!(stderr(out.get_output()).contains("ttl"));
    dir.laissez(&["sign", "--key", "k", "--profile", "missing.toml"])
        .assert()
        .code(3);
}

#[test]
fn completions_and_help_with_examples() {
    let dir = Dir::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = dir.laissez(&["completions", shell]).assert().success();
        let script = stdout(out.get_output());
        assert!(
            script.contains("laissez") && script.contains("keygen"),
            "{shell}"
        );
    }
    dir.laissez(&["completions", "tcsh"]).assert().code(2);
    for command in [
        "keygen",
        "pubkey",
        "sign",
        "verify",
        "inspect",
        "completions",
    ] {
        let out = dir.laissez(&[command, "--help"]).assert().success();
        let help = stdout(out.get_output());
        assert!(help.contains("Example"), "{command} --help has an example");
        assert!(help.contains("laissez "), "{command}");
    }
}
