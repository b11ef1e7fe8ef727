//! What becomes of an allowed message once its handler returned: complete then settle on
//! success; release then requeue when asked; dead-letter (or requeue, when so configured and
//! not destructive) on failure.

use std::time::Duration;

use laissez_ledger::{HeldUse, UseLedger};
use laissez_verify::ActionClass;
use lapin::BasicProperties;
use tokio::sync::watch;

use crate::config::OnHandlerError;
use crate::handler::Disposition;
use crate::settle::{Settlement, Settling, settle};
use crate::shared::{Counters, Shared};
use crate::telemetry::{self, LedgerOp, RequeueCause};

/// What becomes of an allowed delivery once its handler returned: decided by [`plan`] from
/// the outcome alone, carried out by [`after_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Complete the use, then ack.
    CompleteAck,
    /// Complete the use (the handler ran and refused the message), then dead-letter.
    CompleteDeadLetter,
    /// Release the use and bring the message back after this long.
    Requeue(Duration, RequeueCause),
    /// The handler failed: dead-letter; the use stays in flight until its lease lapses.
    DeadLetter,
}

/// The plan for a handler's `outcome`, under the worker's `on_error` for a call of `class`:
/// pure. A failed destructive call is never requeued (it may have run in part).
pub(crate) fn plan(
    outcome: &Result<Disposition, String>,
    on_error: OnHandlerError,
    class: ActionClass,
) -> Plan {
    match outcome {
        Ok(Disposition::Ack) => Plan::CompleteAck,
        Ok(Disposition::Reject) => Plan::CompleteDeadLetter,
        Ok(Disposition::Requeue { after }) => Plan::Requeue(*after, RequeueCause::Handler),
        Err(_) => match on_error {
            OnHandlerError::Requeue { after } if class != ActionClass::Destructive => {
                Plan::Requeue(after, RequeueCause::HandlerFailed)
            }
            _ => Plan::DeadLetter,
        },
    }
}

/// Carries out the [`plan`] for the handler's outcome: complete then settle on success;
/// release then requeue when asked; dead-letter (or requeue, when so configured and not
/// destructive) on failure.
pub(crate) async fn after_handler<L: UseLedger, H>(
    here: &Settling<'_, L, H>,
    held: HeldUse<'_, L>,
    class: ActionClass,
    outcome: Result<Disposition, String>,
    kept: Option<(BasicProperties, Vec<u8>)>,
) {
    let Settling {
        shared,
        broker,
        acker,
        ..
    } = *here;
    let id = held.message_id().to_owned();
    let planned = plan(&outcome, shared.config.on_handler_error, class);
    count_failure(shared, &held, &outcome, planned);
    match planned {
        Plan::CompleteAck => {
            complete(held).await;
            settle(broker, acker, &id, Settlement::Ack).await;
        }
        Plan::CompleteDeadLetter => {
            complete(held).await;
            settle(broker, acker, &id, Settlement::DeadLetter).await;
        }
        Plan::Requeue(after, cause) => {
            let requeue = Requeue { after, kept, cause };
            requeue_after(here, held, requeue).await;
        }
        Plan::DeadLetter => settle(broker, acker, &id, Settlement::DeadLetter).await,
    }
}

/// A failed handler's count, metric and warning, naming what its `planned` settlement is.
pub(crate) fn count_failure<L: UseLedger, H>(
    shared: &Shared<L, H>,
    held: &HeldUse<'_, L>,
    outcome: &Result<Disposition, String>,
    planned: Plan,
) {
    if let Err(error) = outcome {
        Counters::bump(&shared.counters.handler_failures);
        shared.meters.handler_failed();
        let then = match planned {
            Plan::DeadLetter => "dead-lettering",
            _ => "requeueing",
        };
        let cti = hex::encode(held.cti());
        tracing::warn!(message_id = ?held.message_id(), cti, error = ?error, "laissez: handler failed, {then}");
    }
}

/// The handler asked for the message back after `after` (or failed, and requeueing is
/// configured). With a retry queue: release the lease and let the broker hold the copy.
/// Without one the worker holds the message for `after`, as the handler asked, then releases
/// and requeues it.
async fn requeue_after<L: UseLedger, H>(
    here: &Settling<'_, L, H>,
    held: HeldUse<'_, L>,
    requeue: Requeue,
) {
    let Settling {
        shared,
        broker,
        acker,
        stop,
    } = *here;
    let Requeue { after, kept, cause } = requeue;
    shared.count_requeue(cause);
    let id = held.message_id().to_owned();
    let id = id.as_str();
    match kept {
        Some((properties, body)) => {
            release(held).await;
            let later = Settlement::Later {
                delay: after,
                properties: &properties,
                body: &body,
            };
            settle(broker, acker, id, later).await;
        }
        None => {
            wait(after, stop).await;
            release(held).await;
            settle(broker, acker, id, Settlement::Requeue).await;
        }
    }
}

/// Gives the use back: a redelivery runs at once under it.
pub(crate) async fn release<L: UseLedger>(held: HeldUse<'_, L>) {
    let message_id = held.message_id().to_owned();
    let cti = hex::encode(held.cti());
    if let Err(error) = held.release().await {
        telemetry::ledger_error(LedgerOp::Release, &error);
        tracing::warn!(error = ?error.to_string(), message_id = ?message_id, cti, "laissez: could not release the lease; a redelivery waits for it to lapse");
    }
}

pub(crate) async fn complete<L: UseLedger>(held: HeldUse<'_, L>) {
    // Completed before the ack: a crash between the two leaves a message that ran and will be
    // redelivered as `replayed` (dead-lettered), never run twice.
    let message_id = held.message_id().to_owned();
    let cti = hex::encode(held.cti());
    if let Err(error) = held.complete().await {
        telemetry::ledger_error(LedgerOp::Complete, &error);
        tracing::warn!(error = ?error.to_string(), message_id = ?message_id, cti, "laissez: could not complete the use; it stays in flight until its lease lapses");
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

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: OnHandlerError = OnHandlerError::Requeue {
        after: Duration::from_secs(7),
    };

    #[test]
    fn each_outcome_has_its_plan() {
        let read = ActionClass::Read;
        assert_eq!(plan(&Ok(Disposition::Ack), LATER, read), Plan::CompleteAck);
        assert_eq!(
            plan(&Ok(Disposition::Reject), LATER, read),
            Plan::CompleteDeadLetter
        );
        let after = Duration::from_secs(3);
        assert_eq!(
            plan(
                &Ok(Disposition::Requeue { after }),
                OnHandlerError::DeadLetter,
                read
            ),
            Plan::Requeue(after, RequeueCause::Handler)
        );
        assert_eq!(
            plan(&Err("boom".into()), LATER, read),
            Plan::Requeue(Duration::from_secs(7), RequeueCause::HandlerFailed)
        );
        assert_eq!(
            plan(&Err("boom".into()), OnHandlerError::DeadLetter, read),
            Plan::DeadLetter
        );
    }

    #[test]
    fn a_failed_destructive_call_is_never_requeued() {
        assert_eq!(
            plan(&Err("boom".into()), LATER, ActionClass::Destructive),
            Plan::DeadLetter
        );
    }
}
