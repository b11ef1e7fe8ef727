//! The ledger unreachable, on the real broker and the real Redis behind a cuttable TCP proxy,
//! or refusing writes (a Redis of the test's own with `min-replicas-to-write 1` and no
//! replica): a message that arrives meanwhile is requeued (through the retry queue), never run
//! and never denied, since the use cannot be spent; once the ledger is back it runs exactly
//! once (`docs/spec.md` §9, threat model ASI08).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::{RedisLedger, UseState};
use laissez_test_support::{CuttableProxy, ThrowawayRedis};
use laissez_verify::ActionClass;

/// Requeues seen while the ledger is cut before it is healed: the message came back that
/// many times and never ran.
const REQUEUES_WHILE_CUT: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_unreachable_requeues_never_runs_and_runs_once_when_back() {
    let proxy = CuttableProxy::to_redis().await;
    let ledger = redis_ledger_through(&proxy).await;
    let direct = RedisLedger::connect(&redis_url()).await.unwrap();
    requeued_while_down_then_runs_once("ledger-down", ledger, &direct, proxy.cut(), async {
        proxy.heal();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_refusing_writes_requeues_never_runs_and_runs_once_when_back() {
    let server = ThrowawayRedis::start(&["--min-replicas-to-write", "1"]);
    let ledger = Arc::new(RedisLedger::connect(&server.url()).await.unwrap());
    let direct = RedisLedger::connect(&server.url()).await.unwrap();
    let accept_writes = async {
        server.cli(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    };
    requeued_while_down_then_runs_once("ledger-refuses", ledger, &direct, async {}, accept_writes)
        .await;
}

/// Publishes one message once `down` has made `ledger` fail; checks it comes back
/// [`REQUEUES_WHILE_CUT`] times, never run nor denied, with nothing spent (read through
/// `direct`); then `back` heals the ledger and the message runs exactly once.
async fn requeued_while_down_then_runs_once(
    queue: &str,
    ledger: Arc<RedisLedger>,
    direct: &RedisLedger,
    down: impl std::future::Future<Output = ()>,
    back: impl std::future::Future<Output = ()>,
) {
    let connection = connect().await;
    let q = Queue::declare(&connection, queue).await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "write", 5);
    let runs: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let handler = {
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
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.update", ActionClass::Write)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .retry_queue(&q.topology.retry_queue)
        .retry_delays(Duration::from_millis(100), Duration::from_millis(400));
    let worker = Worker::start(config, ledger, handler, &decisions).await;

    down.await;
    q.publish(env.as_bytes(), "crm.update", ActionClass::Write, "m1")
        .await;
    assert!(
        eventually(|| worker.stats_now().requeued >= REQUEUES_WHILE_CUT).await,
        "the message did not come back while the ledger was down: {:?}",
        worker.stats_now()
    );
    // It came back that many times, and never ran nor was denied.
    let stats = worker.stats_now();
    assert_eq!((stats.handled, stats.denied), (0, 0), "{stats:?}");
    assert!(runs.lock().unwrap().is_empty());
    assert!(decisions.all().is_empty(), "{:?}", decisions.all());
    assert_eq!(q.counts(&q.topology.dead_letter_queue).await, (0, 0));
    let usage = direct.usage(env.cti()).await.unwrap();
    assert_eq!(usage.granted, 0, "nothing spent while unreachable");

    back.await;
    assert!(
        eventually(|| !decisions.all().is_empty()).await,
        "the message never ran after the ledger came back"
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(
        *runs.lock().unwrap(),
        [("m1".to_owned(), 1, false)],
        "once, under the first use"
    );
    let all = decisions.all();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].allowed);
    assert_eq!((stats.handled, stats.denied), (1, 0), "{stats:?}");
    assert!(stats.requeued >= REQUEUES_WHILE_CUT, "{stats:?}");
    let usage = direct.usage(env.cti()).await.unwrap();
    assert_eq!(usage.granted, 1);
    assert_eq!(usage.messages.len(), 1);
    assert_eq!(usage.messages[0].state, UseState::Completed);
    q.delete().await;
}
