//! Two workers sharing the Redis ledger on one queue: max_uses holds across them, and no
//! message id runs twice even when it is published twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::RedisLedger;
use laissez_verify::{ActionClass, Reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_redis_ledger_max_uses_holds() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "redis").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    const MAX: u64 = 5;
    let env = keys.envelope(&aud, "crm.*", "write", MAX);
    let seen: Arc<Mutex<Vec<(String, u64, usize)>>> = Arc::default();
    let decisions = Decisions::default();
    let mut workers = Vec::new();
    for w in 0..2 {
        let seen = seen.clone();
        let handler = move |m: Message| {
            let seen = seen.clone();
            async move {
                let a = &m.authorized;
                seen.lock()
                    .unwrap()
                    .push((a.message_id.clone(), a.use_number, w));
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        };
        // Each worker its own connection to Redis, as on separate machines.
        let ledger = Arc::new(RedisLedger::connect(&redis_url()).await.unwrap());
        let tools = catalogue(&[("crm.update", ActionClass::Write)]);
        let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
            .prefetch(8)
            .retry_delays(Duration::from_millis(50), Duration::from_millis(400));
        workers.push(Worker::start(config, ledger, handler, &decisions).await);
    }
    // 20 distinct messages, the first 8 of them published twice.
    for i in 0..20 {
        q.publish(
            env.as_bytes(),
            "crm.update",
            ActionClass::Write,
            &format!("m{i}"),
        )
        .await;
        if i < 8 {
            q.publish(
                env.as_bytes(),
                "crm.update",
                ActionClass::Write,
                &format!("m{i}"),
            )
            .await;
        }
    }
    // Every copy decided once (a copy of a message in flight on the other worker comes back
    // later and is decided then), the workers stop, and the queues are drained: final counts.
    assert!(
        eventually(|| decisions.all().len() == 28).await,
        "decisions: {:?}",
        decisions.all()
    );
    let mut stats = Vec::new();
    for w in workers {
        stats.push(w.stop().await);
    }
    let dead = q.drain_after_stop().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len() as u64,
        MAX,
        "exactly max_uses messages ran: {seen:?}"
    );
    let ran: BTreeSet<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ran.len() as u64, MAX, "no message id ran twice");
    let uses: BTreeSet<u64> = seen.iter().map(|s| s.1).collect();
    assert_eq!(uses, (1..=MAX).collect());
    assert_eq!(
        dead.len(),
        28 - MAX as usize,
        "every other copy was dead-lettered"
    );
    // Per message id: a copy that ran, and its other copies replayed; or every copy over
    // max_uses. Nothing else, and nothing else in the dead-letter queue.
    let denials = decisions.denials();
    for i in 0..20 {
        let id = format!("m{i}");
        let copies = if i < 8 { 2 } else { 1 };
        let dead_copies = dead.iter().filter(|(d, _)| *d == id).count();
        let want = if ran.contains(id.as_str()) {
            vec![Reason::Replayed; copies - 1]
        } else {
            vec![Reason::UsesExhausted; copies]
        };
        assert_eq!(dead_copies, want.len(), "{id}: {dead:?}");
        assert_eq!(
            denials.get(&id).cloned().unwrap_or_default(),
            want,
            "{id}: {denials:?}"
        );
    }
    let handled: u64 = stats.iter().map(|s| s.handled).sum();
    let denied: u64 = stats.iter().map(|s| s.denied).sum();
    assert_eq!((handled, denied), (MAX, 28 - MAX), "{stats:?}");
    q.delete().await;
}
