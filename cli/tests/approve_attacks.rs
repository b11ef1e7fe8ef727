//! `laissez approve --from` under the attacks of issue 23, on the real binaries and broker:
//! a parked call with a forged `x-death` (the work queue's name and a zero-width space) is
//! left parked, reported escaped and never republished; `--to` names the work queue; a scan
//! of many large parked messages takes the memory of one; the whole body is shown (over
//! 64 KiB only with `--approve-unshown`); a delegated call is shown root > leaf.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::approving::{
    approve, approvers, consume, envelope, laissez, ready, reasons, run, wait_ready,
};
use common::broker::Setup;
use laissez_amqp::lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall};
use laissez_verify::ActionClass;

/// Publishes `body` under `env` for `crm.drop` with `id` straight into `queue`, with
/// `x-death` naming `from` (reason `rejected`) when given: what a publisher can do itself.
async fn publish_parked(
    s: &Setup,
    queue: &str,
    env: &[u8],
    id: &str,
    body: &[u8],
    from: Option<&str>,
) {
    use laissez_amqp::lapin::types::{AMQPValue, FieldArray, LongString};
    let props = ToolCall::new(env, "crm.drop", ActionClass::Destructive, id)
        .properties(EnvelopeEncoding::Bytes);
    let mut headers = props.headers().clone().unwrap_or_default();
    if let Some(from) = from {
        let mut death = FieldTable::default();
        death.insert(
            "queue".into(),
            AMQPValue::LongString(LongString::from(from)),
        );
        death.insert("reason".into(), AMQPValue::LongString("rejected".into()));
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        death.insert("exchange".into(), AMQPValue::LongString("".into()));
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
    }
    let channel = s.connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            props.with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Declares a queue of the test's own (deleted with `drop_queue`).
async fn own_queue(s: &Setup, name: &str) {
    let channel = s.connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

async fn drop_queue(s: &Setup, name: &str) {
    let channel = s.connection.create_channel().await.unwrap();
    let _ = channel.queue_delete(name.into(), Default::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_x_death_is_left_parked_reported_escaped_and_never_republished() {
    // Issue 23: an agent put a pending call straight into the dead-letter queue with an
    // x-death naming the work queue followed by a zero-width space, a queue of its own; the
    // approver saw the work queue's name, approved, and the copy went to the agent.
    let s = Setup::new("approve-forged").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    let agents = format!("{queue}\u{200b}");
    own_queue(&s, &agents).await;
    publish_parked(&s, &dlq, env.as_bytes(), "m-forged", b"{}", Some(&agents)).await;
    wait_ready(&s, &dlq, 1).await;

    let (out, stderr) = run(&mut approve(&s, "a.key", &["--yes"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing signed");
    assert!(
        stderr.contains(&format!(
            "left parked: message m-forged: its x-death says rejected from queue \
             {queue}\\u{{200b}}, not rejected from {queue}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{200b}'), "shown raw: {stderr}");
    assert_eq!(
        (
            ready(&s, &agents).await,
            ready(&s, &queue).await,
            ready(&s, &dlq).await
        ),
        (0, 0, 1),
        "never republished, still parked"
    );
    // Asked for by id: the same, said as the reason.
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "m-forged"],
    ));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("never republished; it stays parked"),
        "{stderr}"
    );
    // Without x-death at all: the same.
    publish_parked(&s, &dlq, env.as_bytes(), "m-none", b"{}", None).await;
    wait_ready(&s, &dlq, 2).await;
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "m-none"],
    ));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it has no x-death header"), "{stderr}");
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (0, 2));
    drop_queue(&s, &agents).await;
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_names_the_work_queue_and_only_calls_rejected_from_it_are_offered() {
    let s = Setup::new("approve-to").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    s.publish(env.as_bytes(), "crm.drop", ActionClass::Destructive, "m-to")
        .await;
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);
    let other = format!("{queue}.other");
    own_queue(&s, &other).await;

    // --to another queue: the message was rejected from the work queue, so it is not offered.
    let (out, stderr) = run(&mut approve(&s, "a.key", &["--yes", "--to", &other]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("not rejected from {other}")),
        "{stderr}"
    );
    wait_ready(&s, &dlq, 1).await;
    assert_eq!(ready(&s, &other).await, 0);

    // --to the work queue: approved and republished there.
    let (out, stderr) = run(&mut approve(&s, "a.key", &["--yes", "--to", &queue]));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("  queue:      {queue}\n")),
        "{stderr}"
    );
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (1, 0));
    assert_eq!(reasons(&consume(&s).0), ["allowed"]);

    // A --from without .dlq needs --to: exit 2 before anything is taken.
    let mut cmd = laissez(&s);
    cmd.args(["approve", "--key", "a.key", "--from", &other, "--yes"])
        .args([
            "--trust",
            "trust.pub",
            "--aud",
            &queue,
            "--tools",
            "tools.toml",
        ]);
    let (out, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--to QUEUE"), "{stderr}");
    drop_queue(&s, &other).await;
    s.delete().await;
}

