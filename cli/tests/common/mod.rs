//! Helpers shared by the integration tests: the real `laissez` binary in a temporary
//! directory.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod approving;
pub mod broker;
pub mod handler;
pub mod teardown;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A "broker" that takes TCP connections and never answers: the kernel completes the
/// handshakes on the open listener and nothing reads. A worker pointed at it keeps waiting for
/// the broker (unlike a refused port, which is said at once); the listener must be kept alive.
pub fn silent_broker() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Whether a line of `consume`'s stdout is a command's outcome (`handled`,
/// `handler_failed`), printed after the message's decision line.
pub fn is_outcome_line(line: &serde_json::Value) -> bool {
    matches!(line["outcome"].as_str(), Some("handled" | "handler_failed"))
}

/// A temporary working directory for one test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `laissez ARGS...` run in this directory.
    pub fn laissez(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("laissez").unwrap();
        cmd.current_dir(self.tmp.path()).args(args);
        cmd
    }

    /// `laissez keygen --out NAME`, returning the kid it printed.
    pub fn keygen(&self, name: &str) -> String {
        let out = self.laissez(&["keygen", "--out", name]).assert().success();
        String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Copies a committed fixture here; secret keys get mode 0600 (git keeps no modes).
    pub fn fixture(&self, name: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let to = self.path(name);
        std::fs::copy(from, &to).unwrap();
        set_mode(
            &to,
            if name.ends_with(".pub.pem") {
                0o644
            } else {
                0o600
            },
        );
        to
    }

    /// `laissez sign --key KEY ARGS...`, returning the envelope text.
    pub fn sign(&self, key: &str, args: &[&str]) -> String {
        let mut all = vec!["sign", "--key", key];
        all.extend_from_slice(args);
        let out = self.laissez(&all).assert().success();
        stdout(out.get_output())
    }
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim_end()
        .to_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The standard grant of these tests.
pub const AGENT: &str = "spiffe://acme.example/agent/support-bot";
pub const SIGN_ARGS: &[&str] = &[
    "--agent",
    AGENT,
    "--aud",
    "billing-queue",
    "--tool",
    "crm.ticket.*",
    "--tool",
    "crm.ticket.delete=destructive",
    "--classes",
    "read+write",
    "--max-uses",
    "2",
];
