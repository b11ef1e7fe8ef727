//! The broker restarts (rabbitmqctl stop_app / start_app) while a worker consumes: the worker
//! recovers, and no message is lost or run twice. Its own test binary, so nothing else in it
//! uses the broker meanwhile; a guard starts the broker again even if the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::RedbLedger;
use laissez_verify::{ActionClass, Reason};

fn rabbitmqctl(arg: &str) -> bool {
    Command::new("rabbitmqctl")
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Starts the broker's application again when dropped, whatever happened.
struct StartAgain;

impl Drop for StartAgain {
    fn drop(&mut self) {
        rabbitmqctl("start_app");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_nothing_and_runs_nothing_twice() {
    const N: usize = 100;
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let connection = connect().await;
    let q = Queue::declare(&connection, "restart").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "write", N as u64);
    for i in 0..N {
        q.publish(
            env.as_bytes(),
            "crm.update",
            ActionClass::Write,
            &format!("m{i:03}"),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(RedbLedger::open(dir.path().join("uses.redb")).unwrap());
    let runs: Arc<Mutex<Runs>> = Arc::default();
    // After 20 messages, handlers hold their message until the broker is back: the restart
    // happens with messages in flight and others prefetched.
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            let mut gate = gate_rx.clone();
            async move {
                let n = {
                    let mut runs = runs.lock().unwrap();
                    let id = m.authorized.message_id.clone();
                    *runs.count.entry(id.clone()).or_default() += 1;
                    runs.order.push(id);
                    runs.count.len()
                };
                if n > 20 {
                    let _ = gate.wait_for(|open| *open).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.update", ActionClass::Write)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .prefetch(10)
        .retry_delays(Duration::from_millis(100), Duration::from_secs(1));
    let worker = Worker::start(config.clone(), ledger.clone(), handler.clone(), &decisions).await;
    drop(connection);

    assert!(
        eventually(|| runs.lock().unwrap().count.len() > 20).await,
        "no progress before restart"
    );
    let guard = StartAgain;
    assert!(rabbitmqctl("stop_app"), "rabbitmqctl stop_app failed");
    // Every message past the 20th that has started waits at the gate: its channel died under
    // it, so its ack is lost, and its redelivered copy must be dead-lettered as replayed.
    let held: BTreeSet<String> = runs.lock().unwrap().order[20..].iter().cloned().collect();
    let ran_while_down = runs.lock().unwrap().count.len();
    tokio::time::sleep(Duration::from_secs(2)).await; // The broker stays down a while.
    assert!(rabbitmqctl("start_app"), "rabbitmqctl start_app failed");
    drop(guard);
    gate.send(true).unwrap();

    let all_ran = eventually(|| runs.lock().unwrap().count.len() == N).await;
    let all_held_replayed = eventually(|| {
        let denials = decisions.denials();
        held.iter().all(|id| denials.contains_key(id))
    })
    .await;
    let mut stats = vec![worker.stop().await];
    let connection = connect().await;
    let q = Queue {
        channel: connection.create_channel().await.unwrap(),
        ..q
    };
    // Copies the restart redelivered may still be queued (a copy of a held message comes back
    // while its use is in flight): run them through a worker until, once it has stopped, the
    // queue holds nothing. Each copy is decided once.
    loop {
        let ready = q.ready_after_stop().await;
        if ready == 0 {
            break;
        }
        let before = decisions.all().len();
        let worker =
            Worker::start(config.clone(), ledger.clone(), handler.clone(), &decisions).await;
        assert!(
            eventually(|| decisions.all().len() >= before + ready as usize).await,
            "{ready} copies left in the queue were not decided"
        );
        stats.push(worker.stop().await);
    }
    let dead = q.drain_after_stop().await;
    let runs = runs.lock().unwrap().count.clone();
    assert!(
        all_ran,
        "lost messages: ran {} of {N} ({ran_while_down} before the restart)",
        runs.len()
    );
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ran twice: {twice:?}");
    // A message that ran while its channel died is redelivered, found completed, and
    // dead-lettered as replayed: exactly those land there, once each, and no other denial.
    assert!(
        all_held_replayed,
        "held: {held:?}, denials: {:?}",
        decisions.denials()
    );
    assert!(!held.is_empty(), "no message was in flight at the restart");
    let dead_ids = ids(&dead);
    let denials = decisions.denials();
    let mut replayed: Vec<String> = Vec::new();
    for (id, reasons) in &denials {
        assert!(
            reasons.iter().all(|r| *r == Reason::Replayed),
            "{id}: {reasons:?}"
        );
        replayed.extend(reasons.iter().map(|_| id.clone()));
    }
    assert_eq!(
        dead_ids, replayed,
        "the dead letters are the replayed copies"
    );
    let dead_set: BTreeSet<String> = dead_ids.iter().cloned().collect();
    assert_eq!(
        dead_set.len(),
        dead_ids.len(),
        "one replayed copy each: {dead_ids:?}"
    );
    for id in &held {
        assert!(
            dead_set.contains(id),
            "{id} was held at the restart: {dead_ids:?}"
        );
    }
    for id in &dead_ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "{id} was dead-lettered without running once"
        );
    }
    let received: u64 = stats.iter().map(|s| s.received).sum();
    let denied: u64 = stats.iter().map(|s| s.denied).sum();
    assert!(
        received > N as u64,
        "no redelivery: did the broker restart? {stats:?}"
    );
    assert_eq!(denied, dead.len() as u64, "{stats:?}");
    assert_eq!(ledger.usage_blocking(env.cti()).unwrap().granted, N as u64);
    eprintln!(
        "restart: {stats:?}, {} replayed copies dead-lettered ({} held at the gate)",
        dead.len(),
        held.len()
    );
    q.delete().await;
}

/// What ran: how often each message id, and the order they started in.
#[derive(Default)]
struct Runs {
    count: BTreeMap<String, usize>,
    order: Vec<String>,
}
