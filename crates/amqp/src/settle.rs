//! The one place that acks, rejects, nacks and republishes deliveries.
//!
//! A message that must come back later ([`Settlement::Later`]) never holds the worker while it
//! waits: its copy is published first (mandatory, with publisher confirms) and the original is
//! acked only once the broker confirmed the copy, so the message is never lost; if the copy
//! cannot be placed, the original is requeued by the broker instead. Two copies can only
//! co-exist if the ack is lost after the confirm, and the ledger runs a message id once.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::ShortString;
use lapin::{Acker, BasicProperties, Channel};
use tokio::sync::watch;

use crate::confirm::publish_confirmed;
use crate::shared::Shared;

/// Where one delivery is settled: the worker, its broker side, the delivery's acker and the
/// stop signal. Passed whole to every step after the decision.
pub(crate) struct Settling<'a, L, H> {
    pub(crate) shared: &'a Shared<L, H>,
    pub(crate) broker: &'a Broker,
    pub(crate) acker: &'a Acker,
    pub(crate) stop: &'a watch::Receiver<bool>,
}

/// Where the middleware consumes and where it sends messages that come back later.
#[derive(Debug, Clone)]
pub(crate) struct Broker {
    /// The consuming channel, in confirm mode.
    pub(crate) channel: Channel,
    /// The work queue.
    pub(crate) queue: String,
    /// The retry queue, when configured.
    pub(crate) retry_queue: Option<String>,
}

/// What to do with a delivery.
#[derive(Debug)]
pub(crate) enum Settlement<'a> {
    /// Done: ack.
    Ack,
    /// Reject without requeue: to the queue's dead-letter exchange.
    DeadLetter,
    /// Back to its place in the queue at once (the broker's own requeue): for a message that
    /// arrived while stopping, a handler's requeue without a retry queue, and as the fallback
    /// of [`Settlement::Later`].
    Requeue,
    /// Back later, without holding this worker. With a retry queue the copy waits there for
    /// `delay` (its per-message TTL) and the broker dead-letters it back to the work queue;
    /// without one, the copy goes to the back of the work queue at once (`delay` cannot be
    /// honoured without holding a prefetch slot, so messages behind it go first).
    Later {
        /// How long the copy waits in the retry queue.
        delay: Duration,
        /// The delivery's properties, copied onto the copy.
        properties: &'a BasicProperties,
        /// The delivery's body.
        body: &'a [u8],
    },
}

/// Carries out `settlement` for the delivery of `acker`. Failures are logged: the broker
/// redelivers a message whose channel died before it was settled.
pub(crate) async fn settle(
    broker: &Broker,
    acker: &Acker,
    message_id: &str,
    settlement: Settlement<'_>,
) {
    match settlement {
        Settlement::Ack => report(
            acker.ack(BasicAckOptions::default()).await,
            message_id,
            "ack",
        ),
        Settlement::DeadLetter => report(
            acker.reject(BasicRejectOptions { requeue: false }).await,
            message_id,
            "reject",
        ),
        Settlement::Requeue => requeue(acker, message_id).await,
        Settlement::Later {
            delay,
            properties,
            body,
        } => {
            let (routing_key, properties) = match &broker.retry_queue {
                Some(retry) => (
                    retry.as_str(),
                    properties
                        .clone()
                        .with_expiration(ShortString::from(delay.as_millis().to_string())),
                ),
                None => (broker.queue.as_str(), properties.clone()),
            };
            match publish_confirmed(&broker.channel, "", routing_key, properties, body).await {
                Ok(()) => report(
                    acker.ack(BasicAckOptions::default()).await,
                    message_id,
                    "ack after republishing",
                ),
                Err(why) => {
                    tracing::warn!(
                        message_id = ?message_id,
                        queue = ?routing_key,
                        why = %why,
                        "laissez: could not republish the message; the broker requeues it instead"
                    );
                    requeue(acker, message_id).await;
                }
            }
        }
    }
}

async fn requeue(acker: &Acker, message_id: &str) {
    let options = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    report(acker.nack(options).await, message_id, "requeue");
}

fn report(result: lapin::Result<bool>, message_id: &str, what: &'static str) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!(
            message_id = ?message_id,
            what,
            "laissez: channel gone before settling; the broker redelivers the message"
        ),
        Err(error) => tracing::warn!(
            message_id = ?message_id,
            what,
            error = %error,
            "laissez: settling failed; the broker redelivers the message"
        ),
    }
}
