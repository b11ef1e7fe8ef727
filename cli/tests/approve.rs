//! `laissez approve` and `laissez consume --approvers` on the real binaries against the real
//! broker (`docs/spec.md` §12): a destructive call under a 2-of-3 rule is parked, approved
//! from the dead-letter queue by two people (the first twice, counted once), runs exactly
//! once with LAISSEZ_APPROVED_BY naming them, and a copy afterwards is replayed; approve
//! killed between the confirm and the ack leaves the message at least once and it runs at
//! most once; without a terminal and without --yes nothing moves; an issuer key as an
//! approver is exit 3; the print form signs the call given on the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::broker::Setup;
use laissez_amqp::lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall};
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{ApprovalSpec, EnvelopeBuilder, SignedEnvelope};
use laissez_test_support::amqp_url;
use laissez_verify::{ActionClass, Classes, TrustedKey, UntrustedApproval};

/// The value that arms the crash hook of `laissez approve` (feature `test-crash-hooks`).
const CRASH: (&str, &str) = (
    "LAISSEZ_TEST_CRASH_AFTER_CONFIRM",
    "exit-before-ack-and-leave-two-copies",
);

/// Each run of the command appends a line to runs.txt.
const RECORD: &str = r#"echo "ran $LAISSEZ_MESSAGE_ID by=$LAISSEZ_APPROVED_BY" >> runs.txt"#;

fn laissez(s: &Setup) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
    cmd.env("LAISSEZ_AMQP_URL", amqp_url())
        .env_remove("LAISSEZ_REDIS_URL")
        .env_remove(CRASH.0)
        .current_dir(s.dir.path());
    cmd
}

