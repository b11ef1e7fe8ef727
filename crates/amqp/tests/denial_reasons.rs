//! Every denial reason that can arise on a queue, on the real broker: each message is
//! dead-lettered, never run, and its reason is the same in the decision and in its one
//! `laissez::audit` event (`docs/spec.md` §9). The reasons a queue cannot produce in this
//! build are listed with where they are tested instead, and the list is checked against
//! `Reason::ALL`, so a new reason cannot go untested unnoticed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, ToolCall};
use laissez_ledger::MemoryLedger;
use laissez_sign::{ApprovalSpec, EnvelopeBuilder, SecretKey};
use laissez_verify::{ActionClass, Classes, Reason, TrustedKey};

/// `unsupported_grant_version` of `crates/verify/tests/vectors/envelopes.json` (grant
/// version 2), signed by the vectors' key: the signer here cannot make one.
const UNSUPPORTED: &str = "d2844da20127044834750f98bd59fcfca058b0a8016c6f7263686573747261746f720278277370696666653a2f2f61636d652e6578616d706c652f6167656e742f737570706f72742d626f74036762696c6c696e67041a6b49d458051a6b49d1c4061a6b49d1c407506374692d3031323334353637383961623a00010000a6000201836863726d2e72656164826c63726d2e7469636b65742e2a03826c66696c65732e64656c6574650402010303046a757365723a616c69636505677461736b2d34325840eccd43002238575c1630dee7b0cd927f1c192c41ee5ea3b7b3e26d9aaf7ef6ad3f11b555b68bf08ac9cd492b4207816f2f032c0fe59260963bdb50772006ae0e";
/// The vectors' signing key, raw.
const VECTOR_KEY: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";