/// The peak resident memory of a running child, in bytes, read from /proc until it exits
/// (VmHWM never decreases, so the last reading is the peak so far): the child's output too.
fn peak_rss(mut cmd: Command) -> (Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kb * 1024);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_many_large_parked_messages_takes_the_memory_of_one() {
    // Issue 23: every message looked at was held in memory (30 x 8 MB reached 262 MB).
    const COUNT: usize = 30;
    const SIZE: usize = 4 << 20;
    let s = Setup::new("approve-memory").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    // What a run takes with nothing parked (the runtime, two connections, the revocation
    // stream read to its end): what scanning adds is measured above it.
    let cmd = approve(&s, "a.key", &["--yes", "--message-id", "absent"]);
    let (out, base) = tokio::task::spawn_blocking(move || peak_rss(cmd))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(base > 0, "VmHWM was read");
    let body = vec![b'x'; SIZE];
    for i in 0..COUNT {
        publish_parked(
            &s,
            &dlq,
            env.as_bytes(),
            &format!("m-{i}"),
            &body,
            Some(&queue),
        )
        .await;
    }
    wait_ready(&s, &dlq, COUNT as u32).await;
    // None is the one asked for: every message is looked at and left parked.
    let cmd = approve(&s, "a.key", &["--yes", "--message-id", "absent"]);
    let (out, peak) = tokio::task::spawn_blocking(move || peak_rss(cmd))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("({COUNT} other messages left parked)")),
        "{stderr}"
    );
    let total = (COUNT * SIZE) as u64;
    eprintln!(
        "peak RSS {} MB scanning {} MB, {} MB with nothing parked",
        peak >> 20,
        total >> 20,
        base >> 20
    );
    // Holding every message would add the whole total; holding one adds a few copies of it.
    let added = peak.saturating_sub(base);
    assert!(
        added < total / 4,
        "scanning added {added} bytes of peak RSS for {total} bytes of parked messages"
    );
    wait_ready(&s, &dlq, COUNT as u32).await;
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_body_is_shown_and_a_larger_one_needs_approve_unshown() {
    // Issue 23: only the first 200 bytes were shown; the rest of a 262-byte body said
    // "scope":"ALL_TICKETS","hard_delete":true.
    let s = Setup::new("approve-body").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    let body = format!(
        "{{\"ticket\":42,\"note\":\"{}\",\"scope\":\"ALL_TICKETS\",\"hard_delete\":true}}",
        "x".repeat(200)
    );
    publish_parked(
        &s,
        &dlq,
        env.as_bytes(),
        "m-long",
        body.as_bytes(),
        Some(&queue),
    )
    .await;
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "m-long"],
    ));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("  body:       {} bytes: {body}\n", body.len())),
        "{stderr}"
    );
    assert_eq!(ready(&s, &queue).await, 1);

    // Over 64 KiB: refused (exit 2, still parked) unless the approver says so.
    let big = vec![b'y'; 64 * 1024 + 10];
    publish_parked(&s, &dlq, env.as_bytes(), "m-big", &big, Some(&queue)).await;
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "m-big"],
    ));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("NOT SHOWN:  the last 10 bytes"), "{stderr}");
    assert!(stderr.contains("--approve-unshown"), "{stderr}");
    assert!(out.stdout.is_empty());
    wait_ready(&s, &dlq, 1).await;
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "m-big", "--approve-unshown"],
    ));
    assert!(out.status.success(), "{stderr}");
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (2, 0));
    s.delete().await;
}

