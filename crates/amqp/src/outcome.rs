//! What becomes of an allowed message once its handler returned: complete then settle on
//! success; release then requeue when asked; dead-letter (or requeue, when so configured and
//! not destructive) on failure.

use std::time::Duration;

use laissez_ledger::UseLedger;
use laissez_verify::ActionClass;
use lapin::{Acker, BasicProperties};
use tokio::sync::watch;

use crate::config::OnHandlerError;
use crate::handler::Disposition;
use crate::process::{Held, release};
use crate::settle::{Broker, Settlement, settle};
use crate::shared::{Counters, Shared};
use crate::telemetry::{self, LedgerOp, RequeueCause};

/// Applies the handler's outcome: complete then settle on success; release then requeue when
/// asked; dead-letter (or requeue, when so configured and not destructive) on failure.
pub(crate) async fn after_handler<L: UseLedger, H>(
    shared: &Shared<L, H>,
    broker: &Broker,
    acker: &Acker,
    held: Held,
    outcome: Result<Disposition, String>,
    kept: Option<(BasicProperties, Vec<u8>)>,
    stop: &watch::Receiver<bool>,
) {
    let id = held.message_id.as_str();
    match outcome {
        Ok(Disposition::Ack) => {
            complete(shared, &held).await;
            settle(broker, acker, id, Settlement::Ack).await;
        }
        Ok(Disposition::Reject) => {
            complete(shared, &held).await;
            settle(broker, acker, id, Settlement::DeadLetter).await;
        }
        Ok(Disposition::Requeue { after }) => {
            let requeue = Requeue {
                after,
                kept,
                cause: RequeueCause::Handler,
            };
            requeue_after(shared, broker, acker, &held, requeue, stop).await;
        }
        Err(error) => {
            Counters::bump(&shared.counters.handler_failures);
            shared.meters.handler_failed();
            let cti = hex::encode(held.cti);
            match shared.config.on_handler_error {
                OnHandlerError::Requeue { after } if held.class != ActionClass::Destructive => {
                    tracing::warn!(message_id = ?id, cti, error = ?error, "laissez: handler failed, requeueing");
                    let requeue = Requeue {
                        after,
                        kept,
                        cause: RequeueCause::HandlerFailed,
                    };
                    requeue_after(shared, broker, acker, &held, requeue, stop).await;
                }
                _ => {
                    tracing::warn!(message_id = ?id, cti, error = ?error, "laissez: handler failed, dead-lettering");
                    settle(broker, acker, id, Settlement::DeadLetter).await;
                }
            }
        }
    }
}

/// The handler asked for the message back after `after` (or failed, and requeueing is
/// configured). With a retry queue: release the lease and let the broker hold the copy.
/// Without one the worker holds the message for `after`, as the handler asked, then releases
/// and requeues it.
async fn requeue_after<L: UseLedger, H>(
    shared: &Shared<L, H>,
    broker: &Broker,
    acker: &Acker,
    held: &Held,
    requeue: Requeue,
    stop: &watch::Receiver<bool>,
) {
    let Requeue { after, kept, cause } = requeue;
    shared.count_requeue(cause);
    let id = held.message_id.as_str();
    match kept {
        Some((properties, body)) => {
            release(shared, held).await;
            let later = Settlement::Later {
                delay: after,
                properties: &properties,
                body: &body,
            };
            settle(broker, acker, id, later).await;
        }
        None => {
            wait(after, stop).await;
            release(shared, held).await;
            settle(broker, acker, id, Settlement::Requeue).await;
        }
    }
}

async fn complete<L: UseLedger, H>(shared: &Shared<L, H>, held: &Held) {
    // Completed before the ack: a crash between the two leaves a message that ran and will be
    // redelivered as `replayed` (dead-lettered), never run twice.
    if let Err(error) = shared
        .ledger
        .complete(&held.cti, &held.message_id, &held.lease)
        .await
    {
        telemetry::ledger_error(LedgerOp::Complete, &error);
        tracing::warn!(error = ?error.to_string(), message_id = ?held.message_id, cti = hex::encode(held.cti), "laissez: could not complete the use; it stays in flight until its lease lapses");
    }
}

/// A message the handler's outcome sends back: after how long, the copy to republish (with a
/// retry queue), and why.
struct Requeue {
    after: Duration,
    kept: Option<(BasicProperties, Vec<u8>)>,
    cause: RequeueCause,
}

/// Sleeps for `delay`, or less if the consumer is stopping.
async fn wait(delay: Duration, stop: &watch::Receiver<bool>) {
    if delay.is_zero() || *stop.borrow() {
        return;
    }
    let mut stop = stop.clone();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
}
