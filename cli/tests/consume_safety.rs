//! What `laissez consume` and `laissez verify` promise about what they pass on and print, on
//! the real binary, broker and Redis:
//! - hostile values (`obo`, `sid`, the agent and the message id with `$(…)`, backquotes, `;`,
//!   quotes) reach a command run without a shell (`env -0`) byte for byte, and a hostile tool
//!   header is refused before anything runs; a control character (NUL, newline) in one of
//!   those values is refused `malformed` before a use is spent (`consume_http.rs` has the
//!   others);
//! - at `RUST_LOG=trace` no output of either command carries an envelope in any encoding
//!   (`consume` logs INFO and above whatever RUST_LOG says: lapin's TRACE frames would carry
//!   it, see `crates/amqp/tests/audit_log.rs`);
//! - with its Redis ledger unreachable, `consume --redis` requeues a message without running
//!   it, and runs it exactly once when Redis is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::broker::Setup;
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall};
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_test_support::{CuttableProxy, assert_no_envelope};
use laissez_verify::ActionClass;

const PATIENCE: Duration = Duration::from_secs(60);

/// A value no shell may interpret: each construct would create `pwned` in the working
/// directory if anything ran it through a shell. No control character: `consume` refuses
/// those (`malformed`, `control_in_claims`) whatever the hand-off.
fn hostile(what: &str) -> String {
    format!(
        "{what} $(touch pwned) `touch pwned`; touch pwned && echo \"dq\" 'sq' \\ |touch pwned ${{HOME}} $PATH"
    )
}

/// The decision lines of a run: the commands' outcome lines aside.
fn decisions(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|d| !common::is_outcome_line(d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_reach_a_command_without_a_shell_literally() {
    let s = Setup::new("hostile").await;
    let (agent, obo, sid, id) = (
        hostile("agent"),
        hostile("obo"),
        hostile("sid"),
        hostile("id"),
    );
    let env = EnvelopeBuilder::new(&agent)
        .audience(&s.topology.queue)
        .tool("crm.*")
        .max_uses(5)
        .on_behalf_of(&obo)
        .session(&sid)
        .sign(&s.key)
        .unwrap();
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, &id)
        .await;
    let bad_tool = ToolCall::new(
        env.as_bytes(),
        "crm.read;$(touch pwned)",
        ActionClass::Read,
        "bad-tool",
    );
    s.publish_call(bad_tool.without_class()).await;
    // `env -0`: no shell, every variable NUL-terminated, so values with newlines stay whole.
    let out = s
        .consume(&["--exit-when-idle", "2s", "--exec", "env", "-0"])
        .output()
        .unwrap();
    let stderr = out.stderr;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&stderr));

    // The command's output goes to stderr; each variable is exactly the signed or published
    // value, once (the environment is sorted, so no LAISSEZ_ variable comes first).
    let count = |needle: &[u8]| {
        stderr
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    };
    for (name, value) in [
        ("LAISSEZ_AGENT", agent.as_str()),
        ("LAISSEZ_OBO", &obo),
        ("LAISSEZ_SESSION", &sid),
        ("LAISSEZ_MESSAGE_ID", &id),
        ("LAISSEZ_TOOL", "crm.read"),
        ("LAISSEZ_CLASS", "read"),
        ("LAISSEZ_USE", "1"),
    ] {
        let entry = format!("\0{name}={value}\0");
        assert_eq!(
            count(entry.as_bytes()),
            1,
            "{name} is not {value:?}: {}",
            String::from_utf8_lossy(&stderr)
        );
    }
    assert_eq!(count(b"\0LAISSEZ_CTI="), 1, "the command ran once");
    assert!(
        !s.dir.path().join("pwned").exists(),
        "a value was run by a shell"
    );
    // One JSON line per message, the hostile id escaped in it and exact once parsed.
    let lines = decisions(&out.stdout);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ran = lines.iter().find(|d| d["allowed"] == true).unwrap();
    assert_eq!(ran["message_id"], id.as_str());
    assert_eq!(ran["agent"], agent.as_str());
    let refused = lines.iter().find(|d| d["allowed"] == false).unwrap();
    assert_eq!(refused["message_id"], "bad-tool");
    assert_eq!(refused["reason"], "malformed");
    s.expect_settled_and_delete(&["bad-tool"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_at_trace_prints_no_envelope() {
    let s = Setup::new("trace").await;
    let env = EnvelopeBuilder::new("agent-cli")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(parse_classes("read+write").unwrap())
        .max_uses(2)
        .sign(&s.key)
        .unwrap();
    let mut tampered = env.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "raw")
        .await;
    let text = Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap()
        .with_encoding(EnvelopeEncoding::Text);
    let call = ToolCall::new(env.as_bytes(), "crm.write", ActionClass::Write, "text");
    text.publish("", &s.topology.queue, &call, b"body")
        .await
        .unwrap();
    s.publish(&tampered, "crm.read", ActionClass::Read, "tampered")
        .await;
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "exhausted")
        .await;
    let out = s
        .consume(&["--exit-when-idle", "2s", "--exec", "true"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It did log: one audit event per message.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("laissez::audit").count(), 4, "{stderr}");
    assert_eq!(decisions(&out.stdout).len(), 4);
    for (what, output) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert_no_envelope(what, output, env.as_bytes());
        assert_no_envelope(what, output, &tampered);
    }
    s.delete().await;
}

