//! Delegation chains through the middleware on the real broker (`docs/spec.md` §13): the
//! orchestrator signs for A, A delegates to B, B to C; each delegatee publishes its leaf with
//! its ancestors in `laissez-chain` (bytes or text) and its own invocation. The handler's
//! `Authorized` names the leaf's agent and cti, the root's (trusted) kid, and every agent of
//! the chain, root first; the allowed audit event carries the same chain. And a parent's uses
//! cap its children together on one ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};

use common::*;
use laissez_amqp::{Authorized, ConsumerConfig, Disposition, HandlerError, Message, ToolCall};
use laissez_ledger::MemoryLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedChain, delegate};
use laissez_verify::ActionClass;

/// A chain orchestrator → "A" (bound to `a`) → "B" (bound to `b`) [→ "C" (bound to `c`)].
fn chain(keys: &Keys, aud: &str, uses: u64, holders: &[&SecretKey]) -> SignedChain {
    let root = EnvelopeBuilder::new("A")
        .audience(aud)
        .tool("crm.*")
        .classes(classes_of("read+write"))
        .max_uses(uses)
        .ttl_secs(900)
        .holder(holders[0].public_key())
        .sign(&keys.key)
        .unwrap();
    let mut links: Vec<Vec<u8>> = vec![root.as_bytes().to_vec()];
    let mut chain = None;
    for (n, pair) in holders.windows(2).enumerate() {
        let parent: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
        let agent = ["B", "C", "D"][n];
        let child = EnvelopeBuilder::new(agent)
            .audience(aud)
            .tool("crm.read")
            .max_uses(uses)
            // Each link a minute shorter than its parent's: signed a second later, the same
            // TTL would end after the parent's (`not_attenuated`, expiry).
            .ttl_secs(600 - 60 * n as u64)
            .holder(pair[1].public_key());
        let signed = delegate(pair[0], &parent, child).unwrap();
        links = signed.links().iter().map(|l| l.to_vec()).collect();
        chain = Some(signed);
    }
    chain.unwrap()
}

/// What the handler was given, each run.
type Runs = Arc<Mutex<Vec<Authorized>>>;
/// The handler's answer: at once.
type Answer = std::future::Ready<Result<Disposition, HandlerError>>;

fn recording() -> (Runs, impl Fn(Message) -> Answer + Clone) {
    let runs: Runs = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            runs.lock().unwrap().push(m.authorized);
            std::future::ready(Ok::<_, HandlerError>(Disposition::Ack))
        }
    };
    (runs, handler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_and_the_audit_event_name_every_agent_of_the_chain() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "delegation").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let (a, b, c) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let two = chain(&keys, &aud, 5, &[&a, &b]);
    let three = chain(&keys, &aud, 5, &[&a, &b, &c]);
    let (runs, handler) = recording();
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.read", ActionClass::Read)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    let ancestors = two.ancestors();
    q.publish_call(
        ToolCall::new(two.leaf(), "crm.read", ActionClass::Read, "m-two")
            .with_chain(&ancestors)
            .signed_by(&b, &aud),
    )
    .await;
    let ancestors = three.ancestors();
    q.publish_call(
        ToolCall::new(three.leaf(), "crm.read", ActionClass::Read, "m-three")
            .with_chain(&ancestors)
            .signed_by(&c, &aud),
    )
    .await;
    assert!(
        eventually(|| runs.lock().unwrap().len() == 2).await,
        "{:?}",
        decisions.all()
    );
    worker.stop().await;
    let mut runs = runs.lock().unwrap().clone();
    runs.sort_by(|x, y| x.message_id.cmp(&y.message_id));
    let leaf_cti = |c: &SignedChain| {
        let e = laissez_verify::envelope::UntrustedEnvelope::decode(c.leaf()).unwrap();
        *e.claims_unverified().unwrap().cti()
    };
    for (run, (id, agents, signed)) in runs.iter().zip([
        ("m-three", vec!["A", "B", "C"], &three),
        ("m-two", vec!["A", "B"], &two),
    ]) {
        assert_eq!(run.message_id, id);
        assert_eq!(run.chain, agents, "root first");
        assert_eq!(&run.agent, agents.last().unwrap(), "the leaf's agent");
        assert_eq!(run.chain_json(), serde_json::to_string(&agents).unwrap());
        assert_eq!(run.kid, keys.key.kid(), "the root's, trusted, key");
        assert_eq!(run.cti, leaf_cti(signed), "the leaf's cti");
        assert_eq!(run.claims.sub, *agents.last().unwrap());
    }
    let events = audit_events(&logs.product.text(), &aud);
    let allowed: Vec<&serde_json::Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["allowed"] == true)
        .collect();
    assert_eq!(allowed.len(), 2);
    for event in allowed {
        let want = if event["message_id"] == "m-two" {
            serde_json::json!(["A", "B"])
        } else {
            serde_json::json!(["A", "B", "C"])
        };
        assert_eq!(event["chain"], want, "{event}");
    }
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_uses_cap_its_children_on_one_ledger() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "delegation-uses").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let a = SecretKey::generate().unwrap();
    let children: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
    // A has 3 uses; each child gets 3 of its own: 9 messages, 3 runs.
    let root = EnvelopeBuilder::new("A")
        .audience(&aud)
        .tool("crm.*")
        .max_uses(3)
        .ttl_secs(900)
        .holder(a.public_key())
        .sign(&keys.key)
        .unwrap();
    let root = root.as_bytes();
    let chains: Vec<SignedChain> = children
        .iter()
        .map(|holder| {
            let child = EnvelopeBuilder::new("child")
                .audience(&aud)
                .tool("crm.read")
                .max_uses(3)
                .ttl_secs(600)
                .holder(holder.public_key());
            delegate(&a, &[root], child).unwrap()
        })
        .collect();
    let (runs, handler) = recording();
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.read", ActionClass::Read)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(4);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    for (n, (signed, holder)) in chains.iter().zip(&children).enumerate() {
        let ancestors = signed.ancestors();
        for m in 0..3 {
            let id = format!("c{n}-m{m}");
            q.publish_call(
                ToolCall::new(signed.leaf(), "crm.read", ActionClass::Read, &id)
                    .with_chain(&ancestors)
                    .signed_by(holder, &aud),
            )
            .await;
        }
    }
    assert!(
        eventually(|| decisions.all().len() == 9).await,
        "{:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    assert_eq!((stats.handled, stats.denied), (3, 6));
    assert_eq!(runs.lock().unwrap().len(), 3);
    let denials = decisions.denials();
    assert!(
        denials
            .values()
            .all(|r| r == &[laissez_verify::Reason::UsesExhausted]),
        "{denials:?}"
    );
    assert_eq!(q.drain_after_stop().await.len(), 6);
    q.delete().await;
}
