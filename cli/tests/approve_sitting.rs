//! `laissez approve --from` as a person uses it, on the real broker (`docs/spec.md` §12): it
//! offers exactly what the worker would run once approved (a parked call from a revoked
//! session is reported `revoked`, one whose envelope's uses are spent `uses_exhausted`, and
//! neither is offered), `--list` shows the parked calls without taking them with every
//! publisher-chosen text escaped, and one sitting approves two calls and rejects one, the
//! rejected one moved to the reject queue with an audit event. A Redis ledger is read like
//! the embedded one; a rejection that reaches no queue leaves the message parked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::Write as _;
use std::process::Stdio;

use common::approving::{approve, approvers, consume, envelope, laissez, ready, reasons, runs};
use common::broker::Setup;
use laissez_amqp::{Publisher, ToolCall};
use laissez_sign::{ApprovalSpec, EnvelopeBuilder};
use laissez_test_support::amqp_url;
use laissez_verify::{ActionClass, Classes};

/// Publishes a call with `body` to the work queue.
async fn publish_body(
    s: &Setup,
    envelope: &[u8],
    tool: &str,
    class: ActionClass,
    id: &str,
    body: &[u8],
) {
    let publisher = Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap();
    publisher
        .publish(
            "",
            &s.topology.queue,
            &ToolCall::new(envelope, tool, class, id),
            body,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_the_worker_would_deny_as_revoked_or_uses_exhausted_are_not_offered() {
    let s = Setup::new("approve-recheck").await;
    let keys = approvers(&s, &["a"]);
    let rule = || ApprovalSpec::new(Classes::only(ActionClass::Destructive), 1, &keys).unwrap();
    // A session that is revoked once its call is parked.
    let revoked = EnvelopeBuilder::new("agent-r")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .max_uses(3)
        .session("task-revoked")
        .approval(rule())
        .sign(&s.key)
        .unwrap();
    // One use: a read spends it, then a destructive call is parked.
    let spent = EnvelopeBuilder::new("agent-s")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .max_uses(1)
        .approval(rule())
        .sign(&s.key)
        .unwrap();
    s.publish(
        revoked.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-revoked",
    )
    .await;
    s.publish(spent.as_bytes(), "crm.read", ActionClass::Read, "m-read")
        .await;
    s.publish(
        spent.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-spent",
    )
    .await;
    assert_eq!(
        reasons(&consume(&s).0),
        ["approval_required", "allowed", "approval_required"]
    );
    assert_eq!(runs(&s), ["ran m-read by=[]"]);
    let dlq = s.topology.dead_letter_queue.clone();
    assert_eq!(ready(&s, &dlq).await, 2);

    // The session is revoked on the worker's stream.
    let dir = s.dir.path();
    std::fs::write(dir.join("iss"), s.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.join("iss"), 0o600);
    let out = laissez(&s)
        .args(["revoke", "--key", "iss", "--session", "task-revoked"])
        .args(["--amqp", &amqp_url(), "--stream", &s.revocation_stream()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Neither is offered, each reported with the worker's reason; both stay parked.
    let out = approve(&s, "a.key", &["--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing signed");
    assert!(
        stderr.contains("message m-revoked: not offered: revoked"),
        "{stderr}"
    );
    assert!(
        stderr.contains("message m-spent: not offered: uses_exhausted"),
        "{stderr}"
    );
    assert!(!stderr.contains("awaiting approval:"), "{stderr}");
    assert_eq!(
        (ready(&s, &s.topology.queue).await, ready(&s, &dlq).await),
        (0, 2)
    );

    // Asked for by id: `denied: REASON`, exit 1.
    for (id, reason) in [("m-revoked", "revoked"), ("m-spent", "uses_exhausted")] {
        let out = approve(&s, "a.key", &["--yes", "--message-id", id])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("denied: {reason}")), "{stderr}");
    }
    // Listed neither.
    let out = approve(&s, "a.key", &["--list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(ready(&s, &dlq).await, 2);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_each_parked_call_escaped_and_takes_none() {
    let s = Setup::new("approve-list").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    // An agent and a body with terminal controls: a screen clear, a carriage return that
    // would overwrite the line, a bidi override.
    let hostile = EnvelopeBuilder::new("agent\x1b[2J\rFAKE\u{202e}x")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .on_behalf_of("bob\x07")
        .approval(ApprovalSpec::new(Classes::only(ActionClass::Destructive), 1, &keys).unwrap())
        .sign(&s.key)
        .unwrap();
    publish_body(
        &s,
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-json",
        br#"{"ticket":42,"tags":["a","b"],"note":"x\u001b"}"#,
    )
    .await;
    publish_body(
        &s,
        hostile.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-hostile",
        b"\x1b[2J\r\napproved: everything\xff",
    )
    .await;
    assert_eq!(
        reasons(&consume(&s).0),
        ["approval_required", "approval_required"]
    );
    let dlq = s.topology.dead_letter_queue.clone();

    let out = approve(&s, "a.key", &["--list"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let listed = String::from_utf8(out.stdout).unwrap();
    for what in [
        "message m-json\n",
        "  agent:      spiffe://acme.example/agent/cleaner\n",
        "  obo:        alice\n",
        "  session:    -\n",
        "  tool:       crm.drop (destructive)\n",
        "  approvals:  0 of 1 counted (0 attached)\n",
        "  body:       47 bytes, JSON:\n",
        "    {\n      \"ticket\": 42,\n      \"tags\": [\n        \"a\",\n        \"b\"\n      ],\n      \"note\": \"x\\\\u001b\"\n    }\n",
        // The hostile one: every control shown as an escape.
        "message m-hostile\n",
        "  agent:      agent\\u{1b}[2J\\u{d}FAKE\\u{202e}x\n",
        "  obo:        bob\\u{7}\n",
        "  body:       27 bytes: \\x1b[2J\\x0d\\x0aapproved: everything\\xff\n",
    ] {
        assert!(listed.contains(what), "{what:?} not in\n{listed}");
    }
    // The envelope's expiry, with the time left (sign's default TTL is 5 minutes).
    let expires: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("  expires:    "))
        .collect();
    assert_eq!(expires.len(), 2, "{listed}");
    assert!(expires.iter().all(|l| l.contains("Z (in ")), "{listed}");
    for bad in ['\x1b', '\r', '\x07', '\u{202e}'] {
        assert!(
            !listed.contains(bad),
            "{bad:?} reached the terminal: {listed:?}"
        );
        assert!(
            !stderr.contains(bad),
            "{bad:?} reached the terminal: {stderr:?}"
        );
    }
    // Nothing was taken.
    assert_eq!(ready(&s, &dlq).await, 2);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sitting_approves_two_and_rejects_one_to_the_reject_queue_with_an_audit_event() {
    let s = Setup::new("approve-sitting").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    for id in ["m-1", "m-2", "m-3"] {
        s.publish(env.as_bytes(), "crm.drop", ActionClass::Destructive, id)
            .await;
    }
    assert_eq!(reasons(&consume(&s).0), ["approval_required"; 3]);
    let (queue, dlq) = (
        s.topology.queue.clone(),
        s.topology.dead_letter_queue.clone(),
    );
    let rejected = format!("{queue}.rejected");

    // Answers y, r, y, one for each message in the order they are offered.
    let mut child = approve(&s, "a.key", &["--stdin-answers", "--by", "Alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\nr\ny\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        2,
        "two approvals printed"
    );
    assert!(
        stderr.contains(
            "2 approved, 1 rejected, 0 skipped, 0 already approved by you, 0 not offered"
        ),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("approve this call as").count(),
        3,
        "{stderr}"
    );
    // The second message offered was rejected: its audit event names it and where it went.
    let offered: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  message id: "))
        .collect();
    assert_eq!(offered.len(), 3, "{stderr}");
    let audit = stderr
        .lines()
        .find(|l| l.contains("laissez::audit") && l.contains(r#"outcome="rejected""#))
        .unwrap_or_else(|| panic!("no audit event of the rejection in {stderr}"));
    assert!(
        audit.contains(&format!("message_id={}", offered[1])),
        "{audit}"
    );
    assert!(audit.contains(&format!("moved_to={rejected}")), "{audit}");
    assert!(audit.contains("by=Alice"), "{audit}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("laissez::audit") && l.contains(r#"outcome="approved""#))
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        (
            ready(&s, &queue).await,
            ready(&s, &dlq).await,
            ready(&s, &rejected).await
        ),
        (2, 0, 1)
    );
    // The rejected message, unchanged, is in the reject queue.
    assert_eq!(s.count(&rejected).await, [offered[1]]);

    // The worker runs the two approved, once each.
    let (decisions, _) = consume(&s);
    assert_eq!(reasons(&decisions), ["allowed", "allowed"]);
    let mut ran = runs(&s);
    ran.sort();
    let kid = keys[0].kid().to_string();
    let mut expected = vec![
        format!(r#"ran {} by=["{kid}"]"#, offered[0]),
        format!(r#"ran {} by=["{kid}"]"#, offered[2]),
    ];
    expected.sort();
    assert_eq!(ran, expected);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_ledger_is_read_like_the_embedded_one() {
    let s = Setup::new("approve-redis").await;
    let redis = laissez_test_support::redis_url();
    let keys = approvers(&s, &["a"]);
    let spent = EnvelopeBuilder::new("agent-s")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .max_uses(1)
        .approval(ApprovalSpec::new(Classes::only(ActionClass::Destructive), 1, &keys).unwrap())
        .sign(&s.key)
        .unwrap();
    let fresh = envelope(&s, 1, &keys);
    s.publish(spent.as_bytes(), "crm.read", ActionClass::Read, "m-read")
        .await;
    s.publish(
        spent.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-spent",
    )
    .await;
    s.publish(
        fresh.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-fresh",
    )
    .await;
    let out = s
        .consume_without_ledger()
        .args(["--redis", &redis, "--approvers", "approvers.pub"])
        .args(["--exit-when-idle", "2s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|line| !crate::common::is_outcome_line(line))
        .collect();
    assert_eq!(
        reasons(&decisions),
        ["allowed", "approval_required", "approval_required"]
    );
    // Only the call whose envelope has a use left is offered.
    let out = approve(&s, "a.key", &["--list", "--redis", &redis])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("message m-fresh\n"), "{listed}");
    assert!(!listed.contains("m-spent"), "{listed}");
    assert!(
        stderr.contains("message m-spent: not offered: uses_exhausted"),
        "{stderr}"
    );
    assert_eq!(ready(&s, &s.topology.dead_letter_queue).await, 2);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_that_reaches_no_queue_leaves_the_message_parked() {
    let s = Setup::new("approve-reject-nowhere").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    s.publish(env.as_bytes(), "crm.drop", ActionClass::Destructive, "m-1")
        .await;
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);
    let dlq = s.topology.dead_letter_queue.clone();
    // A queue that does not exist is never declared: the copy is unroutable, exit 3.
    let nowhere = format!("{}.nowhere", s.topology.queue);
    let mut child = approve(&s, "a.key", &["--stdin-answers", "--reject-to", &nowhere])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("rejecting to"), "{stderr}");
    assert!(stderr.contains("the message stays parked"), "{stderr}");
    assert!(
        !stderr.contains("laissez::audit"),
        "no event for what did not happen: {stderr}"
    );
    assert_eq!(ready(&s, &dlq).await, 1);
    // Rejecting into the dead-letter queue itself would offer it again: exit 2.
    let out = approve(&s, "a.key", &["--yes", "--reject-to", &dlq])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(ready(&s, &dlq).await, 1);
    s.delete().await;
}
