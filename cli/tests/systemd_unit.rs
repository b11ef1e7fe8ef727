//! The systemd unit in examples/systemd (docs/operations.md): every flag its `ExecStart` passes
//! is one `laissez consume` (or `laissez sandbox`) takes, and `systemd-analyze verify` accepts
//! the unit without a warning, while it does warn about the same unit with a misspelt
//! directive; without systemd-analyze the test fails, unless `LAISSEZ_NO_SYSTEMD_ANALYZE` is
//! set. Several instances run side by side (each its own metrics address), and the handler
//! runs under `laissez sandbox`, which cannot write the ledger file (issue 23).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = "laissez-worker@.service";
const INSTALLED_BINARY: &str = "/usr/local/bin/laissez";

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/systemd")
        .join(UNIT);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `ExecStart=` command line, its `\` continuations joined, split on whitespace.
fn exec_start(unit: &str) -> Vec<String> {
    let mut line = String::new();
    let mut lines = unit.lines().skip_while(|l| !l.starts_with("ExecStart="));
    for part in lines.by_ref() {
        let part = part.trim();
        match part.strip_suffix('\\') {
            Some(head) => line.push_str(head),
            None => {
                line.push_str(part);
                break;
            }
        }
        line.push(' ');
    }
    let line = line
        .strip_prefix("ExecStart=")
        .expect("the unit has an ExecStart=");
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn exec_start_runs_consume_with_flags_it_takes() {
    let argv = exec_start(&unit_text());
    assert_eq!(argv[..2], [INSTALLED_BINARY, "consume"], "{argv:?}");
    let help = Command::new(env!("CARGO_BIN_EXE_laissez"))
        .args(["consume", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let exec = argv.iter().position(|a| a == "--exec").expect("--exec");
    let flags: Vec<&String> = argv[..exec]
        .iter()
        .filter(|a| a.starts_with("--"))
        .collect();
    assert!(flags.len() >= 8, "{flags:?}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "ExecStart passes {flag}, which `laissez consume --help` does not list"
        );
    }
    // Secrets come from the environment file, never the command line (the process list).
    assert!(
        !argv.iter().any(|a| a == "--amqp" || a == "--redis"),
        "{argv:?}"
    );
    // The handler runs last, under `laissez sandbox`, whose flags it takes.
    let handler = &argv[exec + 1..];
    assert_eq!(handler[..2], [INSTALLED_BINARY, "sandbox"], "{argv:?}");
    let help = Command::new(env!("CARGO_BIN_EXE_laissez"))
        .args(["sandbox", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let dashes = handler
        .iter()
        .position(|a| a == "--")
        .expect("sandbox ... -- HANDLER");
    assert_eq!(dashes, handler.len() - 2, "{argv:?}");
    for flag in handler[2..dashes].iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")),
            "`laissez sandbox` has no {flag}"
        );
    }
}

/// The value of `flag` in `argv`.
fn value_of<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let at = argv
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag}"));
    &argv[at + 1]
}

#[test]
fn each_instance_has_its_own_metrics_address() {
    // Issue 23: a literal address made every instance but the first fail to bind, and
    // restart-loop. The address is each instance's, from its own environment file.
    let unit = unit_text();
    let argv = exec_start(&unit);
    let metrics = value_of(&argv, "--metrics");
    assert!(
        metrics.parse::<std::net::SocketAddr>().is_err() && metrics == "${LAISSEZ_METRICS}",
        "--metrics {metrics}: one address for every instance"
    );
    assert!(
        unit.lines()
            .any(|l| l.starts_with("EnvironmentFile=") && l.contains("/%i/")),
        "the variable must come from a file of the instance's own"
    );
    assert!(
        unit.contains("LAISSEZ_METRICS ("),
        "worker.env documents it"
    );
}

#[test]
fn the_handler_cannot_write_the_ledger_under_the_units_sandbox() {
    // Issue 23: the handler ran as the worker's user, with write access to the ledger.
    let argv = exec_start(&unit_text());
    let ledger_dir = Path::new(value_of(&argv, "--ledger"))
        .parent()
        .unwrap()
        .to_path_buf();
    let exec = argv.iter().position(|a| a == "--exec").unwrap();
    let handler = &argv[exec + 1..];
    let writable: Vec<&String> = handler
        .windows(2)
        .filter(|w| w[0] == "--write")
        .map(|w| &w[1])
        .collect();
    assert_eq!(handler[1], "sandbox", "{argv:?}");
    for path in &writable {
        let path = Path::new(path.as_str());
        assert!(
            !ledger_dir.starts_with(path) && !path.starts_with(&ledger_dir),
            "the handler may write {}, where the ledger is",
            path.display()
        );
    }
    // The same sandbox, run: the unit's /tmp is a directory of the test's, the state
    // directory another.
    let dir = tempfile::tempdir().unwrap();
    let (tmp, state) = (dir.path().join("tmp"), dir.path().join("state"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let ledger = state.join("billing.redb");
    std::fs::write(&ledger, b"uses").unwrap();
    let sandboxed = |script: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_laissez"));
        cmd.arg("sandbox");
        for path in &writable {
            cmd.arg("--write");
            cmd.arg(if path.as_str() == "/tmp" {
                tmp.as_path()
            } else {
                Path::new(path.as_str())
            });
        }
        cmd.args(["--", "sh", "-c", script])
            .env("LEDGER", &ledger)
            .env("TMPDIR", &tmp)
            .env("LAISSEZ_MESSAGE_ID", "m-1")
            .output()
            .unwrap()
    };
    // What it may do: read the ledger, write its own files and /dev/null, see its
    // environment; its exit status is its own.
    let out = sandboxed(
        r#"cat "$LEDGER" && echo "$LAISSEZ_MESSAGE_ID" > "$TMPDIR/out" && echo x > /dev/null && exit 7"#,
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"uses");
    assert_eq!(std::fs::read(tmp.join("out")).unwrap(), b"m-1\n");
    // What it may not: append, truncate, replace, rename or remove the ledger, or add a file
    // beside it.
    for script in [
        r#"echo x >> "$LEDGER""#,
        r#": > "$LEDGER""#,
        r#"truncate -s 0 "$LEDGER""#,
        r#"rm -f "$LEDGER""#,
        r#"mv "$LEDGER" "$TMPDIR/moved""#,
        r#"cp "$TMPDIR/out" "$LEDGER""#,
        r#"echo x > "$LEDGER.new""#,
    ] {
        let out = sandboxed(script);
        assert!(!out.status.success(), "{script} succeeded in the sandbox");
    }
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        b"uses",
        "the ledger is untouched"
    );
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
}

/// Runs `systemd-analyze verify` on an instance of `unit` (its binary replaced by the one
/// built here, which must exist), returning its exit success and stderr; `None` without
/// systemd-analyze.
fn analyze(unit: &str) -> Option<(bool, String)> {
    let version = Command::new("systemd-analyze").arg("--version").output();
    if !matches!(version, Ok(ref v) if v.status.success()) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_laissez"));
    std::fs::write(dir.path().join(UNIT), unit).unwrap();
    let instance: PathBuf = dir.path().join("laissez-worker@billing.service");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&instance)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn systemd_analyze_accepts_the_unit_and_catches_a_typo() {
    let unit = unit_text();
    let Some((ok, stderr)) = analyze(&unit) else {
        // A machine without systemd opts out explicitly; elsewhere a missing tool is a
        // failure, not a pass that checked nothing.
        assert!(
            std::env::var_os("LAISSEZ_NO_SYSTEMD_ANALYZE").is_some(),
            "systemd-analyze is not installed: install systemd, or set \
             LAISSEZ_NO_SYSTEMD_ANALYZE=1 to leave the unit's syntax unchecked"
        );
        eprintln!("LAISSEZ_NO_SYSTEMD_ANALYZE: the unit's syntax is not checked here");
        return;
    };
    assert!(
        ok && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    // The check itself: a misspelt directive is only a warning (exit 0), so stderr is what
    // must be empty above.
    let typo = unit.replace("TimeoutStopSec=", "TimeoutStpSec=");
    assert_ne!(typo, unit);
    let (_, stderr) = analyze(&typo).unwrap();
    assert!(
        stderr.contains("TimeoutStpSec"),
        "no warning for a typo: {stderr}"
    );
}
