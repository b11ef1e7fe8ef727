//! Human approval on the real broker (`docs/spec.md` §12): a destructive call under a 2-of-3
//! rule is parked `approval_required` with its headers intact; approvals are added to the
//! parked message and it is put back (the `laissez approve` steps of `laissez_amqp::parked`);
//! the same approver twice counts once; with two approvers it runs exactly once, naming them,
//! and a redelivery afterwards is `replayed`. Bad approvals headers are `malformed` with a
//! detail, never a run; a worker that requires approval denies an envelope without a rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use laissez_amqp::lapin::options::ConfirmSelectOptions;
use laissez_amqp::lapin::types::{AMQPValue, FieldArray, FieldTable};
use laissez_amqp::lapin::{BasicProperties, Channel};
use laissez_amqp::parked::{self, Examined, Examiner, Parked, PendingCall};
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, ToolCall};
use laissez_amqp::{HEADER_APPROVALS, approvals_of, with_approval};
use laissez_ledger::MemoryLedger;
use laissez_sign::{Approval, ApprovalSpec, EnvelopeBuilder, SecretKey, SignedEnvelope};
use laissez_verify::invocation::Call;
use laissez_verify::{ActionClass, Classes, Kid, Policy, Reason, TrustedKey};

const TOOL: &str = "crm.drop";

/// What ran: each message id with the approvers its handler was told counted.
type Runs = Arc<Mutex<Vec<(String, Vec<Kid>)>>>;

struct Setup {
    q: Queue,
    issuer: Keys,
    approvers: [SecretKey; 3],
    runs: Runs,
    decisions: Decisions,
    worker: Option<Worker>,
}

impl Setup {
    async fn new(prefix: &str, require_approval: Option<Classes>) -> Setup {
        let connection = connect().await;
        let q = Queue::declare(&connection, prefix).await;
        let issuer = Keys::new();
        let approvers = [(); 3].map(|()| SecretKey::generate().unwrap());
        let runs: Runs = Arc::default();
        let handler = {
            let runs = runs.clone();
            move |m: Message| {
                let runs = runs.clone();
                async move {
                    let a = &m.authorized;
                    runs.lock()
                        .unwrap()
                        .push((a.message_id.clone(), a.approved_by.clone()));
                    Ok::<_, HandlerError>(Disposition::Ack)
                }
            }
        };
        let tools = catalogue(&[
            (TOOL, ActionClass::Destructive),
            ("crm.read", ActionClass::Read),
        ]);
        let mut config = ConsumerConfig::new(q.name(), q.name(), issuer.trusted.clone(), tools)
            .prefetch(4)
            .approvers(approvers.iter().map(SecretKey::public_key).collect())
            .unwrap();
        if let Some(classes) = require_approval {
            config = config.require_approval(classes);
        }
        let decisions = Decisions::default();
        let worker =
            Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
        Setup {
            q,
            issuer,
            approvers,
            runs,
            decisions,
            worker: Some(worker),
        }
    }

    /// A destructive grant of `crm.*` for this queue, with `rule` when given.
    fn envelope(&self, rule: Option<(usize, &[SecretKey])>) -> SignedEnvelope {
        let mut builder = EnvelopeBuilder::new("spiffe://acme.example/agent/cleaner")
            .audience(self.q.name())
            .tool("crm.*")
            .classes(Classes::ALL)
            .max_uses(5)
            .ttl_secs(900)
            .on_behalf_of("user-7");
        if let Some((m, keys)) = rule {
            let keys: Vec<TrustedKey> = keys.iter().map(SecretKey::public_key).collect();
            builder = builder.approval(
                ApprovalSpec::new(Classes::only(ActionClass::Destructive), m, &keys).unwrap(),
            );
        }
        builder.sign(&self.issuer.key).unwrap()
    }

    /// The decisions about `id` so far: (reason code or "allowed", detail).
    fn decided(&self, id: &str) -> Vec<(String, String)> {
        self.decisions
            .all()
            .into_iter()
            .filter(|d| d.message_id.as_deref() == Some(id))
            .map(|d| {
                let reason = d.reason.map_or("allowed", |r| r.code()).to_owned();
                (reason, d.detail.unwrap_or_default())
            })
            .collect()
    }

    async fn wait_decisions(&self, id: &str, n: usize) -> Vec<(String, String)> {
        assert!(
            eventually(|| self.decided(id).len() >= n).await,
            "{n} decisions about {id}: {:?}",
            self.decided(id)
        );
        self.decided(id)
    }

