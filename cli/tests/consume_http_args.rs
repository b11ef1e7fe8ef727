//! `laissez consume --http` usage errors, offline (`docs/spec.md` §10): a handler URL it
//! cannot use is exit 2 naming what is wrong with it, before any file is read or the broker is
//! reached; `--http` and `--exec` exclude each other; `--http-timeout` needs `--http`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Dir, stderr};

/// `consume` on a broker that is never reached, with files that do not exist: only the
/// arguments are checked before these fail.
fn consume(dir: &Dir, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "consume",
        "--amqp",
        "amqp://127.0.0.1:1/%2f",
        "--queue",
        "q",
        "--aud",
        "q",
        "--trust",
        "missing.pub",
        "--tools",
        "missing.toml",
    ];
    args.extend_from_slice(extra);
    dir.laissez(&args)
        .env_remove("LAISSEZ_AMQP_URL")
        .env_remove("LAISSEZ_REDIS_URL")
        .output()
        .unwrap()
}

fn usage_error(dir: &Dir, extra: &[&str]) -> String {
    let out = consume(dir, extra);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {text}");
    text
}

#[test]
fn a_handler_url_that_cannot_be_used_is_exit_2_naming_what_is_wrong() {
    let dir = Dir::new();
    for (url, problem) in [
        ("https://127.0.0.1:8443/", "https is not supported"),
        ("ftp://127.0.0.1/", "the scheme is \"ftp\": only http://"),
        ("127.0.0.1:8080", "no scheme"),
        ("http://user:pw@127.0.0.1/", "a user name or password"),
        ("http://127.0.0.1/#x", "fragment"),
        ("http://exa mple/", "not a URL"),
    ] {
        let text = usage_error(&dir, &["--http", url]);
        assert!(text.contains(problem), "{url}: {text}");
        assert!(text.contains(&format!("{url:?}")), "names the URL: {text}");
        assert!(!text.contains("missing"), "no file was read first: {text}");
    }
    let text = usage_error(
        &dir,
        &["--http", "http://127.0.0.1:8080/", "--http-timeout", "0s"],
    );
    assert!(text.contains("the timeout must be more than 0"), "{text}");
}

#[test]
fn http_excludes_exec_and_its_timeout_needs_it() {
    let dir = Dir::new();
    let text = usage_error(
        &dir,
        &["--http", "http://127.0.0.1:8080/", "--exec", "true"],
    );
    assert!(text.contains("--exec") && text.contains("--http"), "{text}");
    // Without --http, a timeout would be ignored: refused, with --exec as without it.
    let text = usage_error(&dir, &["--http-timeout", "5s", "--exec", "true"]);
    assert!(text.contains("--http-timeout"), "{text}");
    let text = usage_error(&dir, &["--http-timeout", "5s"]);
    assert!(text.contains("--http <URL>"), "{text}");
    let text = usage_error(
        &dir,
        &["--http", "http://127.0.0.1:8080/", "--http-timeout", "5"],
    );
    assert!(text.contains("--http-timeout"), "{text}");
}

#[test]
fn the_help_says_how_the_http_handler_is_called() {
    let out = Dir::new().laissez(&["consume", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--http <URL>",
        "--http-timeout <DUR>",
        "laissez-message-id",
        "a 2xx answer acks",
        "\"http_status\"",
        "control",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}
