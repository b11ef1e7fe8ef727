//! Panics outside the handler's future, on the real broker: a handler whose `handle` panics
//! before returning its future, and a decision observer that panics. Neither may leave a
//! delivery unsettled (holding its prefetch slot until the channel closes) nor stop the
//! worker: the failed call is dead-lettered like any handler failure; an allowed message
//! whose observer panicked has not run, so its use is released and it runs on its return,
//! under the same use; a denial stands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Decision, Disposition, Handler, HandlerError, Message};
use laissez_ledger::MemoryLedger;
use laissez_verify::ActionClass;

type Runs = Arc<Mutex<Vec<(String, u64, bool)>>>;

/// Panics in `handle` itself, before any future exists, for the message `panics-early`.
struct PanicsWhileMakingItsFuture(Runs);

impl Handler for PanicsWhileMakingItsFuture {
    fn handle(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<Disposition, HandlerError>> + Send {
        let a = &message.authorized;
        assert_ne!(a.message_id, "panics-early", "panicking on purpose");
        self.0
            .lock()
            .unwrap()
            .push((a.message_id.clone(), a.use_number, a.taken_over));
        async { Ok(Disposition::Ack) }
    }
}

fn recording(runs: &Runs) -> impl Handler {
    let runs = runs.clone();
    move |m: Message| {
        let runs = runs.clone();
        async move {
            let a = &m.authorized;
            runs.lock()
                .unwrap()
                .push((a.message_id.clone(), a.use_number, a.taken_over));
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    }
}

fn tools() -> laissez_verify::owned::OwnedCatalogue {
    catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.write", ActionClass::Write),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_before_its_future_exists_is_dead_lettered() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "panic-early").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "crm.*", "read", 10);
    let runs: Runs = Arc::default();
    let decisions = Decisions::default();
    // Prefetch 1: an unsettled delivery would block everything behind it.
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools()).prefetch(1);
    let handler = PanicsWhileMakingItsFuture(runs.clone());
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    for id in ["panics-early", "after"] {
        q.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    assert!(eventually(|| runs.lock().unwrap().len() == 1 && decisions.all().len() == 2).await);
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert_eq!(ids(&dead), ["panics-early"]);
    assert_eq!(runs.lock().unwrap()[0].0, "after", "the worker went on");
    assert_eq!(stats.handler_failures, 1);
    assert_eq!(stats.handled, 2);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_observer_neither_runs_nor_loses_a_message() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "panic-observer").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "crm.*", "read", 10);
    let runs: Runs = Arc::default();
    let seen: Arc<Mutex<Vec<Decision>>> = Arc::default();
    let panicked_once = Arc::new(AtomicBool::new(false));
    let observer = {
        let seen = seen.clone();
        move |d: &Decision| {
            seen.lock().unwrap().push(d.clone());
            let id = d.message_id.as_deref().unwrap_or("");
            // Every denial, and the first time `observed` is allowed.
            if !d.allowed || (id == "observed" && !panicked_once.swap(true, Ordering::SeqCst)) {
                panic!("observer panics on purpose");
            }
        }
    };
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools())
        .prefetch(1)
        .retry_delays(Duration::from_millis(50), Duration::from_millis(200));
    let worker = Worker::start_observed(
        config,
        Arc::new(MemoryLedger::new()),
        recording(&runs),
        observer,
    )
    .await;
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "observed")
        .await;
    q.publish(env.as_bytes(), "crm.write", ActionClass::Write, "denied")
        .await;
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "after")
        .await;
    // Three messages, four decisions (`observed` twice): then stop and drain.
    assert!(
        eventually(|| runs.lock().unwrap().len() == 2 && seen.lock().unwrap().len() == 4).await
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert_eq!(ids(&dead), ["denied"], "the denial stands");
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    // `observed` did not run when its observer panicked; it came back and ran once, under the
    // use it was first granted, taking over the released lease.
    assert_eq!(
        runs,
        [
            ("after".to_owned(), 2, false),
            ("observed".to_owned(), 1, true)
        ]
    );
    let observed: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.message_id.as_deref() == Some("observed"))
        .map(|d| d.use_number.unwrap())
        .collect();
    assert_eq!(observed, [1, 1], "decided twice, under one use");
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "observed twice, denied and after once"
    );
    assert_eq!(stats.requeued, 1, "{stats:?}");
    assert_eq!((stats.handled, stats.denied), (2, 1), "{stats:?}");
    q.delete().await;
}
