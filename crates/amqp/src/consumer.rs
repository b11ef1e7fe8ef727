//! The consumer middleware: the consuming loop, its tasks, graceful shutdown.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt as _;
use futures_lite::StreamExt as _;
use laissez_ledger::UseLedger;
use lapin::Channel;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::ConsumerConfig;
use crate::decision::Decision;
use crate::error::AmqpError;
use crate::handler::{Handler, HandlerOutcome};
use crate::process::process;
use crate::settle::{Broker, Settlement, settle};
use crate::shared::{Counters, Shared, Stats};
use crate::telemetry::{InFlight, RequeueCause};

/// The consumer middleware: verifies each delivery, spends its use, and only then runs the
/// handler; denials are dead-lettered and logged, never run and never requeued.
pub struct Middleware<L, H> {
    shared: Arc<Shared<L, H>>,
}

impl<L, H> std::fmt::Debug for Middleware<L, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Middleware")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<L: UseLedger + 'static, H: Handler> Middleware<L, H> {
    /// A middleware spending uses in `ledger` and running `handler`.
    pub fn new(config: ConsumerConfig, ledger: Arc<L>, handler: H) -> Self {
        Middleware {
            shared: Arc::new(Shared::new(config, ledger, handler)),
        }
    }

    /// Calls `observer` with every decision (allowed before the handler runs; denied before
    /// the message is dead-lettered). Must be set before [`run`](Self::run).
    ///
    /// A panicking observer does not stop the worker: a denied message is dead-lettered all
    /// the same; an allowed one has not run yet, so its use is released and it is requeued.
    #[must_use]
    pub fn on_decision(mut self, observer: impl Fn(&Decision) + Send + Sync + 'static) -> Self {
        // Only `run` clones the Arc, and it joins every clone before it returns.
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.observer = Some(Arc::new(observer)),
            None => tracing::error!("laissez: on_decision ignored while the middleware runs"),
        }
        self
    }

    /// Calls `observer` with every handler's outcome (`docs/spec.md` §9, "Outcomes"): after
    /// the handler of an allowed message returned, `handled` or `handler_failed`, before the
    /// message is settled. The decision it carries is the one [`on_decision`](Self::on_decision)
    /// saw, with its outcome. Must be set before [`run`](Self::run). A panicking observer is
    /// logged; the message is settled as the handler's outcome says.
    #[must_use]
    pub fn on_outcome(
        mut self,
        observer: impl Fn(&HandlerOutcome<'_>) + Send + Sync + 'static,
    ) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.outcome_observer = Some(Arc::new(observer)),
            None => tracing::error!("laissez: on_outcome ignored while the middleware runs"),
        }
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Consumes the queue on `channel` until `shutdown` completes, the idle timeout passes,
    /// the broker cancels the consumer, or the connection fails beyond recovery.
    ///
    /// Stopping is graceful: consuming stops, messages already received but not started are
    /// requeued untouched, and messages in flight finish and are acked, dead-lettered or
    /// requeued before this returns. With lapin's auto-recovery enabled on the connection
    /// (see [`crate::connect`]), a lost connection is waited out and consuming resumes.
    ///
    /// The channel is put in confirm mode: a message that must come back later is republished
    /// (to the retry queue, or to the back of the work queue) with publisher confirms before
    /// the original is acked, so the worker needs write access to the default exchange.
    pub async fn run(
        &self,
        channel: &Channel,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Stats, AmqpError> {
        let config = &self.shared.config;
        config.check()?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;
        let broker = Arc::new(Broker {
            channel: channel.clone(),
            queue: config.queue.clone(),
            retry_queue: config.retry_queue.clone(),
        });
        let mut consumer = channel
            .basic_consume(
                config.queue.as_str().into(),
                config.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let tag = consumer.tag();
        tracing::info!(queue = ?config.queue, audience = ?config.audience, prefetch = config.prefetch, retry_queue = ?config.retry_queue, "laissez: consuming");
        let permits = Arc::new(Semaphore::new(config.effective_concurrency()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut result = Ok(());
        let mut last_activity = Instant::now();
        let idle = config.idle_timeout;
        tokio::pin!(shutdown);
        loop {
            let idle_at = last_activity + idle.unwrap_or(Duration::ZERO);
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!(queue = ?config.queue, "laissez: shutting down");
                    break;
                }
                () = tokio::time::sleep_until(idle_at), if idle.is_some() && tasks.is_empty() => {
                    tracing::info!(queue = ?config.queue, "laissez: idle, stopping");
                    break;
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    last_activity = Instant::now();
                    log_join_error(joined);
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        last_activity = Instant::now();
                        Counters::bump(&self.shared.counters.received);
                        let received_at = std::time::Instant::now();
                        let in_flight = InFlight::enter(&self.shared.meters.in_flight);
                        let shared = self.shared.clone();
                        let broker = broker.clone();
                        let permits = permits.clone();
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            // The semaphore is never closed.
                            let _permit = permits.acquire_owned().await.ok();
                            guarded(&shared, &broker, delivery, received_at, stop).await;
                            drop(in_flight);
                        });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "laissez: connection lost, waiting for recovery");
                        tokio::select! {
                            () = &mut shutdown => break,
                            recovered = channel.wait_for_recovery(error) => match recovered {
                                Ok(()) => tracing::info!("laissez: connection recovered"),
                                Err(error) => {
                                    result = Err(AmqpError::Broker(error));
                                    break;
                                }
                            },
                        }
                    }
                    None => {
                        tracing::info!(queue = ?config.queue, "laissez: consumer cancelled by the broker");
                        break;
                    }
                }
            }
        }
        // Stop: no new deliveries, requeue what arrived but did not start, finish the rest.
        let _ = stop_tx.send(true);
        if channel.status().connected() {
            if let Err(error) = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await
            {
                tracing::warn!(%error, "laissez: basic.cancel failed");
            }
            requeue_buffered(&mut consumer, &broker, &self.shared).await;
        }
        while let Some(joined) = tasks.join_next().await {
            log_join_error(joined);
        }
        // One JSON object, by outcome: read by machines as well as people.
        tracing::info!(queue = ?config.queue, stats = %self.stats().to_json(), "laissez: stopped");
        result.map(|()| self.stats())
    }
}

