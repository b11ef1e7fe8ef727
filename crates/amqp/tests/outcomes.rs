//! The handler's outcome (`docs/spec.md` §9, "Outcomes") on the real broker: the outcome
//! observer sees `handled` and `handler_failed` once per run, after the handler and with the
//! decision the decision observer saw; the error reaches it as the handler's own type; the
//! decision observer is still called once per message; the stop summary is one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{
    ConsumerConfig, Decision, Disposition, HandlerError, Message, Middleware, Outcome,
};
use laissez_ledger::MemoryLedger;
use laissez_verify::{ActionClass, Reason};

/// The handler's own error type, which the outcome observer gets back.
#[derive(Debug)]
struct Refused(u8);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused with code {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// What the outcome observer saw of one run.
type Seen = (Decision, Option<u8>, Duration);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_observer_sees_each_run_after_the_handler() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "outcomes").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "read", 3);
    let handler = |m: Message| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match m.authorized.message_id.as_str() {
            "m-fail" => Err(HandlerError::from(Refused(7))),
            _ => Ok(Disposition::Ack),
        }
    };
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.read", ActionClass::Read)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools).prefetch(1);
    let middleware = {
        let seen = seen.clone();
        Middleware::new(config, Arc::new(MemoryLedger::new()), handler)
            .on_decision(decisions.observer())
            .on_outcome(move |outcome| {
                let code = outcome
                    .error
                    .and_then(|e| e.downcast_ref::<Refused>())
                    .map(|r| r.0);
                seen.lock()
                    .unwrap()
                    .push((outcome.decision.clone(), code, outcome.took));
            })
    };
    let worker = Worker::start_middleware(middleware).await;
    for id in ["m-ok", "m-fail"] {
        q.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    q.publish(env.as_bytes(), "crm.export", ActionClass::Read, "m-unknown")
        .await;
    assert!(
        eventually(|| seen.lock().unwrap().len() == 2 && decisions.all().len() == 3).await,
        "{:?}",
        seen.lock().unwrap()
    );
    let stats = worker.stop().await;
    let seen = seen.lock().unwrap().clone();
    let (ok, code, took) = &seen[0];
    assert_eq!(ok.message_id.as_deref(), Some("m-ok"));
    assert_eq!(ok.outcome, Some(Outcome::Handled));
    assert!(ok.allowed);
    assert_eq!(ok.reason, None);
    assert_eq!(ok.error, None);
    assert_eq!(ok.use_number, Some(1));
    assert_eq!(*code, None);
    assert!(*took >= Duration::from_millis(100), "{took:?}");
    let (failed, code, _) = &seen[1];
    assert_eq!(failed.message_id.as_deref(), Some("m-fail"));
    assert_eq!(failed.outcome, Some(Outcome::HandlerFailed));
    assert_eq!(failed.reason, Some(Reason::HandlerFailed));
    assert_eq!(failed.error.as_deref(), Some("refused with code 7"));
    assert_eq!(*code, Some(7), "the handler's own error, downcast");
    // The decision observer: once per message, before the handler, without an outcome.
    let all = decisions.all();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|d| d.outcome.is_none()), "{all:?}");
    // The shutdown summary: one JSON object of the counts.
    let summary: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({
            "received": 3, "handled": 2, "denied": 1, "parked": 0, "requeued": 0,
            "handler_failures": 1
        })
    );
    q.delete().await;
}
