//! A quorum queue from `Topology::quorum` on the real broker: the middleware consumes it like a
//! classic one, denials are dead-lettered, and the explicit delivery limit makes the broker
//! dead-letter a message that keeps being requeued, always under its one use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, QueueKind, Topology};
use laissez_ledger::MemoryLedger;
use laissez_verify::{ActionClass, Reason};

const DELIVERY_LIMIT: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queue_with_a_delivery_limit() {
    let connection = connect().await;
    let topology = Topology::new(unique("quorum")).quorum(DELIVERY_LIMIT);
    assert_eq!(
        topology.kind,
        QueueKind::Quorum {
            delivery_limit: DELIVERY_LIMIT
        }
    );
    let q = Queue::declare_topology(&connection, topology).await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let env = keys.envelope(&aud, "crm.*", "read", 10);

    let runs: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                let a = &m.authorized;
                runs.lock()
                    .unwrap()
                    .push((a.message_id.clone(), a.use_number));
                Ok::<_, HandlerError>(match a.message_id.as_str() {
                    "keeps-requeueing" => Disposition::Requeue {
                        after: Duration::from_millis(50),
                    },
                    _ => Disposition::Ack,
                })
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[
        ("crm.read", ActionClass::Read),
        ("billing.pay", ActionClass::Read),
    ]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(4);
    let ledger = Arc::new(MemoryLedger::new());
    let worker = Worker::start(config, ledger.clone(), handler, &decisions).await;
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "ok")
        .await;
    q.publish(env.as_bytes(), "billing.pay", ActionClass::Read, "denied")
        .await;
    q.publish(
        env.as_bytes(),
        "crm.read",
        ActionClass::Read,
        "keeps-requeueing",
    )
    .await;

    let mut dead: Vec<String> = q
        .wait_dead_letters(2)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    dead.sort();
    let stats = worker.stop().await;
    assert_eq!(dead, ["denied", "keeps-requeueing"]);
    assert_eq!(decisions.denials()["denied"], [Reason::ToolNotGranted]);

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.iter().filter(|r| r.0 == "ok").count(), 1, "{runs:?}");
    let requeued: Vec<u64> = runs
        .iter()
        .filter(|r| r.0 == "keeps-requeueing")
        .map(|r| r.1)
        .collect();
    // The broker stops it after the limit; every run was under the same single use.
    assert!(
        !requeued.is_empty() && requeued.len() <= DELIVERY_LIMIT as usize + 1,
        "{runs:?}"
    );
    assert!(requeued.iter().all(|&n| n == requeued[0]), "{runs:?}");
    let cti = env.cti();
    assert_eq!(ledger.usage(cti).granted, 2, "ok and keeps-requeueing");
    assert_eq!(stats.denied, 1);
    q.delete().await;
}
