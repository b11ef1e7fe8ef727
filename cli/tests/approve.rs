//! `laissez approve` and `laissez consume --approvers` on the real binaries against the real
//! broker (`docs/spec.md` §12): a destructive call under a 2-of-3 rule is parked, approved
//! from the dead-letter queue by two people (the first twice, counted once), runs exactly
//! once with LAISSEZ_APPROVED_BY naming them, and a copy afterwards is replayed; approve
//! killed between the confirm and the ack leaves the message at least once and it runs at
//! most once (the parked copy is then not offered again: the ledger says it ran); without a terminal and without --yes nothing moves; an issuer key as an
//! approver is exit 3; the print form signs the call given on the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::approving::{
    CRASH, approve, approvers, consume, envelope, laissez, ready, reasons, run, runs, wait_ready,
};
use common::broker::Setup;
use laissez_amqp::lapin::options::{BasicGetOptions, BasicPublishOptions};
use laissez_sign::EnvelopeBuilder;
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::{ActionClass, Classes};

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

    // The parked copy is not offered again: the worker's ledger says it ran (`replayed`).
    let (out, stderr) = run(&mut approve(&s, "a.key", &["--yes"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("message m-crash: not offered: replayed"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing signed");
    assert_eq!((ready(&s, &queue).await, ready(&s, &dlq).await), (0, 1));
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
