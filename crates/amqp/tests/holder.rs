//! Holder binding on the real broker (`docs/spec.md` §9, §11): an agent publishes
//! holder-bound calls with [`ToolCall::signed_by`] and each runs once; what another publisher
//! can do with what it copies off the queue never runs. The envelope alone on a new message is
//! `invocation_required`; with the original's invocation too it is `invocation_mismatch` (the
//! message id), and so is the original message republished with another body (the body) or an
//! invocation made for another audience; an unreadable invocation header is `bad_invocation`.
//! A redelivery of a good message runs again under its one use, and `require_holder` refuses
//! a bearer envelope.
//!
//! Every test ends on a positive condition: the expected decisions were all made, the worker
//! stopped (so nothing more can be decided), the work queue is empty and the dead-letter queue
//! gave exactly the denied messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::options::QueueDeclareOptions;
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_amqp::lapin::{BasicProperties, Channel};
use laissez_amqp::{
    ConsumerConfig, Disposition, EnvelopeEncoding, HEADER_INVOCATION, Handler, HandlerError,
    Message, Publisher, ToolCall,
};
use laissez_ledger::MemoryLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope};
use laissez_verify::{ActionClass, Reason};

const AGENT: &str = "spiffe://acme.example/agent/holder-bot";

/// One run of the handler: message id, body, use number, redelivered.
type Run = (String, Vec<u8>, u64, bool);

/// A handler that records every run and asks for `requeue_once` back the first time.
#[derive(Clone, Default)]
struct Recorder {
    runs: Arc<Mutex<Vec<Run>>>,
    requeue_once: &'static str,
}

impl Handler for Recorder {
    fn handle(&self, m: Message) -> impl Future<Output = Result<Disposition, HandlerError>> + Send {
        let mut runs = self.runs.lock().unwrap();
        let id = m.authorized.message_id.clone();
        let first = !runs.iter().any(|r| r.0 == id);
        runs.push((id.clone(), m.body, m.authorized.use_number, m.redelivered));
        std::future::ready(Ok(if id == self.requeue_once && first {
            Disposition::Requeue {
                after: Duration::from_millis(100),
            }
        } else {
            Disposition::Ack
        }))
    }
}

fn recording(requeue_once: &'static str) -> (Arc<Mutex<Vec<Run>>>, Recorder) {
    let recorder = Recorder {
        requeue_once,
        ..Recorder::default()
    };
    (recorder.runs.clone(), recorder)
}

fn holder_envelope(
    keys: &Keys,
    agent: &SecretKey,
    audiences: &[&str],
    uses: u64,
) -> SignedEnvelope {
    let mut builder = EnvelopeBuilder::new(AGENT)
        .tool("crm.*")
        .classes(classes_of("read+write"))
        .max_uses(uses)
        .ttl_secs(900)
        .holder(agent.public_key());
    for aud in audiences {
        builder = builder.audience(*aud);
    }
    builder.sign(&keys.key).unwrap()
}

/// `properties` with `name` set to `value` and the message id `id`: what a publisher that
/// copied a message's headers can send.
fn copied(
    properties: &BasicProperties,
    id: &str,
    header: Option<(&str, AMQPValue)>,
) -> BasicProperties {
    let mut headers: FieldTable = properties.headers().clone().unwrap();
    if let Some((name, value)) = header {
        headers.insert(name.into(), value);
    }
    properties
        .clone()
        .with_headers(headers)
        .with_message_id(id.into())
}

