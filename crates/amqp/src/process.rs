//! One delivery, in one direction: read the headers, ask the gate
//! ([`laissez_verify::Verifier::decide`]), hold the use in the ledger, run the handler, plan
//! what becomes of the delivery ([`crate::outcome::plan`]), settle. Every refusal on the way
//! is one verdict ([`crate::decide`]), reported by [`crate::gatekeeper::stopped`] (the steps a
//! [`crate::Gatekeeper`] takes too) and settled in one place.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use laissez_ledger::UseLedger;
use lapin::BasicProperties;
use lapin::message::Delivery;
use tokio::sync::watch;

use crate::admit::{Admission, admit};
use crate::decision::{Decision, Outcome};
use crate::gatekeeper::{Granted, Stopped, granted, stopped};
use crate::handler::{Disposition, Handler, HandlerError, HandlerOutcome, Message};
use crate::headers;
use crate::outcome::{after_handler, release};
use crate::settle::{Broker, Settlement, Settling, settle};
use crate::shared::{Counters, Shared};
use crate::telemetry::RequeueCause;

/// The parts of a delivery the handler gets.
struct Parts {
    properties: BasicProperties,
    body: Vec<u8>,
    routing_key: String,
    redelivered: bool,
}

pub(crate) async fn process<L: UseLedger, H: Handler>(
    shared: &Shared<L, H>,
    broker: &Broker,
    delivery: Delivery,
    received_at: Instant,
    stop: watch::Receiver<bool>,
) {
    let Delivery {
        properties,
        data,
        acker,
        routing_key,
        redelivered,
        ..
    } = delivery;
    let id = headers::message_id(&properties).unwrap_or("").to_owned();
    if *stop.borrow() {
        // Shutting down before this message started: hand it back untouched.
        shared.count_requeue(RequeueCause::Shutdown);
        settle(broker, &acker, &id, Settlement::Requeue).await;
        return;
    }
    if let Some(held) = &shared.config.revocations {
        // Fail closed (`docs/spec.md` §14): no message is decided while the revocation
        // follower is not ready; it waits here (holding its prefetch slot, so at most
        // `prefetch` wait), and is handed back untouched on shutdown.
        let mut stop = stop.clone();
        if !held.status().wait_ready(&mut stop).await {
            shared.count_requeue(RequeueCause::Shutdown);
            settle(broker, &acker, &id, Settlement::Requeue).await;
            return;
        }
    }
    let (admission, report) = admit(shared, &properties, &data, &acker).await;
    let here = Settling {
        shared,
        broker,
        acker: &acker,
        stop: &stop,
    };
    let facts = match admission {
        Admission::ChannelLost => return,
        Admission::Run(admitted) => {
            let granted = granted(shared, *admitted, report, received_at);
            let parts = Parts {
                properties,
                body: data,
                routing_key: routing_key.to_string(),
                redelivered,
            };
            run(&here, granted, parts).await;
            return;
        }
        Admission::Stopped(facts) => facts,
    };
    match stopped(shared, &facts, &report, received_at) {
        Stopped::Deny(decision) => deny(&here, &decision).await,
        Stopped::Retry { after, .. } => {
            let later = Settlement::Later {
                delay: after,
                properties: &properties,
                body: &data,
            };
            settle(broker, &acker, &id, later).await;
        }
    }
}

/// A denial (audited by [`stopped`]): the decision to the observer, dead-lettered.
async fn deny<L, H>(here: &Settling<'_, L, H>, decision: &Decision) {
    let Settling {
        shared,
        broker,
        acker,
        ..
    } = *here;
    let id = decision.message_id.as_deref().unwrap_or("");
    if !observe(shared, decision) {
        tracing::error!(message_id = ?id, "laissez: the decision observer panicked; the denial stands");
    }
    settle(broker, acker, id, Settlement::DeadLetter).await;
}

/// Calls the observer, if any; false when it panicked.
fn observe<L, H>(shared: &Shared<L, H>, decision: &Decision) -> bool {
    match &shared.observer {
        Some(observer) => std::panic::catch_unwind(AssertUnwindSafe(|| observer(decision))).is_ok(),
        None => true,
    }
}

/// An allowed message (audited by [`granted`]): observer, handler, then its outcome.
async fn run<L: UseLedger, H: Handler>(
    here: &Settling<'_, L, H>,
    granted: Granted<'_, L>,
    parts: Parts,
) {
    let Settling {
        shared,
        broker,
        acker,
        ..
    } = *here;
    let Granted {
        decision,
        authorized,
        held,
    } = granted;
    let class = authorized.class;
    if !observe(shared, &decision) {
        // Nothing ran: give the use back to this message and bring it back later.
        let message_id = &authorized.message_id;
        tracing::error!(message_id = ?message_id, "laissez: the decision observer panicked before the handler ran; releasing the use and requeueing");
        release(held).await;
        shared.count_requeue(RequeueCause::ObserverFailed);
        let delay = shared.next_retry_delay(format!("{}:{message_id}", authorized.cti_hex()));
        let later = Settlement::Later {
            delay,
            properties: &parts.properties,
            body: &parts.body,
        };
        settle(broker, acker, message_id, later).await;
        return;
    }
    Counters::bump(&shared.counters.handled);
    // A requeue through the retry queue republishes the message after the handler has it.
    let kept = broker
        .retry_queue
        .is_some()
        .then(|| (parts.properties.clone(), parts.body.clone()));
    let message = Message {
        authorized,
        body: parts.body,
        properties: parts.properties,
        routing_key: parts.routing_key,
        redelivered: parts.redelivered,
    };
    // A panic while making the future is the handler's failure as much as one inside it.
    let started = Instant::now();
    let result: Result<Disposition, HandlerError> =
        match std::panic::catch_unwind(AssertUnwindSafe(|| shared.handler.handle(message))) {
            Err(panic) => Err(panic_text(panic.as_ref()).into()),
            Ok(future) => match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result,
                Err(panic) => Err(panic_text(panic.as_ref()).into()),
            },
        };
    let took = started.elapsed();
    shared.meters.handler_ran(result.is_err(), took);
    report_outcome(shared, decision, &result, took);
    let outcome = result.map_err(|error| error.to_string());
    after_handler(here, held, class, outcome, kept).await;
}

/// The handler's outcome to the outcome observer, before the message is settled: `handled`,
/// or `handler_failed` with the error (`docs/spec.md` §9, "Outcomes").
fn report_outcome<L, H>(
    shared: &Shared<L, H>,
    mut decision: Decision,
    result: &Result<Disposition, HandlerError>,
    took: Duration,
) {
    let Some(observer) = &shared.outcome_observer else {
        return;
    };
    match result {
        Ok(_) => decision.outcome = Some(Outcome::Handled),
        Err(error) => {
            decision.outcome = Some(Outcome::HandlerFailed);
            decision.reason = Some(laissez_verify::Reason::HandlerFailed);
            decision.error = Some(error.to_string());
        }
    }
    let outcome = HandlerOutcome {
        decision: &decision,
        error: result.as_ref().err().map(|e| &**e as _),
        took,
    };
    if std::panic::catch_unwind(AssertUnwindSafe(|| observer(&outcome))).is_err() {
        // The handler has run: its outcome stands, and the message is settled as planned.
        tracing::error!(message_id = ?decision.message_id, "laissez: the outcome observer panicked");
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned());
    format!("handler panicked: {text}")
}
