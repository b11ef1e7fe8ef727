//! The Go worker of `examples/go-worker` behind `laissez consume --http`, on the real broker:
//! the quickstart's calls (allowed, not granted, relabelled, unknown, another audience,
//! tampered, expired, exhausted, replayed, a control character in the message id) are
//! decided exactly as `laissez consume` without a handler decides them (reason and detail per
//! message), and the Go handler sees exactly the allowed ones, each with the decision's values
//! in its headers and the body as published.
//!
//! It needs Go (`go` on the PATH; Debian's `golang-go`, which `scripts/test` installs): without
//! it the test fails saying so, never skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::broker::Setup;
use laissez_amqp::ToolCall;
use laissez_sign::{EnvelopeBuilder, parse_classes, unix_now};
use laissez_verify::ActionClass;
use serde_json::Value;

/// The worker's catalogue: the Go worker runs the read and the update.
const TOOLS: &str = "[tools]\n\"crm.ticket.read\" = \"read\"\n\"crm.ticket.update\" = \"write\"\n\"crm.ticket.delete\" = \"destructive\"\n\"billing.refund\" = \"write\"\n";

/// `go build` of the example into `dir`; fails (never skips) without Go.
fn build_go_worker(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/go-worker");
    let binary = dir.join("go-worker");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        // The example has no dependency: nothing is fetched.
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .output();
    let built = match built {
        Ok(built) => built,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "this test builds examples/go-worker and needs Go: `go` is not on the PATH; \
             install golang-go (apt-get install -y golang-go; scripts/test does)"
        ),
        Err(e) => panic!("cannot run go build: {e}"),
    };
    assert!(
        built.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    binary
}

