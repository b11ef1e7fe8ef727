//! The class is the worker's (`docs/spec.md` §9), on the real broker: a publisher cannot
//! relabel a destructive tool as write to slip it under a read+write grant. The worker's
//! catalogue gives every call its class; a tool it does not list is `unknown_tool`; a
//! `laissez-class` header that contradicts it is `malformed`. None of them runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::MemoryLedger;
use laissez_verify::{ActionClass, Reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relabelled_destructive_call_never_runs() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "relabel").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    // The agent holds the ticket tools for reading and writing, never destructive.
    let env = keys.envelope(&aud, "crm.ticket.*", "read+write", 10);
    let tools = catalogue(&[
        ("crm.ticket.read", ActionClass::Read),
        ("crm.ticket.update", ActionClass::Write),
        ("crm.ticket.delete", ActionClass::Destructive),
    ]);
    let ran: Arc<Mutex<Vec<(String, ActionClass)>>> = Arc::default();
    let handler = {
        let ran = ran.clone();
        move |m: Message| {
            let ran = ran.clone();
            async move {
                let a = &m.authorized;
                ran.lock().unwrap().push((a.message_id.clone(), a.class));
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(8);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    let delete = "crm.ticket.delete";
    // The attack: the publisher says the destructive tool is a write.
    q.publish(
        env.as_bytes(),
        delete,
        ActionClass::Write,
        "delete-as-write",
    )
    .await;
    // Without a label, or honestly labelled, the catalogue's class is not granted.
    q.publish_without_class(env.as_bytes(), delete, "delete-unlabelled")
        .await;
    q.publish(
        env.as_bytes(),
        delete,
        ActionClass::Destructive,
        "delete-labelled",
    )
    .await;
    // Inside the grant's pattern, but not a tool this worker runs.
    q.publish(
        env.as_bytes(),
        "crm.ticket.archive",
        ActionClass::Write,
        "unlisted",
    )
    .await;
    // The tools it does run, labelled or not: their class is the catalogue's.
    q.publish_without_class(env.as_bytes(), "crm.ticket.update", "update")
        .await;
    q.publish(env.as_bytes(), "crm.ticket.read", ActionClass::Read, "read")
        .await;

    let mut dead: Vec<String> = q
        .wait_dead_letters(4)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(eventually(|| ran.lock().unwrap().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.stop().await;
    dead.sort();
    assert_eq!(
        dead,
        [
            "delete-as-write",
            "delete-labelled",
            "delete-unlabelled",
            "unlisted"
        ]
    );
    let denials = decisions.denials();
    assert_eq!(denials["delete-as-write"], [Reason::Malformed]);
    assert_eq!(denials["delete-unlabelled"], [Reason::ClassNotGranted]);
    assert_eq!(denials["delete-labelled"], [Reason::ClassNotGranted]);
    assert_eq!(denials["unlisted"], [Reason::UnknownTool]);
    // Every decision reports the catalogue's class (none for an unlisted tool).
    for d in decisions.all() {
        let want = match d.message_id.as_deref().unwrap() {
            "unlisted" => None,
            "read" => Some(ActionClass::Read),
            "update" => Some(ActionClass::Write),
            _ => Some(ActionClass::Destructive),
        };
        assert_eq!(d.class, want, "{d:?}");
    }
    let mut ran = ran.lock().unwrap().clone();
    ran.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ran,
        [
            ("read".to_owned(), ActionClass::Read),
            ("update".to_owned(), ActionClass::Write)
        ],
        "only the calls whose catalogue class is granted ran"
    );
    q.delete().await;
}