    async fn finish(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
        self.q.delete().await;
    }
}

/// A channel in confirm mode, as `laissez approve` uses.
async fn approver_channel() -> Channel {
    let channel = connect().await.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
}

/// Takes the message parked in `dlq`, waiting for it.
async fn take_parked(channel: &Channel, dlq: &str) -> Parked {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(parked) = parked::take(channel, dlq).await.unwrap() {
            return parked;
        }
        assert!(Instant::now() < deadline, "nothing parked in {dlq}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `key`'s approval of the pending call, made `back` seconds ago.
fn approval_by(
    key: &SecretKey,
    pending: &PendingCall,
    aud: &str,
    body: &[u8],
    back: u64,
) -> Vec<u8> {
    let call = Call::new(
        &pending.envelope,
        aud,
        &pending.message_id,
        &pending.tool,
        pending.class,
        body,
    )
    .unwrap();
    let now = now();
    Approval::sign(
        key,
        &pending.envelope,
        &call,
        now - back,
        now + 600,
        Some("a person"),
    )
    .unwrap()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_of_3_destructive_call_is_parked_approved_twice_and_runs_exactly_once() {
    let logs = logs();
    let s = Setup::new("approve-2of3", None).await;
    let [a, b, c] = &s.approvers;
    let envelope = s.envelope(Some((2, &s.approvers[..])));
    let aud = s.q.name().to_owned();
    let dlq = s.q.topology.dead_letter_queue.clone();
    let body = b"drop ticket 42".to_vec();
    let call = ToolCall::new(envelope.as_bytes(), TOOL, ActionClass::Destructive, "m-1");
    s.q.publisher.publish("", &aud, &call, &body).await.unwrap();

    // Parked: approval_required, 0 of 2, headers intact, x-death naming the queue.
    assert_eq!(
        s.wait_decisions("m-1", 1).await,
        [("approval_required".to_owned(), "0 of 2".to_owned())]
    );
    let channel = approver_channel().await;
    let trusted = s.issuer.trusted.clone();
    let held: Vec<TrustedKey> = s.approvers.iter().map(SecretKey::public_key).collect();
    let tools = catalogue(&[(TOOL, ActionClass::Destructive)]);
    let examiner = |me: &SecretKey| {
        Examiner::new(
            &aud,
            trusted.clone(),
            held.clone(),
            Some(me.public_key()),
            tools.clone(),
            Policy::default(),
        )
        .unwrap()
    };
    // An issuer key never examines as an approver.
    assert!(
        Examiner::new(
            &aud,
            trusted.clone(),
            held.clone(),
            Some(s.issuer.key.public_key()),
            tools.clone(),
            Policy::default()
        )
        .is_err()
    );
    let parked = take_parked(&channel, &dlq).await;
    assert_eq!(parked.message_id(), Some("m-1"));
    assert_eq!(parked.body, body);
    assert!(
        parked.dead_lettered_from(&aud),
        "{:?}",
        parked.first_death()
    );
    let Examined::Pending(pending) = examiner(a).examine(&parked.properties, &parked.body, now())
    else {
        panic!("not pending");
    };
    assert_eq!(
        (pending.attached, pending.counted, pending.needed),
        (0, 0, 2)
    );
    assert!(!pending.already_approved);
    assert_eq!(pending.agent, "spiffe://acme.example/agent/cleaner");
    assert_eq!(pending.obo.as_deref(), Some("user-7"));

    // Approver A: republished, parked again, 1 of 2.
    let by_a = approval_by(a, &pending, &aud, &parked.body, 1);
    let props = with_approval(&parked.properties, &by_a).unwrap();
    parked::republish(&channel, &aud, props, &parked.body)
        .await
        .unwrap();
    parked.ack().await.unwrap();
    assert_eq!(
        s.wait_decisions("m-1", 2).await[1],
        ("approval_required".to_owned(), "1 of 2".to_owned())
    );

    // A again: the examiner says A already approved; added anyway, it counts once.
    let parked = take_parked(&channel, &dlq).await;
    assert!(
        parked.dead_lettered_from(&aud),
        "{:?}",
        parked.first_death()
    );
    let Examined::Pending(pending) = examiner(a).examine(&parked.properties, &parked.body, now())
    else {
        panic!("not pending");
    };
    assert_eq!(
        (pending.attached, pending.counted, pending.needed),
        (1, 1, 2)
    );
    assert!(pending.already_approved, "A's approval counts already");
    let Examined::Pending(for_c) = examiner(c).examine(&parked.properties, &parked.body, now())
    else {
        panic!("not pending");
    };
    assert!(!for_c.already_approved, "C has not approved");
    // Another signature of A's (another iat): the same approver all the same.
    let by_a_again = approval_by(a, &pending, &aud, &parked.body, 2);
    assert_ne!(by_a, by_a_again);
    let props = with_approval(&parked.properties, &by_a_again).unwrap();
    assert_eq!(approvals_of(&props).unwrap().len(), 2);
    parked::republish(&channel, &aud, props, &parked.body)
        .await
        .unwrap();
    parked.ack().await.unwrap();
    assert_eq!(
        s.wait_decisions("m-1", 3).await[2],
        ("approval_required".to_owned(), "1 of 2".to_owned()),
        "the same approver twice counts once"
    );
    assert!(s.runs.lock().unwrap().is_empty(), "nothing ran");

    // B: two distinct approvers, it runs once, naming A and B.
    let parked = take_parked(&channel, &dlq).await;
    assert!(
        parked.dead_lettered_from(&aud),
        "{:?}",
        parked.first_death()
    );
    let Examined::Pending(pending) = examiner(b).examine(&parked.properties, &parked.body, now())
    else {
        panic!("not pending");
    };
    assert_eq!(
        (pending.attached, pending.counted, pending.needed),
        (2, 1, 2)
    );
    let by_b = approval_by(b, &pending, &aud, &parked.body, 1);
    let approved: BasicProperties = with_approval(&parked.properties, &by_b).unwrap();
    parked::republish(&channel, &aud, approved.clone(), &parked.body)
        .await
        .unwrap();
    parked.ack().await.unwrap();
    assert_eq!(s.wait_decisions("m-1", 4).await[3].0, "allowed");
    assert!(eventually(|| s.runs.lock().unwrap().len() == 1).await);
    let mut want = vec![a.kid(), b.kid()];
    want.sort();
    assert_eq!(*s.runs.lock().unwrap(), [("m-1".to_owned(), want.clone())]);
    // The audit event of the run names them (hex kids); the denials say k of m.
    let events = audit_events(&logs.product.text(), &aud);
    let allowed: Vec<&serde_json::Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["allowed"] == true)
        .collect();
    let want_hex: Vec<String> = want.iter().map(ToString::to_string).collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["approved_by"], serde_json::json!(want_hex));
    let details: Vec<&serde_json::Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["reason"] == "approval_required")
        .map(|e| &e["detail"])
        .collect();
    assert_eq!(details, ["0 of 2", "1 of 2", "1 of 2"]);

    // A redelivery of the approved message: replayed, never run again.
    parked::republish(&channel, &aud, approved, &body)
        .await
        .unwrap();
    assert_eq!(s.wait_decisions("m-1", 5).await[4].0, "replayed");
    let stats = s.worker.as_ref().unwrap().stats_now();
    assert_eq!(stats.handled, 1);
    // Three parkings, counted apart from the one denial (the replay).
    assert_eq!((stats.parked, stats.denied), (3, 1), "{stats:?}");
    let outcomes: Vec<Option<laissez_amqp::Outcome>> = s
        .decisions
        .all()
        .iter()
        .filter(|d| d.reason == Some(Reason::ApprovalRequired))
        .map(|d| d.outcome)
        .collect();
    assert_eq!(outcomes, [Some(laissez_amqp::Outcome::Parked); 3]);
    assert_eq!(s.runs.lock().unwrap().len(), 1, "ran exactly once");
    // The replay is parked too, and its examination says it has what it needs.
    let parked = take_parked(&channel, &dlq).await;
    assert!(matches!(
        examiner(c).examine(&parked.properties, &parked.body, now()),
        Examined::Allowed
    ));
    parked.ack().await.unwrap();
    s.finish().await;
}

