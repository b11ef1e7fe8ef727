//! Requeueing without holding the worker, on the real broker. Twenty duplicates of a message
//! whose use is in flight (its first copy held in the handler) arrive at a worker with a small
//! prefetch: they must not take the worker's slots while they wait. With a retry queue they
//! wait there (per-message TTL, dead-lettered back); without one they go to the back of the
//! work queue. Either way every other message is consumed while the first copy is still held,
//! the held message runs once, and each duplicate ends in the dead-letter queue as `replayed`:
//! nothing lost, nothing run twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::MemoryLedger;
use laissez_verify::{ActionClass, Reason};

const DUPLICATES: usize = 20;
const OTHERS: usize = 10;

async fn duplicates_of_an_in_flight_message(with_retry_queue: bool) {
    let connection = connect().await;
    let q = Queue::declare(&connection, "duplicates").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "crm.*", "write", 100);
    let runs: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let held = Arc::new(AtomicBool::new(false));
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let handler = {
        let runs = runs.clone();
        let held = held.clone();
        move |m: Message| {
            let runs = runs.clone();
            let held = held.clone();
            let mut gate = gate_rx.clone();
            async move {
                let id = m.authorized.message_id.clone();
                *runs.lock().unwrap().entry(id.clone()).or_default() += 1;
                if id == "held" {
                    held.store(true, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    held.store(false, Ordering::SeqCst);
                }
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.update", ActionClass::Write)]);
    let mut config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .prefetch(3)
        .retry_delays(Duration::from_millis(100), Duration::from_secs(1));
    if with_retry_queue {
        config = config.retry_queue(&q.topology.retry_queue);
    }
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    let publish = |id: String| {
        let q = &q;
        let env = &env;
        async move {
            q.publish(env.as_bytes(), "crm.update", ActionClass::Write, &id)
                .await
        }
    };
    publish("held".into()).await;
    assert!(
        eventually(|| held.load(Ordering::SeqCst)).await,
        "the first copy never ran"
    );
    for _ in 0..DUPLICATES {
        publish("held".into()).await;
    }
    for i in 0..OTHERS {
        publish(format!("other-{i}")).await;
    }
    // The positive condition: every other message ran while the first copy is still held.
    let others_ran_while_held = eventually(|| {
        let runs = runs.lock().unwrap();
        held.load(Ordering::SeqCst)
            && (0..OTHERS).all(|i| runs.get(&format!("other-{i}")) == Some(&1))
    })
    .await;
    assert!(
        others_ran_while_held,
        "duplicates of an in-flight message held up the others: {:?}",
        runs.lock().unwrap()
    );
    assert!(held.load(Ordering::SeqCst), "the first copy is still held");
    gate.send(true).unwrap();
    // Every duplicate decided, the worker stops, and the queues are drained: no copy is left
    // behind in the work queue or the retry queue, and the counts are final.
    assert!(
        eventually(|| decisions.denials().get("held").map(Vec::len) == Some(DUPLICATES)).await,
        "denials: {:?}",
        decisions.denials()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1 + OTHERS, "{runs:?}");
    assert!(runs.values().all(|&n| n == 1), "ran twice: {runs:?}");
    assert_eq!(dead.len(), DUPLICATES);
    assert!(dead.iter().all(|(id, _)| id == "held"), "{dead:?}");
    let denials = decisions.denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials["held"], vec![Reason::Replayed; DUPLICATES]);
    assert_eq!(decisions.all().len(), 1 + OTHERS + DUPLICATES);
    assert!(stats.requeued >= DUPLICATES as u64, "{stats:?}");
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_wait_in_the_retry_queue_not_in_the_worker() {
    duplicates_of_an_in_flight_message(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retry_queue_duplicates_go_to_the_back_of_the_queue() {
    duplicates_of_an_in_flight_message(false).await;
}
