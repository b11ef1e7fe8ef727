//! The broker restarts (rabbitmqctl stop_app / start_app) while a worker consumes: the worker
//! recovers, and no message is lost or run twice. Its own test binary, so nothing else in it
//! uses the broker meanwhile; a guard starts the broker again even if the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
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
    let runs: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
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
                    *runs.entry(m.authorized.message_id.clone()).or_default() += 1;
                    runs.len()
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
    let worker = Worker::start(config, ledger.clone(), handler, &decisions).await;
    drop(connection);

    assert!(
        eventually(|| runs.lock().unwrap().len() > 20).await,
        "no progress before restart"
    );
    let guard = StartAgain;
    assert!(rabbitmqctl("stop_app"), "rabbitmqctl stop_app failed");
    let ran_while_down = runs.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rabbitmqctl("start_app"), "rabbitmqctl start_app failed");
    drop(guard);
    gate.send(true).unwrap();

    let all_ran = eventually(|| runs.lock().unwrap().len() == N).await;
    // Let any redelivered copy settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = worker.stop().await;
    let connection = connect().await;
    let q = Queue {
        channel: connection.create_channel().await.unwrap(),
        ..q
    };
    let dead = q.take_dead_letters().await;
    let runs = runs.lock().unwrap().clone();
    assert!(
        all_ran,
        "lost messages: ran {} of {N} ({ran_while_down} before the restart)",
        runs.len()
    );
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ran twice: {twice:?}");
    // A message that ran while its channel died is redelivered, found completed, and
    // dead-lettered as replayed: it ran once, and nothing else lands there.
    let denials = decisions.denials();
    for (id, _) in &dead {
        assert!(
            runs.contains_key(id),
            "{id} was dead-lettered without running"
        );
        assert!(
            denials
                .get(id)
                .is_some_and(|r| r.iter().all(|r| *r == Reason::Replayed)),
            "{id}: {denials:?}"
        );
    }
    assert!(
        stats.received > N as u64,
        "no redelivery: did the broker restart? {stats:?}"
    );
    assert_eq!(ledger.usage_blocking(env.cti()).unwrap().granted, N as u64);
    eprintln!(
        "restart: {stats:?}, {} replayed copies dead-lettered",
        dead.len()
    );
    q.delete().await;
}