/// The properties of a call of `TOOL` with `approvals` as its approvals header.
fn properties(envelope: &[u8], id: &str, approvals: Option<AMQPValue>) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "laissez-envelope".into(),
        AMQPValue::ByteArray(envelope.to_vec().into()),
    );
    headers.insert("laissez-tool".into(), AMQPValue::LongString(TOOL.into()));
    if let Some(approvals) = approvals {
        headers.insert(HEADER_APPROVALS.into(), approvals);
    }
    BasicProperties::default()
        .with_headers(headers)
        .with_message_id(id.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_approvals_header_is_malformed_with_a_detail_and_never_runs() {
    let s = Setup::new("approve-bad", None).await;
    let envelope = s.envelope(Some((1, &s.approvers[..1])));
    let aud = s.q.name().to_owned();
    let channel = approver_channel().await;
    let body = b"x".to_vec();
    // A real approval, to pad with: the header is refused before anything counts.
    let call = Call::new(
        envelope.as_bytes(),
        &aud,
        "too-many",
        TOOL,
        ActionClass::Destructive,
        &body,
    )
    .unwrap();
    let good = Approval::sign(
        &s.approvers[0],
        envelope.as_bytes(),
        &call,
        now() - 1,
        now() + 600,
        None,
    )
    .unwrap()
    .into_bytes();
    let entry = |bytes: &[u8]| AMQPValue::ByteArray(bytes.to_vec().into());
    let cases: Vec<(&str, AMQPValue, &str)> = vec![
        (
            "too-many",
            AMQPValue::FieldArray(FieldArray::from(vec![entry(&good); 17])),
            "too_many_approvals",
        ),
        (
            "not-an-array",
            entry(&good),
            "approvals_header_not_an_array",
        ),
        (
            "too-long",
            AMQPValue::FieldArray(FieldArray::from(vec![entry(&[0xd2; 1025])])),
            "approval_too_long",
        ),
        (
            "not-text",
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
                "not base64!".into(),
            )])),
            "approval_not_base64url",
        ),
        (
            "a-number",
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongInt(7)])),
            "approval_not_bytes_or_text",
        ),
    ];
    for (id, value, _) in &cases {
        let props = properties(envelope.as_bytes(), id, Some(value.clone()));
        parked::republish(&channel, &aud, props, &body)
            .await
            .unwrap();
    }
    for (id, _, detail) in &cases {
        assert_eq!(
            s.wait_decisions(id, 1).await,
            [("malformed".to_owned(), (*detail).to_owned())],
            "{id}"
        );
    }
    // Exactly 16 entries, one of them counting: the header reads, and the call runs.
    let call = Call::new(
        envelope.as_bytes(),
        &aud,
        "sixteen",
        TOOL,
        ActionClass::Destructive,
        &body,
    )
    .unwrap();
    let good = Approval::sign(
        &s.approvers[0],
        envelope.as_bytes(),
        &call,
        now() - 1,
        now() + 600,
        None,
    )
    .unwrap()
    .into_bytes();
    let mut entries = vec![entry(&[0xd2, 0]); 15];
    entries.push(entry(&good));
    let props = properties(
        envelope.as_bytes(),
        "sixteen",
        Some(AMQPValue::FieldArray(FieldArray::from(entries))),
    );
    parked::republish(&channel, &aud, props, &body)
        .await
        .unwrap();
    assert_eq!(s.wait_decisions("sixteen", 1).await[0].0, "allowed");
    let ran: Vec<String> = s.runs.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ran, ["sixteen"], "only the well-formed message ran");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_requires_approval_denies_a_destructive_grant_without_a_rule() {
    let s = Setup::new(
        "approve-required",
        Some(Classes::only(ActionClass::Destructive)),
    )
    .await;
    let no_rule = s.envelope(None);
    s.q.publish(
        no_rule.as_bytes(),
        TOOL,
        ActionClass::Destructive,
        "no-rule",
    )
    .await;
    // A read under the same envelope needs nothing.
    s.q.publish(no_rule.as_bytes(), "crm.read", ActionClass::Read, "read")
        .await;
    assert_eq!(
        s.wait_decisions("no-rule", 1).await,
        [(
            "approval_required".to_owned(),
            "require_approval".to_owned()
        )]
    );
    assert_eq!(s.wait_decisions("read", 1).await[0].0, "allowed");
    // Parked, and approve would not offer it: no approval can lift it.
    let channel = approver_channel().await;
    let parked = take_parked(&channel, &s.q.topology.dead_letter_queue).await;
    let examiner = Examiner::new(
        s.q.name(),
        s.issuer.trusted.clone(),
        Vec::new(),
        None,
        catalogue(&[(TOOL, ActionClass::Destructive)]),
        Policy::default().with_require_approval(Classes::only(ActionClass::Destructive)),
    )
    .unwrap();
    match examiner.examine(&parked.properties, &parked.body, now()) {
        Examined::Denied { reason, .. } => assert_eq!(reason, Reason::ApprovalRequired),
        other => panic!("offered: {other:?}"),
    }
    parked.ack().await.unwrap();
    let ran: Vec<String> = s.runs.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ran, ["read"]);
    s.finish().await;
}
