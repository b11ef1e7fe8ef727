//! The systemd unit in examples/systemd (docs/operations.md): every flag its `ExecStart` passes
//! is one `laissez consume` takes, and `systemd-analyze verify` accepts the unit without a
//! warning, while it does warn about the same unit with a misspelt directive. Without
//! systemd-analyze the test fails, unless `LAISSEZ_NO_SYSTEMD_ANALYZE` is set.

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
    let flags: Vec<&String> = argv.iter().filter(|a| a.starts_with("--")).collect();
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
    // The handler runs last, after --exec.
    let exec = argv.iter().position(|a| a == "--exec").expect("--exec");
    assert_eq!(exec, argv.len() - 2, "{argv:?}");
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
