//! A reader that goes away (`laissez ... | head -c0`) makes every printing command exit 3
//! with a message on stderr, never panic (exit 101).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Stdio};

use common::{Dir, SIGN_ARGS, stderr};

/// Runs `laissez ARGS` with stdout a pipe whose read end is closed before the process starts,
/// so that its first write fails with EPIPE whatever the timing.
fn run_with_closed_stdout(dir: &Dir, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_laissez"))
        .current_dir(dir.tmp.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn every_printing_command_exits_3_when_stdout_is_closed() {
    let dir = Dir::new();
    dir.keygen("k");
    let envelope = dir.sign("k", SIGN_ARGS);
    let mut sign = vec!["sign", "--key", "k"];
    sign.extend_from_slice(SIGN_ARGS);
    let mut sign_json = sign.clone();
    sign_json.push("--json");
    let verify = ["verify", "--trust", "k.pub", "--aud", "billing-queue"];
    let runs: Vec<Vec<&str>> = vec![
        vec!["keygen", "--out", "k2"],
        vec!["pubkey", "--key", "k"],
        sign,
        sign_json,
        [&verify[..], &[envelope.as_str()]].concat(),
        [&verify[..], &["--json", &envelope]].concat(),
        // A denial's JSON that cannot be written is an I/O failure too.
        vec![
            "verify",
            "--trust",
            "k.pub",
            "--aud",
            "other-queue",
            "--json",
            &envelope,
        ],
        vec!["inspect", &envelope],
        vec!["inspect", "--json", &envelope],
        vec!["completions", "bash"],
    ];
    for args in runs {
        let out = run_with_closed_stdout(&dir, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "laissez {args:?}: {err}");
        assert!(
            err.contains("writing to stdout") && !err.contains("panicked"),
            "laissez {args:?}: {err}"
        );
    }
    // keygen's files are complete even though the kid could not be printed.
    assert!(dir.path("k2").exists() && dir.path("k2.pub").exists());
}

#[test]
fn a_denial_without_json_prints_nothing_and_stays_exit_1() {
    let dir = Dir::new();
    dir.keygen("k");
    let envelope = dir.sign("k", SIGN_ARGS);
    let out = run_with_closed_stdout(
        &dir,
        &["verify", "--trust", "k.pub", "--aud", "other", &envelope],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("denied: wrong_audience\n"));
}