/// Runs `laissez ARGS` in the test's directory, expecting exit 0: its stdout, trimmed.
fn ok(s: &Setup, args: &[&str]) -> String {
    let (out, stderr) = run(laissez(s).args(args));
    assert!(out.status.success(), "laissez {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_call_is_shown_root_to_leaf_with_who_named_obo_and_session() {
    let s = Setup::new("approve-chain").await;
    approvers(&s, &["a"]);
    let queue = s.topology.queue.clone();
    for k in ["orch", "h1", "h2"] {
        ok(&s, &["keygen", "--out", &format!("{k}.key")]);
    }
    std::fs::copy(
        s.dir.path().join("orch.key.pub"),
        s.dir.path().join("trust.pub"),
    )
    .unwrap();
    let root = ok(
        &s,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "agent-A",
            "--aud",
            &queue,
            "--tool",
            "crm.*=read+write+destructive",
            "--max-uses",
            "3",
            "--holder",
            "h1.key.pub",
            "--obo",
            "alice",
            "--session",
            "s-1",
            "--approval",
            "destructive",
            "--approvals",
            "1",
            "--approver",
            "a.key.pub",
        ],
    );
    let chain = ok(
        &s,
        &[
            "delegate",
            "--key",
            "h1.key",
            "--parent",
            &root,
            "--agent",
            "agent-B\u{2060}",
            "--holder",
            "h2.key.pub",
            "--tool",
            "crm.drop=destructive",
            "--max-uses",
            "1",
        ],
    );
    let body = "ticket 7";
    std::fs::write(s.dir.path().join("body"), body).unwrap();
    let invocation = ok(
        &s,
        &[
            "invoke",
            "--key",
            "h2.key",
            "--envelope",
            &chain,
            "--aud",
            &queue,
            "--message-id",
            "m-chain",
            "--tool",
            "crm.drop",
            "--class",
            "destructive",
            "--body",
            "body",
        ],
    );
    let links: Vec<Vec<u8>> = chain
        .split('.')
        .map(|l| laissez_sign::decode_text(l).unwrap())
        .collect();
    let props = ToolCall::new(&links[1], "crm.drop", ActionClass::Destructive, "m-chain")
        .with_chain(&[&links[0]])
        .properties(EnvelopeEncoding::Text);
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(
        "laissez-invocation".into(),
        laissez_amqp::lapin::types::AMQPValue::LongString(invocation.as_str().into()),
    );
    Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap()
        .publish_with("", &queue, props.with_headers(headers), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);

    let (out, shown) = run(&mut approve(&s, "a.key", &["--yes"]));
    assert!(out.status.success(), "{shown}");
    for what in [
        "  agent:      agent-B\\u{2060}\n",
        "  delegated:  agent-A > agent-B\\u{2060} (root > ... > leaf, 2 envelopes)\n",
        "  obo:        alice (delegated: named by the root, agent-A)\n",
        "  session:    s-1 (delegated: named by the root, agent-A)\n",
        "  body:       8 bytes: ticket 7\n",
    ] {
        assert!(shown.contains(what), "{what:?} not in {shown}");
    }
    assert!(!shown.contains('\u{2060}'), "shown raw: {shown}");
    assert_eq!(reasons(&consume(&s).0), ["allowed"]);
    s.delete().await;
}