/// Reasons a queue cannot produce in this build, and where each is tested instead.
const NOT_ON_THIS_QUEUE: [(Reason, &str); 10] = [
    (
        Reason::ArgumentsNotGranted,
        "needs a grant with args: arguments.rs, with its detail in decision and audit",
    ),
    (
        Reason::BudgetExhausted,
        "needs a budget spent first: arguments.rs, with its detail in decision and audit",
    ),
    (
        Reason::WrongAgent,
        "the middleware has no expected agent (threat model ASI03)",
    ),
    (
        Reason::Revoked,
        "the middleware takes no revocation list (threat model §4.6)",
    ),
    (
        Reason::BadInvocation,
        "needs a holder's invocation header: the holder-binding tests",
    ),
    (
        Reason::InvocationMismatch,
        "needs a holder's invocation header: the holder-binding tests",
    ),
    (
        Reason::InFlight,
        "a requeue, not a denial: requeue.rs, shared_redis.rs",
    ),
    (
        Reason::LedgerUnavailable,
        "a requeue, not a denial: ledger_down.rs",
    ),
    (
        Reason::Abandoned,
        "needs a worker killed mid-run: redelivery.rs",
    ),
    (
        Reason::HandlerFailed,
        "not a decision: the handler ran (end_to_end.rs)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_denial_reason_is_dead_lettered_with_its_reason_in_decision_and_audit() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "reasons").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let stranger = Keys::new();
    // A known seed: the forged child below is re-signed with it by hand.
    let agent_seed = [7u8; 32];
    let agent_key = SecretKey::from_seed(&agent_seed).unwrap();
    let sub_agent_key = SecretKey::generate().unwrap();
    let vector_key =
        TrustedKey::from_bytes(&hex::decode(VECTOR_KEY).unwrap().try_into().unwrap()).unwrap();
    let mut trusted = keys.trusted.clone();
    trusted.push(vector_key);

    let build = || {
        EnvelopeBuilder::new("agent-r")
            .audience(&aud)
            .tool("crm.*")
            .classes(classes_of("read+write"))
            .max_uses(5)
    };
    let good = keys.envelope(&aud, "crm.*", "read+write", 10);
    let once = keys.envelope(&aud, "crm.*", "read", 1);
    let mut tampered = good.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;
    let not_yet = build().not_before(now() + 3600).sign(&keys.key).unwrap();
    let expired = build()
        .not_before(now() - 7200)
        .ttl_secs(300)
        .sign(&keys.key)
        .unwrap();
    // Two hours: the signer allows up to 24 h, the worker's policy (default) one hour.
    let too_long = build().ttl_secs(7200).sign(&keys.key).unwrap();
    let elsewhere = keys.envelope("another-queue", "crm.*", "read", 10);
    let unknown_key = stranger.envelope(&aud, "crm.*", "read", 10);
    let holder_bound = build()
        .holder(agent_key.public_key())
        .sign(&keys.key)
        .unwrap();
    let unsupported = hex::decode(UNSUPPORTED).unwrap();
    let approver = SecretKey::generate().unwrap();
    let rule = ApprovalSpec::new(
        Classes::only(ActionClass::Destructive),
        1,
        &[approver.public_key()],
    )
    .unwrap();
    // Delegation (`docs/spec.md` §13): the holder-bound envelope's holder delegates to a
    // sub-agent. A child whose signature was changed is a link that does not hold; a child
    // signed without `delegate`'s checks that grants more uses than its parent is not
    // attenuated. Both are refused before any invocation is looked at.
    let child = |b: EnvelopeBuilder| b.holder(sub_agent_key.public_key());
    let delegated = laissez_sign::delegate(
        &agent_key,
        &[holder_bound.as_bytes()],
        child(
            EnvelopeBuilder::new("agent-sub")
                .audience(&aud)
                .tool("crm.read"),
        ),
    )
    .unwrap();
    let mut broken_child = delegated.leaf().to_vec();
    *broken_child.last_mut().unwrap() ^= 0x01;
    let widened = child(build().max_uses(50)).sign(&agent_key).unwrap();
    let widened =
        laissez_test_support::force_child(holder_bound.as_bytes(), widened.as_bytes(), &agent_seed)
            .unwrap();
    let ancestors: Vec<&[u8]> = vec![holder_bound.as_bytes()];
    let needs_approval = build()
        .classes(classes_of("read+write+destructive"))
        .approval(rule)
        .sign(&keys.key)
        .unwrap();

    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                runs.lock().unwrap().push(m.authorized.message_id.clone());
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.write", ActionClass::Write),
        ("crm.drop", ActionClass::Destructive),
        ("billing.pay", ActionClass::Write),
    ]);
    let config = ConsumerConfig::new(q.name(), &aud, trusted, tools).prefetch(8);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    // The two that run first: the replay and the exhaustion follow them.
    q.publish(good.as_bytes(), "crm.read", ActionClass::Read, "replayed")
        .await;
    q.publish(once.as_bytes(), "crm.read", ActionClass::Read, "once")
        .await;
    assert!(
        eventually(|| runs.lock().unwrap().len() == 2).await,
        "the allowed messages did not run"
    );
    let read = |envelope: &[u8], id: &'static str| (envelope.to_vec(), "crm.read", id);
    let denied: Vec<(Vec<u8>, &str, &str, Reason)> = [
        (read(b"\x84\x00", "malformed"), Reason::Malformed),
        (
            read(unknown_key.as_bytes(), "unknown_key"),
            Reason::UnknownKey,
        ),
        (read(&tampered, "bad_signature"), Reason::BadSignature),
        (read(&unsupported, "unsupported"), Reason::Unsupported),
        (
            read(not_yet.as_bytes(), "not_yet_valid"),
            Reason::NotYetValid,
        ),
        (read(expired.as_bytes(), "expired"), Reason::Expired),
        (
            read(too_long.as_bytes(), "lifetime_too_long"),
            Reason::LifetimeTooLong,
        ),
        (
            read(elsewhere.as_bytes(), "wrong_audience"),
            Reason::WrongAudience,
        ),
        (
            (good.as_bytes().to_vec(), "crm.export", "unknown_tool"),
            Reason::UnknownTool,
        ),
        (
            (good.as_bytes().to_vec(), "billing.pay", "tool_not_granted"),
            Reason::ToolNotGranted,
        ),
        (
            (good.as_bytes().to_vec(), "crm.drop", "class_not_granted"),
            Reason::ClassNotGranted,
        ),
        (
            read(holder_bound.as_bytes(), "invocation_required"),
            Reason::InvocationRequired,
        ),
        (
            (
                needs_approval.as_bytes().to_vec(),
                "crm.drop",
                "approval_required",
            ),
            Reason::ApprovalRequired,
        ),
        (
            read(once.as_bytes(), "uses_exhausted"),
            Reason::UsesExhausted,
        ),
        (read(good.as_bytes(), "replayed"), Reason::Replayed),
        (read(&broken_child, "bad_delegation"), Reason::BadDelegation),
        (read(&widened, "not_attenuated"), Reason::NotAttenuated),
    ]
    .into_iter()
    .map(|((envelope, tool, id), reason)| (envelope, tool, id, reason))
    .collect();
    for (envelope, tool, id, _) in &denied {
        // No class header: the catalogue alone gives the class.
        let call = ToolCall::new(envelope, tool, ActionClass::Read, id).without_class();
        // The two delegated leaves travel with their ancestor in `laissez-chain`.
        let call = if matches!(*id, "bad_delegation" | "not_attenuated") {
            call.with_chain(&ancestors)
        } else {
            call
        };
        q.publish_call(call).await;
    }
    assert!(
        eventually(|| decisions.all().len() == 2 + denied.len()).await,
        "decisions: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;

    // Every one dead-lettered once, none run.
    let mut want: Vec<String> = denied.iter().map(|d| d.2.to_owned()).collect();
    want.sort();
    assert_eq!(ids(&dead), want);
    let mut ran = runs.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        ["once", "replayed"],
        "only the two allowed ran, once each"
    );
    // approval_required is parked: counted apart from the denials.
    let parked = denied
        .iter()
        .filter(|d| d.3 == Reason::ApprovalRequired)
        .count() as u64;
    assert_eq!(parked, 1);
    assert_eq!(
        (stats.handled, stats.denied, stats.parked),
        (2, denied.len() as u64 - parked, parked)
    );
    // The decision and the audit event say the same reason.
    let log = logs.product.text();
    let denied_events: BTreeMap<String, serde_json::Value> = audit_events(&log, &aud)
        .into_iter()
        .filter(|(_, e)| e["allowed"] == false)
        .map(|(_, e)| (e["message_id"].as_str().unwrap().to_owned(), e))
        .collect();
    assert_eq!(denied_events.len(), denied.len(), "{log}");
    let denials = decisions.denials();
    assert_eq!(denials.len(), denied.len(), "{denials:?}");
    for (_, _, id, reason) in &denied {
        assert_eq!(denials[*id], [*reason], "{id}: decision");
        let event = &denied_events[*id];
        assert_eq!(event["reason"], reason.code(), "{id}: audit event {event}");
        // Ids are authentic only once the signature held.
        assert_eq!(
            event["claims_verified"],
            reason.after_signature(),
            "{id}: {event}"
        );
        let decision = decisions
            .all()
            .into_iter()
            .find(|d| d.message_id.as_deref() == Some(*id) && !d.allowed)
            .unwrap();
        assert_eq!(
            decision.cti.is_some(),
            reason.after_signature(),
            "{id}: {decision:?}"
        );
    }

    // A chain's denial names every agent it claims, root first; the leaf's as `agent`.
    for id in ["bad_delegation", "not_attenuated"] {
        let event = &denied_events[id];
        let leaf = if id == "bad_delegation" {
            "agent-sub"
        } else {
            "agent-r"
        };
        assert_eq!(
            event["chain"],
            serde_json::json!(["agent-r", leaf]),
            "{event}"
        );
        assert_eq!(event["agent"], leaf, "{event}");
    }
    assert_eq!(
        denied_events["expired"]["chain"],
        serde_json::json!(["agent-r"])
    );

    // Every reason is here or accounted for, and none twice.
    let mut covered: Vec<Reason> = denied.iter().map(|d| d.3).collect();
    covered.extend(NOT_ON_THIS_QUEUE.iter().map(|(r, _)| *r));
    covered.sort();
    let mut all = Reason::ALL.to_vec();
    all.sort();
    assert_eq!(covered, all);
    q.delete().await;
}