/// Approver keys NAME.key (and NAME.key.pub) in the directory, and approvers.pub holding
/// all their public keys; their public keys.
fn approvers(s: &Setup, names: &[&str]) -> Vec<TrustedKey> {
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
fn envelope(s: &Setup, m: usize, keys: &[TrustedKey]) -> SignedEnvelope {
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

/// One `consume` run until idle: its decision lines and its stderr.
fn consume(s: &Setup) -> (Vec<serde_json::Value>, String) {
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
    let decisions = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (decisions, stderr)
}

/// `laissez approve --from DLQ` with `key`, and `extra` arguments.
fn approve(s: &Setup, key: &str, extra: &[&str]) -> Command {
    let mut cmd = laissez(s);
    cmd.args(["approve", "--key", key, "--from"])
        .arg(&s.topology.dead_letter_queue)
        .args(["--trust", "trust.pub", "--aud", &s.topology.queue])
        .args(["--tools", "tools.toml", "--approvers", "approvers.pub"])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// The messages ready in `queue` (a passive declare: nothing is taken).
async fn ready(s: &Setup, queue: &str) -> u32 {
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
async fn wait_ready(s: &Setup, queue: &str, n: u32) {
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

fn runs(s: &Setup) -> Vec<String> {
    std::fs::read_to_string(s.dir.path().join("runs.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn reasons(decisions: &[serde_json::Value]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| d["reason"].as_str().unwrap_or("allowed").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_of_3_call_is_parked_approved_by_two_people_and_runs_exactly_once() {
    let s = Setup::new("approve-2of3").await;
    let keys = approvers(&s, &["a", "b", "c"]);
    let env = envelope(&s, 2, &keys);
    s.publish(env.as_bytes(), "crm.drop", ActionClass::Destructive, "m-1")
        .await;
    // A read under the same envelope needs no approval: LAISSEZ_APPROVED_BY is [].
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-read")
        .await;
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );

    let (decisions, stderr) = consume(&s);
    assert_eq!(reasons(&decisions), ["approval_required", "allowed"]);
    assert_eq!(runs(&s), ["ran m-read by=[]"]);
    assert!(stderr.contains(r#""detail":"0 of 2""#), "{stderr}");
    assert_eq!(ready(&s, &dlq).await, 1, "parked");

    // A approves: shown, signed, republished to the queue, the parked copy acked.
    let (out, shown) = run(&mut approve(&s, "a.key", &["--yes", "--by", "Alice"]));
    assert!(out.status.success(), "{shown}");
    for what in [
        "agent:      spiffe://acme.example/agent/cleaner",
        "obo:        alice",
        "tool:       crm.drop (destructive)",
        "message id: m-1",
        "body:       11 bytes: body of m-1",
        "0 attached, 0 of 2 needed counted",
    ] {
        assert!(shown.contains(what), "{what:?} not in {shown}");
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let approval = laissez_sign::decode_text(text.trim()).unwrap();
    assert_eq!(
        UntrustedApproval::decode(&approval).unwrap().kid(),
        keys[0].kid()
    );
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (1, 0));

    let (decisions, stderr) = consume(&s);
    assert_eq!(reasons(&decisions), ["approval_required"]);
    assert!(stderr.contains(r#""detail":"1 of 2""#), "{stderr}");

    // A again: not added, and the message stays parked.
    let (out, again) = run(&mut approve(&s, "a.key", &["--yes"]));
    assert!(out.status.success(), "{again}");
    assert!(
        again.contains("1 attached, 1 of 2 needed counted"),
        "{again}"
    );
    assert!(again.contains("already approved by you"), "{again}");
    assert!(out.stdout.is_empty());
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (0, 1));

    // B approves: it runs, once, naming A and B.
    let (out, shown) = run(&mut approve(&s, "b.key", &["--yes", "--message-id", "m-1"]));
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("1 attached, 1 of 2 needed counted"),
        "{shown}"
    );
    // Take the approved message, and put it back twice: the second copy is a redelivery.
    let channel = s.connection.create_channel().await.unwrap();
    let approved = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap()
        .delivery;
    for _ in 0..2 {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &approved.data,
                approved.properties.clone(),
            )
            .await
            .unwrap();
    }
    wait_ready(&s, &queue, 2).await;
    let (decisions, _) = consume(&s);
    assert_eq!(reasons(&decisions), ["allowed", "replayed"]);
    let mut kids = [keys[0].kid().to_string(), keys[1].kid().to_string()];
    kids.sort();
    assert_eq!(
        runs(&s),
        [
            "ran m-read by=[]".to_owned(),
            format!(r#"ran m-1 by=["{}","{}"]"#, kids[0], kids[1])
        ]
    );
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_killed_between_confirm_and_ack_leaves_the_message_and_it_runs_at_most_once() {
    let s = Setup::new("approve-crash").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-crash",
    )
    .await;
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);

    // Dies after the broker confirmed the approved copy, before acking the parked one.
    let (out, stderr) = run(approve(&s, "a.key", &["--yes"]).env(CRASH.0, CRASH.1));
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    // Two copies, never none: the approved one in the queue, the parked one back in the DLQ.
    wait_ready(&s, &queue, 1).await;
    wait_ready(&s, &dlq, 1).await;
    assert_eq!(reasons(&consume(&s).0), ["allowed"]);
    assert_eq!(runs(&s).len(), 1);

    // The parked copy approved again (no crash this time): the ledger says replayed.
    let (out, stderr) = run(&mut approve(&s, "a.key", &["--yes"]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(reasons(&consume(&s).0), ["replayed"]);
    assert_eq!(runs(&s).len(), 1, "ran at most once: {:?}", runs(&s));
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_and_without_yes_nothing_moves() {
    let s = Setup::new("approve-tty").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-tty",
    )
    .await;
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);
    let (out, stderr) = run(&mut approve(&s, "a.key", &[]));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(out.stdout.is_empty());
    let dlq = s.topology.dead_letter_queue.clone();
    assert_eq!(
        (ready(&s, &s.topology.queue).await, ready(&s, &dlq).await),
        (0, 1),
        "still parked"
    );
    // Nothing awaiting approval under another id: exit 1, the message stays.
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &["--yes", "--message-id", "other"],
    ));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no message other awaiting approval"),
        "{stderr}"
    );
    wait_ready(&s, &dlq, 1).await;
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_key_is_never_an_approver_and_the_print_form_signs_the_call() {
    let s = Setup::new("approve-keys").await;
    let keys = approvers(&s, &["a", "b"]);
    // consume --approvers with the issuer's key: exit 3 before the broker is used.
    let out = s
        .consume(&["--approvers", "trust.pub", "--exit-when-idle", "1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("also a trusted issuer key"), "{stderr}");

    // --require-approval destructive: a destructive grant without a rule is parked.
    let no_rule = EnvelopeBuilder::new("agent-no-rule")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .sign(&s.key)
        .unwrap();
    s.publish(
        no_rule.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-norule",
    )
    .await;
    let out = s
        .consume(&[
            "--require-approval",
            "destructive",
            "--exit-when-idle",
            "2s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["reason"], "approval_required");
    assert!(
        stderr.contains(r#""detail":"require_approval""#),
        "{stderr}"
    );
    // approve, told the worker's policy, does not offer it: no approval can let it run
    // (exit 1, still parked).
    let (out, stderr) = run(&mut approve(
        &s,
        "a.key",
        &[
            "--yes",
            "--message-id",
            "m-norule",
            "--require-approval",
            "destructive",
        ],
    ));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("denied: approval_required"), "{stderr}");
    assert_eq!(ready(&s, &s.topology.dead_letter_queue).await, 1);

    // The print form: shown on stderr, the approval on stdout.
    let env = envelope(&s, 1, &keys[..1]);
    std::fs::write(s.dir.path().join("body.json"), b"{\"ticket\":\n42}\x1b[2J").unwrap();
    let print = |key: &str| {
        let mut cmd = laissez(&s);
        cmd.args(["approve", "--key", key, "--envelope", &env.to_text()])
            .args(["--aud", &s.topology.queue, "--message-id", "m-9"])
            .args([
                "--tool",
                "crm.drop",
                "--class",
                "destructive",
                "--body",
                "body.json",
            ]);
        run(&mut cmd)
    };
    let (out, shown) = print("a.key");
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("message id: m-9"), "{shown}");
    assert!(
        shown.contains(r#"body:       18 bytes: {"ticket":\u{a}42}\u{1b}[2J"#),
        "{shown}"
    );
    assert!(!shown.contains('\x1b'), "escaped");
    let approval =
        laissez_sign::decode_text(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let approval = UntrustedApproval::decode(&approval).unwrap();
    assert_eq!(approval.kid(), keys[0].kid());
    assert_eq!(approval.call().message_id(), "m-9");
    assert_eq!(approval.exp() - approval.iat(), 900, "--ttl 15m by default");
    // A key the rule does not list: a key error.
    let (out, stderr) = print("b.key");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("does not list this key"), "{stderr}");
    s.delete().await;
}

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
    eprintln!("peak RSS {} MB scanning {} MB", peak >> 20, total >> 20);
    assert!(peak > 0, "VmHWM was read");
    assert!(
        peak < total / 3,
        "peak RSS {peak} bytes for {total} bytes of parked messages"
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