/// Ready messages in `queue` (passive declare).
async fn ready(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

/// Denials by message id: (reason, detail) in the order decided.
fn denials(decisions: &Decisions) -> BTreeMap<String, Vec<(Reason, String)>> {
    let mut out: BTreeMap<String, Vec<(Reason, String)>> = BTreeMap::new();
    for d in decisions.all().into_iter().filter(|d| !d.allowed) {
        out.entry(d.message_id.clone().unwrap())
            .or_default()
            .push((d.reason.unwrap(), d.detail.clone().unwrap_or_default()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_copied_off_the_queue_never_runs_and_the_agents_calls_run_once() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "holder").await;
    let keys = Keys::new();
    let agent = SecretKey::generate().unwrap();
    let aud = q.name().to_owned();
    let other_pool = format!("{aud}-other-pool");
    // Four uses: exactly the four good message ids. A denial that spent one would leave a
    // good message `uses_exhausted`.
    let env = holder_envelope(&keys, &agent, &[&aud, &other_pool], 4);
    let tools = catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.write", ActionClass::Write),
    ]);
    let (runs, handler) = recording("good-requeued");
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(8);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    // The agent, through the helper: the invocation signs the exact bytes published.
    let read = |id| ToolCall::new(env.as_bytes(), "crm.read", ActionClass::Read, id);
    let signed = |id| read(id).signed_by(&agent, &aud);
    let original = signed("good-1")
        .message_properties(EnvelopeEncoding::Bytes, b"ticket 1")
        .unwrap();
    assert!(
        original
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .contains_key(HEADER_INVOCATION)
    );
    q.publisher
        .publish_with("", q.name(), original.clone(), b"ticket 1")
        .await
        .unwrap();
    let write = ToolCall::new(env.as_bytes(), "crm.write", ActionClass::Write, "good-2")
        .without_class()
        .signed_by(&agent, &aud);
    q.publisher
        .publish("", q.name(), &write, b"ticket 2")
        .await
        .unwrap();
    // Text headers (envelope and invocation as base64url) read alike.
    let text = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap()
        .with_encoding(EnvelopeEncoding::Text);
    text.publish("", q.name(), &signed("good-3"), b"ticket 3")
        .await
        .unwrap();
    // The handler asks for this one back once: the redelivery runs under the same use.
    q.publisher
        .publish("", q.name(), &signed("good-requeued"), b"ticket 4")
        .await
        .unwrap();

    // Another publisher, with only what it read off the queue.
    let thief = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    // The envelope on a new message, new body, no invocation.
    thief
        .publish("", q.name(), &read("copy-envelope"), b"delete everything")
        .await
        .unwrap();
    // The envelope and the original's invocation on a new message id.
    thief
        .publish_with(
            "",
            q.name(),
            copied(&original, "copy-invocation", None),
            b"ticket 1",
        )
        .await
        .unwrap();
    // The original message itself (same headers, same id), its body altered in flight.
    thief
        .publish_with("", q.name(), original.clone(), b"ticket 1, and close all")
        .await
        .unwrap();
    // An invocation the agent made for another worker pool the envelope names.
    let elsewhere = read("elsewhere")
        .signed_by(&agent, &other_pool)
        .message_properties(EnvelopeEncoding::Bytes, b"ticket 5")
        .unwrap();
    thief
        .publish_with("", q.name(), elsewhere, b"ticket 5")
        .await
        .unwrap();
    // Invocation headers that cannot be read: a number, and text that is not base64url.
    for (id, value) in [
        ("invocation-number", AMQPValue::LongInt(42)),
        (
            "invocation-garbage",
            AMQPValue::LongString("not an invocation!".into()),
        ),
    ] {
        let props = copied(&original, id, Some((HEADER_INVOCATION, value)));
        thief
            .publish_with("", q.name(), props, b"ticket 1")
            .await
            .unwrap();
    }

    // 5 runs (the requeued message twice) and 6 denials, then nothing is left to decide.
    let denied = 6;
    assert!(
        eventually(|| runs.lock().unwrap().len() == 5 && decisions.all().len() == 5 + denied).await,
        "runs {:?}, decisions {:?}",
        runs.lock().unwrap(),
        decisions.all()
    );
    let stats = worker.stop().await;
    assert_eq!(
        ready(&q.channel, q.name()).await,
        0,
        "the work queue is drained"
    );
    let mut dead: Vec<(String, Vec<u8>)> = q.wait_dead_letters(denied).await;
    assert!(q.take_dead_letters().await.is_empty());
    dead.sort();
    let body = |b: &str| b.as_bytes().to_vec();
    assert_eq!(
        dead,
        [
            ("copy-envelope".to_owned(), body("delete everything")),
            ("copy-invocation".to_owned(), body("ticket 1")),
            ("elsewhere".to_owned(), body("ticket 5")),
            ("good-1".to_owned(), body("ticket 1, and close all")),
            ("invocation-garbage".to_owned(), body("ticket 1")),
            ("invocation-number".to_owned(), body("ticket 1")),
        ]
    );
    assert_eq!(stats.denied, 6);
    assert_eq!(stats.handled, 5);

    let pair = |r: Reason, d: &str| vec![(r, d.to_owned())];
    let mut want = BTreeMap::new();
    want.insert(
        "copy-envelope".to_owned(),
        pair(Reason::InvocationRequired, "holder_bound"),
    );
    want.insert(
        "copy-invocation".to_owned(),
        pair(Reason::InvocationMismatch, "message_id"),
    );
    want.insert(
        "elsewhere".to_owned(),
        pair(Reason::InvocationMismatch, "audience"),
    );
    want.insert(
        "good-1".to_owned(),
        pair(Reason::InvocationMismatch, "body"),
    );
    want.insert(
        "invocation-number".to_owned(),
        pair(Reason::BadInvocation, "not_bytes_or_text"),
    );
    want.insert(
        "invocation-garbage".to_owned(),
        pair(Reason::BadInvocation, "not_base64url"),
    );
    assert_eq!(denials(&decisions), want);
    // The verifier held the signature: the ids of every denial are authentic.
    for d in decisions.all() {
        assert_eq!(d.agent.as_deref(), Some(AGENT), "{d:?}");
        assert_eq!(d.cti, Some(env.cti_hex()), "{d:?}");
    }

    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    let uses: Vec<u64> = runs.iter().map(|r| r.2).collect();
    let runs: Vec<(String, Vec<u8>, bool)> = runs
        .into_iter()
        .map(|(id, b, _, red)| (id, b, red))
        .collect();
    assert_eq!(
        runs,
        [
            ("good-1".to_owned(), body("ticket 1"), false),
            ("good-2".to_owned(), body("ticket 2"), false),
            ("good-3".to_owned(), body("ticket 3"), false),
            ("good-requeued".to_owned(), body("ticket 4"), false),
            ("good-requeued".to_owned(), body("ticket 4"), true),
        ],
        "each good call ran once, the requeued one again on its redelivery"
    );
    // The redelivery ran under its first use; the four good ids had the four uses.
    assert_eq!(uses[3], uses[4]);
    let mut distinct = uses[..4].to_vec();
    distinct.sort_unstable();
    assert_eq!(distinct, [1, 2, 3, 4]);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_holder_refuses_a_bearer_envelope_and_runs_a_holder_bound_one() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "require-holder").await;
    let keys = Keys::new();
    let agent = SecretKey::generate().unwrap();
    let aud = q.name().to_owned();
    let bearer = keys.envelope(&aud, "crm.*", "read", 5);
    let bound = holder_envelope(&keys, &agent, &[&aud], 5);
    let tools = catalogue(&[("crm.read", ActionClass::Read)]);
    let (runs, handler) = recording("");
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .prefetch(4)
        .require_holder(true);
    assert!(config.requires_holder());
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    q.publish(bearer.as_bytes(), "crm.read", ActionClass::Read, "bearer")
        .await;
    // A bearer envelope refused by the policy is refused whatever the message carries: the
    // invocation header of a holder-bound call does not make it a holder's call.
    let holders = ToolCall::new(bound.as_bytes(), "crm.read", ActionClass::Read, "bound")
        .signed_by(&agent, &aud);
    let props = holders
        .message_properties(EnvelopeEncoding::Bytes, b"bound")
        .unwrap();
    let invocation = props.headers().as_ref().unwrap().inner()[HEADER_INVOCATION].clone();
    let bearer_props = ToolCall::new(bearer.as_bytes(), "crm.read", ActionClass::Read, "x")
        .properties(EnvelopeEncoding::Bytes);
    q.publisher
        .publish_with(
            "",
            q.name(),
            copied(
                &bearer_props,
                "bearer-with-invocation",
                Some((HEADER_INVOCATION, invocation)),
            ),
            b"bound",
        )
        .await
        .unwrap();
    q.publisher
        .publish("", q.name(), &holders, b"bound")
        .await
        .unwrap();

    assert!(eventually(|| decisions.all().len() == 3).await);
    worker.stop().await;
    assert_eq!(ready(&q.channel, q.name()).await, 0);
    let mut dead: Vec<String> = q
        .wait_dead_letters(2)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(q.take_dead_letters().await.is_empty());
    dead.sort();
    assert_eq!(dead, ["bearer", "bearer-with-invocation"]);
    let mut want = BTreeMap::new();
    for id in ["bearer", "bearer-with-invocation"] {
        want.insert(
            id.to_owned(),
            vec![(Reason::InvocationRequired, "require_holder".to_owned())],
        );
    }
    assert_eq!(denials(&decisions), want);
    let runs: Vec<(String, u64)> = runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.0.clone(), r.2))
        .collect();
    assert_eq!(runs, [("bound".to_owned(), 1)]);
    q.delete().await;
}