#[test]
fn verify_at_trace_prints_no_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();
    std::fs::write(dir.path().join("k.pub"), key.public_key_pem().unwrap()).unwrap();
    let env = EnvelopeBuilder::new("agent-cli")
        .audience("q")
        .tool("crm.*")
        .max_uses(1)
        .sign(&key)
        .unwrap();
    let mut tampered = env.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;
    let truncated = &env.as_bytes()[..env.as_bytes().len() - 1];
    let verify = |extra: &[&str], stdin: &[u8]| {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
            .env("RUST_LOG", "trace")
            .args(["verify", "--trust", "k.pub", "--aud", "q"])
            .args(extra)
            .arg("-")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let call = [
        "--tool",
        "crm.read",
        "--class",
        "read",
        "--message-id",
        "m-1",
        "--ledger",
        "uses.redb",
    ];
    let mut exits = Vec::new();
    for envelope in [env.as_bytes(), &tampered, truncated] {
        // As raw bytes and as base64url text, plain and --json, with and without a call.
        let text = URL_SAFE_NO_PAD.encode(envelope);
        for input in [envelope, text.as_bytes()] {
            for extra in [
                &[][..],
                &["--json"],
                &call[..],
                &[&call[..], &["--json"]].concat(),
            ] {
                let out = verify(extra, input);
                exits.push(out.status.code());
                for (what, output) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                    assert_no_envelope(what, output, env.as_bytes());
                    assert_no_envelope(what, output, &tampered);
                }
            }
        }
    }
    // The good envelope was allowed (its one use spent once, then replayed), the others
    // denied: the outputs checked are the real ones.
    assert_eq!(
        exits.iter().filter(|c| **c == Some(0)).count(),
        5,
        "{exits:?}"
    );
    assert_eq!(
        exits.iter().filter(|c| **c == Some(1)).count(),
        19,
        "{exits:?}"
    );
}

/// A child's pipe, read on a thread into a buffer the test can look at while it runs.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let into = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}

/// Waits until `check` holds on `buffer`'s text; false after [`PATIENCE`].
async fn wait_for(buffer: &Mutex<Vec<u8>>, check: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check(&String::from_utf8_lossy(&buffer.lock().unwrap())) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn sigterm(child: &Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_with_redis_unreachable_requeues_never_runs_then_runs_once() {
    let proxy = CuttableProxy::to_redis().await;
    let s = Setup::new("redis-down").await;
    let env = EnvelopeBuilder::new("agent-cli")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .max_uses(5)
        .sign(&s.key)
        .unwrap();
    // `tee -a ran`: each run appends the body to `ran`.
    let mut child = s
        .consume_without_ledger()
        .env("LAISSEZ_REDIS_URL", proxy.redis_url())
        .args(["--exec", "tee", "-a", "ran"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    assert!(
        wait_for(&stderr, |log| log.contains("laissez: consuming")).await,
        "consume did not start"
    );

    proxy.cut().await;
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m1")
        .await;
    // Without a retry queue the copy goes to the back of the queue at once, each time with a
    // warning: three of them, and meanwhile no decision and no run.
    let requeued = wait_for(&stderr, |log| {
        log.matches("requeueing without running").count() >= 3
    })
    .await;
    let log = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
    assert!(requeued, "not requeued while Redis was unreachable: {log}");
    assert!(
        stdout.lock().unwrap().is_empty(),
        "decided while unreachable"
    );
    assert!(!s.dir.path().join("ran").exists(), "ran while unreachable");

    proxy.heal();
    assert!(
        wait_for(&stdout, |out| out.lines().count() >= 1).await,
        "never decided after Redis came back: {}",
        String::from_utf8_lossy(&stderr.lock().unwrap())
    );
    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let lines = decisions(&stdout.lock().unwrap());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["message_id"], "m1");
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[0]["use"], 1);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("ran")).unwrap(),
        "body of m1",
        "ran exactly once"
    );
    s.expect_settled_and_delete(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_character_in_the_message_id_is_malformed_before_a_use_is_spent() {
    // Issue 23: the decision said allowed and spent the use, then the command could not be
    // started with a NUL in its environment.
    let s = Setup::new("nul-id").await;
    let env = EnvelopeBuilder::new("agent-nul")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .max_uses(1)
        .sign(&s.key)
        .unwrap();
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m\0-1")
        .await;
    // The one use is still there for the next message: nothing was spent for the first.
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-2")
        .await;
    let record = r#"echo "ran $LAISSEZ_MESSAGE_ID" >> runs.txt"#;
    let out = s
        .consume(&["--exit-when-idle", "2s", "--exec", "sh", "-c", record])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = decisions(&out.stdout);
    let summary: Vec<(String, String)> = lines
        .iter()
        .map(|d| {
            (
                d["message_id"].as_str().unwrap().to_owned(),
                d["reason"].as_str().unwrap_or("allowed").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("m\0-1".to_owned(), "malformed".to_owned()),
            ("m-2".to_owned(), "allowed".to_owned())
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains(r#""detail":"control_in_message_id""#),
        "{stderr}"
    );
    let runs = std::fs::read_to_string(s.dir.path().join("runs.txt")).unwrap_or_default();
    assert_eq!(runs, "ran m-2\n", "the handler never ran for the NUL id");
    // Dead-lettered, not requeued.
    assert_eq!(s.count(&s.topology.dead_letter_queue).await, ["m\0-1"]);
    s.delete().await;
}
