//! The gatekeeper alone, with no broker: what it answers is what the middleware does with a
//! delivery (the broker tests cover the middleware itself).

use laissez_ledger::MemoryLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_verify::Reason;
use laissez_verify::owned::OwnedCatalogue;

use super::*;
use crate::config::OnHandlerError;
use crate::headers::{EnvelopeEncoding, tool_call_properties};

const QUEUE: &str = "gatekeeper-q";

struct Worker {
    gate: Gatekeeper<MemoryLedger>,
    key: SecretKey,
}

fn worker(lease: Duration, on_error: OnHandlerError) -> Worker {
    let key = SecretKey::from_seed(&[7; 32]).unwrap();
    let tools = OwnedCatalogue::new()
        .with("crm.ticket.close", ActionClass::Write)
        .unwrap()
        .with("crm.ticket.delete", ActionClass::Destructive)
        .unwrap();
    let config = ConsumerConfig::new(QUEUE, QUEUE, vec![key.public_key()], tools)
        .lease(lease)
        .on_handler_error(on_error)
        .require_approval(parse_classes("destructive").unwrap());
    let gate = Gatekeeper::new(config, Arc::new(MemoryLedger::new())).unwrap();
    Worker { gate, key }
}

impl Worker {
    /// A call of `tool` with message id `id` under an envelope granting every class.
    fn call(&self, tool: &str, id: &str) -> BasicProperties {
        let envelope = EnvelopeBuilder::new("agent-g")
            .audience(QUEUE)
            .tool("crm.*")
            .classes(parse_classes("read+write+destructive").unwrap())
            .max_uses(3)
            .session("task-9")
            .sign(&self.key)
            .unwrap();
        let bytes = envelope.as_bytes();
        tool_call_properties(bytes, tool, None, id, None, EnvelopeEncoding::Bytes)
    }

    async fn run(&self, properties: &BasicProperties) -> Ticket<'_, MemoryLedger> {
        match self.gate.admit(properties, b"{}").await {
            Entry::Run(ticket) => *ticket,
            other => panic!("not run: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_allowed_call_runs_once_and_its_redelivery_is_replayed() {
    let w = worker(Duration::from_secs(60), OnHandlerError::DeadLetter);
    let call = w.call("crm.ticket.close", "m-1");
    let ticket = w.run(&call).await;
    assert!(ticket.decision().allowed && ticket.decision().use_number == Some(1));
    let authorized = ticket.authorized();
    assert_eq!(
        (authorized.agent.as_str(), authorized.tool.as_str()),
        ("agent-g", "crm.ticket.close")
    );
    assert_eq!(authorized.session.as_deref(), Some("task-9"));
    assert_eq!(authorized.class, ActionClass::Write);
    assert_eq!(ticket.finish(Ok(Disposition::Ack)).await, Settle::Ack);
    let Entry::Refuse(replayed) = w.gate.admit(&call, b"{}").await else {
        panic!("a redelivery of a completed call is refused");
    };
    assert_eq!(
        (replayed.allowed, replayed.reason),
        (false, Some(Reason::Replayed))
    );
    let stats = w.gate.stats();
    assert_eq!((stats.received, stats.handled, stats.denied), (2, 1, 1));
}

#[tokio::test]
async fn refusals_are_decisions_and_approval_required_is_parked() {
    let w = worker(Duration::from_secs(60), OnHandlerError::DeadLetter);
    let Entry::Refuse(unknown) = w.gate.admit(&w.call("crm.ticket.open", "m-2"), b"{}").await
    else {
        panic!("a tool the catalogue does not list is refused");
    };
    assert_eq!(
        (unknown.reason, unknown.outcome),
        (Some(Reason::UnknownTool), None)
    );
    let Entry::Refuse(parked) = w
        .gate
        .admit(&w.call("crm.ticket.delete", "m-3"), b"{}")
        .await
    else {
        panic!("a destructive call without approval is refused");
    };
    assert_eq!(
        (parked.reason, parked.outcome),
        (Some(Reason::ApprovalRequired), Some(Outcome::Parked))
    );
    let stats = w.gate.stats();
    assert_eq!((stats.denied, stats.parked, stats.handled), (1, 1, 0));
}

#[tokio::test]
async fn a_held_use_is_in_flight_with_the_middlewares_backoff_then_taken_over_once_dropped() {
    let w = worker(Duration::from_millis(300), OnHandlerError::DeadLetter);
    let call = w.call("crm.ticket.close", "m-4");
    let ticket = w.run(&call).await;
    for after in [250, 500] {
        let Entry::Retry { after: got, cause } = w.gate.admit(&call, b"{}").await else {
            panic!("a use held elsewhere is retried, never run nor refused");
        };
        assert_eq!(
            (got, cause),
            (Duration::from_millis(after), RequeueCause::InFlight)
        );
    }
    // A worker that dies leaves its ticket unfinished: the lease lapses, the redelivery runs
    // under the same use.
    drop(ticket);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = w.run(&call).await;
    assert_eq!(
        (again.authorized().use_number, again.authorized().taken_over),
        (1, true)
    );
    assert_eq!(again.finish(Ok(Disposition::Ack)).await, Settle::Ack);
}

#[tokio::test]
async fn a_failure_requeues_when_so_configured_and_the_use_goes_back() {
    let later = OnHandlerError::Requeue {
        after: Duration::from_secs(3),
    };
    let w = worker(Duration::from_secs(60), later);
    let call = w.call("crm.ticket.close", "m-5");
    let failed = w.run(&call).await.finish(Err("boom".into())).await;
    assert_eq!(
        failed,
        Settle::Requeue {
            after: Duration::from_secs(3)
        }
    );
    // The lease was released: the redelivery runs at once, under the same use.
    let again = w.run(&call).await;
    assert_eq!(
        (again.authorized().use_number, again.authorized().taken_over),
        (1, true)
    );
    assert_eq!(
        again.finish(Ok(Disposition::Reject)).await,
        Settle::DeadLetter
    );
    assert_eq!(w.gate.stats().handler_failures, 1);
}