/// Processes one delivery. `process` catches the handler's and the observer's panics itself;
/// a panic anywhere else is a bug, and still must not leave the delivery unsettled (holding a
/// prefetch slot until the channel closes): it is dead-lettered, since the handler may have
/// run and must never run twice.
async fn guarded<L: UseLedger, H: Handler>(
    shared: &Shared<L, H>,
    broker: &Broker,
    delivery: lapin::message::Delivery,
    received_at: std::time::Instant,
    stop: watch::Receiver<bool>,
) {
    let acker = delivery.acker.clone();
    let id = crate::headers::message_id(&delivery.properties)
        .unwrap_or("")
        .to_owned();
    let run = AssertUnwindSafe(process(shared, broker, delivery, received_at, stop));
    if run.catch_unwind().await.is_err() {
        tracing::error!(message_id = ?id, "laissez: processing a message panicked; dead-lettering it");
        if acker.usable() {
            settle(broker, &acker, &id, Settlement::DeadLetter).await;
        }
    }
}

/// Every task's end that is not a normal return is logged.
fn log_join_error(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        tracing::error!(error = %error, "laissez: a message task ended abnormally");
    }
}

/// Deliveries the broker sent before the cancel took effect: requeued unread.
async fn requeue_buffered<L, H>(
    consumer: &mut lapin::Consumer,
    broker: &Broker,
    shared: &Shared<L, H>,
) {
    let grace = Duration::from_secs(2);
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(grace, consumer.next()).await {
        shared.count_requeue(RequeueCause::Shutdown);
        let id = crate::headers::message_id(&delivery.properties).unwrap_or("");
        settle(broker, &delivery.acker, id, Settlement::Requeue).await;
    }
}
