//! End to end against the real broker: allowed messages reach the handler exactly once (the
//! envelope as raw bytes, base64url text, or line-wrapped text); each denial reason that can
//! arise on a queue lands in the dead-letter queue and never in the handler; handler errors,
//! panics and requeues do what the docs say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_amqp::{
    ConsumerConfig, Disposition, EnvelopeEncoding, HandlerError, Message, OnHandlerError, ToolCall,
};
use laissez_ledger::{MAX_TAKEOVERS, MemoryLedger, UseState};
use laissez_sign::EnvelopeBuilder;
use laissez_verify::{ActionClass, Reason};

type Seen = Arc<Mutex<Vec<(String, u64, bool)>>>;

fn recording_handler(seen: Seen) -> impl laissez_amqp::Handler {
    move |m: Message| {
        let seen = seen.clone();
        async move {
            let a = &m.authorized;
            assert_eq!(m.body, a.message_id.as_bytes(), "the body is the handler's");
            seen.lock()
                .unwrap()
                .push((a.message_id.clone(), a.use_number, a.taken_over));
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_run_once_and_every_denial_is_dead_lettered() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "e2e").await;
    let keys = Keys::new();
    let stranger = Keys::new();
    let aud = q.name().to_owned();
    let good = keys.envelope(&aud, "crm.*", "read+write", 10);
    let once = keys.envelope(&aud, "crm.*", "read", 1);
    let expired = EnvelopeBuilder::new("agent-x")
        .audience(&aud)
        .tool("crm.*")
        .not_before(now() - 7200)
        .ttl_secs(300)
        .sign(&keys.key)
        .unwrap();
    let elsewhere = keys.envelope("another-queue", "crm.*", "read", 10);
    let unknown = stranger.envelope(&aud, "crm.*", "read", 10);
    let mut tampered = good.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;

    let seen: Seen = Arc::default();
    let decisions = Decisions::default();
    let tools = catalogue(&[
        ("crm.ticket.read", ActionClass::Read),
        ("crm.ticket.update", ActionClass::Write),
        ("crm.read", ActionClass::Read),
        ("billing.refund", ActionClass::Write),
        ("crm.ticket.close", ActionClass::Destructive),
    ]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(16);
    let worker = Worker::start(
        config,
        Arc::new(MemoryLedger::new()),
        recording_handler(seen.clone()),
        &decisions,
    )
    .await;

    // Allowed: raw bytes, base64url text, line-wrapped text (as the command line reads it),
    // and the same envelope over several messages.
    q.publish(
        good.as_bytes(),
        "crm.ticket.read",
        ActionClass::Read,
        "ok-1",
    )
    .await;
    q.publish(
        good.as_bytes(),
        "crm.ticket.update",
        ActionClass::Write,
        "ok-2",
    )
    .await;
    let text_call = ToolCall::new(good.as_bytes(), "crm.read", ActionClass::Read, "ok-text");
    q.publisher
        .publish_with(
            "",
            q.name(),
            text_call.properties(EnvelopeEncoding::Text),
            b"ok-text",
        )
        .await
        .unwrap();
    let text = good.to_text();
    let wrapped: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    let wrapped = format!("{}\n", wrapped.join("\r\n"));
    let call = ToolCall::new(good.as_bytes(), "crm.read", ActionClass::Read, "ok-wrapped");
    let mut props = call.properties(EnvelopeEncoding::Text);
    let mut headers = props.headers().clone().unwrap();
    headers.insert(
        "laissez-envelope".into(),
        AMQPValue::LongString(wrapped.into()),
    );
    props = props.with_headers(headers);
    q.publisher
        .publish_with("", q.name(), props, b"ok-wrapped")
        .await
        .unwrap();
    q.publish(once.as_bytes(), "crm.read", ActionClass::Read, "once-1")
        .await;
    // Denied by the verifier.
    q.publish(&tampered, "crm.read", ActionClass::Read, "bad-signature")
        .await;
    q.publish(
        unknown.as_bytes(),
        "crm.read",
        ActionClass::Read,
        "unknown-key",
    )
    .await;
    q.publish(expired.as_bytes(), "crm.read", ActionClass::Read, "expired")
        .await;
    q.publish(
        elsewhere.as_bytes(),
        "crm.read",
        ActionClass::Read,
        "wrong-audience",
    )
    .await;
    q.publish(
        good.as_bytes(),
        "billing.refund",
        ActionClass::Write,
        "tool-not-granted",
    )
    .await;
    q.publish(
        good.as_bytes(),
        "crm.ticket.close",
        ActionClass::Destructive,
        "class-not-granted",
    )
    .await;
    // Granted by the envelope's pattern, but this worker does not run it.
    q.publish_without_class(good.as_bytes(), "crm.ticket.archive", "unknown-tool")
        .await;
    // Malformed headers and a missing message id.
    let mut garbled = FieldTable::default();
    garbled.insert(
        "laissez-envelope".into(),
        AMQPValue::LongString("%%%not-base64%%%".into()),
    );
    garbled.insert(
        "laissez-tool".into(),
        AMQPValue::LongString("crm.read".into()),
    );
    garbled.insert("laissez-class".into(), AMQPValue::LongString("read".into()));
    let props = BasicProperties::default()
        .with_headers(garbled)
        .with_message_id("garbled".into());
    q.publisher
        .publish_with("", q.name(), props, b"garbled")
        .await
        .unwrap();
    let call = ToolCall::new(good.as_bytes(), "crm.read", ActionClass::Read, "bad-class");
    let mut props = call.properties(EnvelopeEncoding::Bytes);
    let mut headers = props.headers().clone().unwrap();
    headers.insert(
        "laissez-class".into(),
        AMQPValue::LongString("admin".into()),
    );
    props = props.with_headers(headers);
    q.publisher
        .publish_with("", q.name(), props, b"bad-class")
        .await
        .unwrap();
    let no_id = ToolCall::new(good.as_bytes(), "crm.read", ActionClass::Read, "x")
        .properties(EnvelopeEncoding::Bytes)
        .with_message_id("".into());
    q.publisher
        .publish_with("", q.name(), no_id, b"no-message-id")
        .await
        .unwrap();
    let no_envelope = BasicProperties::default().with_message_id("no-envelope".into());
    q.publisher
        .publish_with("", q.name(), no_envelope, b"no-envelope")
        .await
        .unwrap();

    // Exhausted and replayed need the first use to have completed first.
    assert!(
        eventually(|| seen.lock().unwrap().len() == 5).await,
        "allowed messages did not run"
    );
    q.publish(once.as_bytes(), "crm.read", ActionClass::Read, "once-2")
        .await;
    q.publish(
        good.as_bytes(),
        "crm.ticket.read",
        ActionClass::Read,
        "ok-1",
    )
    .await;

    let expected = [
        ("bad-signature", Reason::BadSignature),
        ("unknown-key", Reason::UnknownKey),
        ("expired", Reason::Expired),
        ("wrong-audience", Reason::WrongAudience),
        ("tool-not-granted", Reason::ToolNotGranted),
        ("class-not-granted", Reason::ClassNotGranted),
        ("unknown-tool", Reason::UnknownTool),
        ("garbled", Reason::Malformed),
        ("bad-class", Reason::Malformed),
        ("", Reason::Malformed),
        ("no-envelope", Reason::Malformed),
        ("once-2", Reason::UsesExhausted),
        ("ok-1", Reason::Replayed),
    ];
    // Every message decided (the five allowed, then each denial), the worker stops, and the
    // queues are drained: no consumer, nothing left to come back, so the counts are final.
    assert!(
        eventually(|| decisions.all().len() == 5 + expected.len()).await,
        "decisions: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;

    let mut dead_ids: Vec<String> = dead.iter().map(|(id, _)| id.clone()).collect();
    dead_ids.sort();
    let mut want_ids: Vec<String> = expected.iter().map(|(id, _)| id.to_string()).collect();
    want_ids.sort();
    assert_eq!(
        dead_ids, want_ids,
        "the dead-letter queue holds exactly the denied messages"
    );
    assert!(
        dead.iter()
            .any(|(id, body)| id.is_empty() && body == b"no-message-id")
    );

    let denials = decisions.denials();
    assert_eq!(denials.len(), expected.len(), "{denials:?}");
    for (id, reason) in expected {
        assert_eq!(
            denials.get(id).map(Vec::as_slice),
            Some(&[reason][..]),
            "message {id:?}"
        );
    }
    // Ids in decisions are authentic only: set after the signature held, absent before.
    let by_id = |id: &str| {
        decisions
            .all()
            .into_iter()
            .find(|d| d.message_id.as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(
        by_id("expired").cti.as_deref(),
        Some(expired.cti_hex().as_str())
    );
    assert_eq!(
        by_id("tool-not-granted").cti.as_deref(),
        Some(good.cti_hex().as_str())
    );
    assert_eq!(by_id("bad-signature").cti, None);
    assert_eq!(by_id("unknown-key").agent, None);
    // The class in a decision is the catalogue's; an unlisted tool has none.
    assert_eq!(
        by_id("class-not-granted").class,
        Some(ActionClass::Destructive)
    );
    assert_eq!(by_id("unknown-tool").class, None);
    assert_eq!(
        by_id("unknown-tool").cti.as_deref(),
        Some(good.cti_hex().as_str())
    );
    let mut ran = seen.lock().unwrap().clone();
    ran.sort();
    let ids: Vec<(&str, bool)> = ran.iter().map(|(id, _, t)| (id.as_str(), *t)).collect();
    assert_eq!(
        ids,
        [
            ("ok-1", false),
            ("ok-2", false),
            ("ok-text", false),
            ("ok-wrapped", false),
            ("once-1", false)
        ],
        "each allowed message ran once, none of the denied ones did"
    );
    assert_eq!(ran.iter().find(|r| r.0 == "once-1").unwrap().1, 1);
    // Uses of `good` are 1..=4 in some order; `once` has one use.
    let mut good_uses: Vec<u64> = ran
        .iter()
        .filter(|(id, _, _)| id.starts_with("ok-"))
        .map(|r| r.1)
        .collect();
    good_uses.sort_unstable();
    assert_eq!(good_uses, vec![1, 2, 3, 4]);
    assert_eq!(stats.handled, 5);
    assert_eq!(stats.denied, expected.len() as u64);
    assert_eq!(stats.received, 5 + expected.len() as u64, "{stats:?}");
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_panics_and_requeues() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "outcomes").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "*", "read+destructive", 10);
    let runs: Seen = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                let a = m.authorized.clone();
                let attempt = {
                    let mut runs = runs.lock().unwrap();
                    runs.push((a.message_id.clone(), a.use_number, a.taken_over));
                    runs.iter().filter(|r| r.0 == a.message_id).count()
                };
                match a.message_id.as_str() {
                    "fails" => Err::<Disposition, HandlerError>("boom".into()),
                    "panics" => panic!("handler panic on purpose"),
                    "requeue-once" if attempt == 1 => Ok(Disposition::Requeue {
                        after: Duration::from_millis(100),
                    }),
                    "retried-error" if attempt == 1 => Err("transient".into()),
                    "destructive-error" => Err("half done".into()),
                    _ => Ok(Disposition::Ack),
                }
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[
        ("tool.a", ActionClass::Read),
        ("tool.d", ActionClass::Destructive),
    ]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .prefetch(4)
        .on_handler_error(OnHandlerError::Requeue {
            after: Duration::from_millis(100),
        });
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    for id in ["panics", "requeue-once", "retried-error", "after-panic"] {
        q.publish(env.as_bytes(), "tool.a", ActionClass::Read, id)
            .await;
    }
    q.publish(
        env.as_bytes(),
        "tool.d",
        ActionClass::Destructive,
        "destructive-error",
    )
    .await;
    // With requeue-on-error, a panicking handler runs again under the same use, until the
    // ledger's take-over cap abandons it: 1 + MAX_TAKEOVERS runs, then the dead-letter queue.
    let most = 1 + MAX_TAKEOVERS as usize;
    let ok = eventually(|| {
        let runs = runs.lock().unwrap();
        let n = |id: &str| runs.iter().filter(|r| r.0 == id).count();
        n("requeue-once") == 2
            && n("retried-error") == 2
            && n("after-panic") == 1
            && n("destructive-error") == 1
            && n("panics") == most
    })
    .await;
    assert!(ok, "runs: {:?}", runs.lock().unwrap());
    // The cap's denial is the last thing to happen.
    assert!(
        eventually(|| decisions.denials().contains_key("panics")).await,
        "panics was not abandoned: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert_eq!(
        ids(&dead),
        ["destructive-error", "panics"],
        "a failed destructive step is dead-lettered, not retried; a poison message after the cap"
    );
    assert_eq!(decisions.denials()["panics"], [Reason::Abandoned]);
    assert_eq!(
        runs.lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == "panics")
            .count(),
        most,
        "never run past the cap"
    );
    let runs = runs.lock().unwrap().clone();
    for id in ["requeue-once", "retried-error", "panics"] {
        let mine: Vec<_> = runs.iter().filter(|r| r.0 == id).collect();
        assert!(
            mine.iter().all(|r| r.1 == mine[0].1),
            "{id} keeps its use number"
        );
        assert!(
            mine[1..].iter().all(|r| r.2),
            "{id} reruns take over the lease"
        );
    }
    // Failures: four runs of `panics`, the first of `retried-error`, `destructive-error`.
    assert_eq!(stats.handler_failures, most as u64 + 2, "{stats:?}");
    // Each run counts, reruns included: 4 + 2 + 2 + 1 + 1.
    assert_eq!(stats.handled, most as u64 + 6, "{stats:?}");
    assert_eq!(stats.denied, 1, "only the cap's abandoned: {stats:?}");
    // Requeued after each failure of `panics`, and once each for the other two.
    assert_eq!(stats.requeued, most as u64 + 2, "{stats:?}");
    assert_eq!(decisions.denials().len(), 1, "{:?}", decisions.denials());
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_handler_failures_are_dead_lettered_and_consuming_goes_on() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "deadletter").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "*", "write", 10);
    let runs: Seen = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                let id = m.authorized.message_id.clone();
                runs.lock()
                    .unwrap()
                    .push((id.clone(), m.authorized.use_number, false));
                match id.as_str() {
                    "fails" => Err::<Disposition, HandlerError>("boom".into()),
                    "panics" => panic!("on purpose"),
                    "rejects" => Ok(Disposition::Reject),
                    _ => Ok(Disposition::Ack),
                }
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[("tool.a", ActionClass::Write)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(1);
    let ledger = Arc::new(MemoryLedger::new());
    let worker = Worker::start(config, ledger.clone(), handler, &decisions).await;
    for id in ["fails", "panics", "rejects", "fine"] {
        q.publish(env.as_bytes(), "tool.a", ActionClass::Write, id)
            .await;
    }
    assert!(eventually(|| runs.lock().unwrap().len() == 4).await);
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert_eq!(ids(&dead), ["fails", "panics", "rejects"]);
    assert_eq!(runs.lock().unwrap().len(), 4, "each ran exactly once");
    assert_eq!(stats.handler_failures, 2);
    assert_eq!((stats.handled, stats.requeued), (4, 0), "{stats:?}");
    let allowed = decisions.all();
    assert_eq!(allowed.len(), 4, "{allowed:?}");
    assert!(allowed.iter().all(|d| d.allowed));
    // A handler that asked to reject is done: its use is completed before the message is
    // dead-lettered, as an ack's is. A failure is not: its use stays in flight until its
    // lease lapses.
    let states: Vec<(String, UseState)> = ledger
        .usage(env.cti())
        .messages
        .into_iter()
        .map(|m| (m.message_id, m.state))
        .collect();
    assert_eq!(
        states,
        [
            ("fails".to_owned(), UseState::InFlight),
            ("panics".to_owned(), UseState::InFlight),
            ("rejects".to_owned(), UseState::Completed),
            ("fine".to_owned(), UseState::Completed),
        ]
    );
    q.delete().await;
}
