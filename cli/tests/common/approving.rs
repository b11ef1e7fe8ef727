//! `laissez approve` against the real broker: approver keys, an envelope whose destructive
//! calls need approval, a worker run until idle and the command line of an approver.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use laissez_amqp::lapin::options::QueueDeclareOptions;
use laissez_amqp::lapin::types::FieldTable;
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{ApprovalSpec, EnvelopeBuilder, SignedEnvelope};
use laissez_test_support::amqp_url;
use laissez_verify::{ActionClass, Classes, TrustedKey};

use super::broker::Setup;

/// The value that arms the crash hook of `laissez approve` (feature `test-crash-hooks`).
pub const CRASH: (&str, &str) = (
    "LAISSEZ_TEST_CRASH_AFTER_CONFIRM",
    "exit-before-ack-and-leave-two-copies",
);

/// Each run of the command appends a line to runs.txt.
pub const RECORD: &str = r#"echo "ran $LAISSEZ_MESSAGE_ID by=$LAISSEZ_APPROVED_BY" >> runs.txt"#;

pub fn laissez(s: &Setup) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
    cmd.env("LAISSEZ_AMQP_URL", amqp_url())
        .env_remove("LAISSEZ_REDIS_URL")
        .env_remove(CRASH.0)
        .current_dir(s.dir.path());
    cmd
}

/// Approver keys NAME.key (and NAME.key.pub) in the directory, and approvers.pub holding
/// all their public keys; their public keys.
pub fn approvers(s: &Setup, names: &[&str]) -> Vec<TrustedKey> {
    let mut pem = String::new();
    let mut keys = Vec::new();
    for name in names {
        let file = format!("{name}.key");
        let out = laissez(s)
            .args(["keygen", "--out", &file])
            .output()
            .unwrap();
        assert!(out.status.success());
        pem.push_str(&std::fs::read_to_string(s.dir.path().join(format!("{file}.pub"))).unwrap());
        keys.push(
            read_secret_key_file(&s.dir.path().join(&file))
                .unwrap()
                .public_key(),
        );
    }
    std::fs::write(s.dir.path().join("approvers.pub"), pem).unwrap();
    keys
}

/// A grant of `crm.*`, every class, `m` of `keys` approving destructive calls.
pub fn envelope(s: &Setup, m: usize, keys: &[TrustedKey]) -> SignedEnvelope {
    EnvelopeBuilder::new("spiffe://acme.example/agent/cleaner")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .max_uses(3)
        .on_behalf_of("alice")
        .approval(ApprovalSpec::new(Classes::only(ActionClass::Destructive), m, keys).unwrap())
        .sign(&s.key)
        .unwrap()
}

/// One `consume` run until idle: its decision lines (not its outcome lines) and its stderr.
pub fn consume(s: &Setup) -> (Vec<serde_json::Value>, String) {
    let out = s
        .consume(&[
            "--approvers",
            "approvers.pub",
            "--exit-when-idle",
            "2s",
            "--exec",
            "sh",
            "-c",
            RECORD,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    // The decisions only: the lines of the command's outcome (`handled`, `handler_failed`)
    // follow them.
    let decisions = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| !super::is_outcome_line(d))
        .collect();
    (decisions, stderr)
}

/// `laissez approve --from DLQ` with `key`, and `extra` arguments.
pub fn approve(s: &Setup, key: &str, extra: &[&str]) -> Command {
    let mut cmd = laissez(s);
    cmd.args(["approve", "--key", key, "--from"])
        .arg(&s.topology.dead_letter_queue)
        .args(["--trust", "trust.pub", "--aud", &s.topology.queue])
        .args(["--tools", "tools.toml", "--approvers", "approvers.pub"])
        .args(["--revocations-stream", &s.revocation_stream()]);
    // The worker's ledger, once a worker has made it (approve never creates one).
    if s.dir.path().join("uses.redb").exists() {
        cmd.args(["--ledger", "uses.redb"]);
    }
    cmd.args(extra).stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// The messages ready in `queue` (a passive declare: nothing is taken).
pub async fn ready(s: &Setup, queue: &str) -> u32 {
    let channel = s.connection.create_channel().await.unwrap();
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

/// Waits until `queue` has `n` ready messages.
pub async fn wait_ready(s: &Setup, queue: &str, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready(s, queue).await != n {
        assert!(
            Instant::now() < deadline,
            "{queue}: {} ready, not {n}",
            ready(s, queue).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn runs(s: &Setup) -> Vec<String> {
    std::fs::read_to_string(s.dir.path().join("runs.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn reasons(decisions: &[serde_json::Value]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| d["reason"].as_str().unwrap_or("allowed").to_owned())
        .collect()
}