/// The Go worker on a free port, and the URL it listens on (from its first stderr line).
fn start_go_worker(binary: &Path) -> (Child, String) {
    let mut child = Command::new(binary)
        .args(["-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // The rest of its stderr is passed on (a closed pipe would end it).
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    let url = line
        .trim()
        .strip_prefix("go-worker: listening on ")
        .unwrap_or_else(|| panic!("the Go worker said {line:?}"))
        .to_owned();
    (child, url)
}

/// Publishes the quickstart's calls, in order.
async fn publish_calls(s: &Setup) {
    let now = unix_now();
    let grant = |aud: &str| {
        EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
            .audience(aud)
            .tool("crm.ticket.*")
            .classes(parse_classes("read+write").unwrap())
            .max_uses(2)
            .on_behalf_of("user:42")
            .session("case-9")
    };
    let envelope = grant(&s.topology.queue).sign(&s.key).unwrap();
    let elsewhere = grant("payments-queue").sign(&s.key).unwrap();
    let expired = grant(&s.topology.queue)
        .not_before(now - 3600)
        .ttl_secs(60)
        .sign(&s.key)
        .unwrap();
    let mut tampered = envelope.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let (env, delete) = (envelope.as_bytes(), "crm.ticket.delete");
    use ActionClass::{Destructive, Read, Write};
    let calls = [
        ToolCall::new(env, "crm.ticket.read", Read, "msg-01"),
        ToolCall::new(env, "billing.refund", Write, "msg-02"),
        ToolCall::new(env, delete, Destructive, "msg-03"),
        // The publisher calls the destructive tool a write: the catalogue decides.
        ToolCall::new(env, delete, Write, "msg-04"),
        ToolCall::new(env, "crm.ticket.merge", Write, "msg-05"),
        ToolCall::new(elsewhere.as_bytes(), "crm.ticket.read", Read, "msg-06"),
        ToolCall::new(&tampered, "crm.ticket.read", Read, "msg-07"),
        ToolCall::new(expired.as_bytes(), "crm.ticket.read", Read, "msg-08"),
        ToolCall::new(env, "crm.ticket.read", Read, "msg-09\u{1b}[2J"),
        ToolCall::new(env, "crm.ticket.update", Write, "msg-10"),
        ToolCall::new(env, "crm.ticket.read", Read, "msg-11"),
        ToolCall::new(env, "crm.ticket.read", Read, "msg-01"),
    ];
    for call in calls {
        s.publish_call(call).await;
    }
}

/// Per message id, in order: what each decision said, (reason, detail).
type Said = BTreeMap<String, Vec<(Value, Value)>>;

/// What `consume --log-format json` decided, per message id in order: (reason, detail), the
/// detail from the audit events on stderr; and the allowed decision lines.
fn decisions(stdout: &[u8], stderr: &str) -> (Said, Vec<Value>) {
    let mut details: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in stderr.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let audit = &event["audit"];
        if audit["allowed"] == false {
            details
                .entry(audit["message_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(audit["detail"].clone());
        }
    }
    let mut said = Said::new();
    let mut allowed = Vec::new();
    for line in String::from_utf8(stdout.to_vec()).unwrap().lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        if crate::common::is_outcome_line(&d) {
            continue;
        }
        let id = d["message_id"].as_str().unwrap().to_owned();
        let detail = if d["allowed"] == true {
            allowed.push(d.clone());
            Value::Null
        } else {
            details
                .get_mut(&id)
                .unwrap_or_else(|| panic!("{id}: {stderr}"))
                .remove(0)
        };
        said.entry(id)
            .or_default()
            .push((d["reason"].clone(), detail));
    }
    (said, allowed)
}

/// One `consume` run on a fresh ledger, the calls published first.
async fn consume_calls(s: &Setup, ledger: &str, hand_off: &[&str]) -> (Vec<u8>, String) {
    publish_calls(s).await;
    let mut cmd = s.consume_without_ledger();
    cmd.args([
        "--ledger",
        ledger,
        "--log-format",
        "json",
        "--exit-when-idle",
        "2s",
    ])
    .args(hand_off);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (out.stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_worker_behind_consume_http_sees_exactly_what_laissez_allows() {
    let s = Setup::new("go-worker").await;
    std::fs::write(s.dir.path().join("tools.toml"), TOOLS).unwrap();
    let binary = build_go_worker(s.dir.path());

    // Decided without a handler: the reference.
    let (stdout, stderr) = consume_calls(&s, "decide-only.redb", &[]).await;
    let (reference, _) = decisions(&stdout, &stderr);

    // The same calls through consume --http to the Go worker.
    let (mut go, url) = start_go_worker(&binary);
    let (stdout, stderr) = consume_calls(&s, "go.redb", &["--http", &url]).await;
    go.kill().unwrap();
    let go_out = go.wait_with_output().unwrap();
    let (through_go, allowed) = decisions(&stdout, &stderr);
    assert_eq!(through_go, reference, "{stderr}");

    // The reasons are the quickstart's (a class header that disagrees with the catalogue is
    // malformed on a queue, §9), and a control character is refused before the handler.
    let reasons: BTreeMap<String, Vec<Value>> = through_go
        .iter()
        .map(|(id, said)| (id.clone(), said.iter().map(|(r, _)| r.clone()).collect()))
        .collect();
    let expected: BTreeMap<String, Vec<Value>> = [
        ("msg-01", vec![Value::Null, "replayed".into()]),
        ("msg-02", vec!["tool_not_granted".into()]),
        ("msg-03", vec!["class_not_granted".into()]),
        ("msg-04", vec!["malformed".into()]),
        ("msg-05", vec!["unknown_tool".into()]),
        ("msg-06", vec!["wrong_audience".into()]),
        ("msg-07", vec!["bad_signature".into()]),
        ("msg-08", vec!["expired".into()]),
        ("msg-09\u{1b}[2J", vec!["malformed".into()]),
        ("msg-10", vec![Value::Null]),
        ("msg-11", vec!["uses_exhausted".into()]),
    ]
    .into_iter()
    .map(|(id, said)| (id.to_owned(), said))
    .collect();
    assert_eq!(reasons, expected, "{stderr}");
    assert_eq!(
        through_go["msg-04"][0].1,
        "class_header_disagrees_with_catalogue"
    );
    assert_eq!(through_go["msg-09\u{1b}[2J"][0].1, "control_in_message_id");

    // The Go worker saw exactly the allowed calls, with the decision's values.
    let seen: Vec<Value> = String::from_utf8(go_out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seen.len(), allowed.len(), "{seen:?}");
    for (call, decision) in seen.iter().zip(&allowed) {
        for key in ["message_id", "agent", "tool", "class", "cti"] {
            assert_eq!(call[key], decision[key], "{key}: {call} vs {decision}");
        }
        assert_eq!(call["use"], decision["use"].to_string(), "{call}");
        assert_eq!(call["obo"], "user:42");
        assert_eq!(call["session"], "case-9");
        assert_eq!(call["chain"], serde_json::json!([decision["agent"]]));
        assert_eq!(call["approved_by"], serde_json::json!([]));
        let id = call["message_id"].as_str().unwrap();
        assert_eq!(call["body"], format!("body of {id}"));
    }
    let ids: Vec<&str> = seen
        .iter()
        .map(|c| c["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["msg-01", "msg-10"]);
    s.delete().await;
}
