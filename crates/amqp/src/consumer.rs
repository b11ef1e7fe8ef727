//! The consumer middleware: configuration, the consuming loop, graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt as _;
use laissez_ledger::UseLedger;
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::{Policy, TrustedKey, Verifier};
use lapin::Channel;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::decision::Decision;
use crate::error::AmqpError;
use crate::handler::Handler;
use crate::process;

/// What the middleware does when the handler returns an error or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnHandlerError {
    /// Reject without requeue, to the queue's dead-letter exchange (the default). The use
    /// stays spent and is not completed: the ledger keeps it in flight until its lease lapses.
    #[default]
    DeadLetter,
    /// Release the lease and requeue after `after`, to run again under the same use. Never
    /// applied to the destructive class, whose failures are always dead-lettered: a failed
    /// destructive step may or may not have happened, and a person decides.
    Requeue {
        /// How long to hold the message before requeueing it.
        after: Duration,
    },
}

/// How a [`Middleware`] consumes one queue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// The queue to consume. The middleware declares nothing.
    pub queue: String,
    /// This worker's audience name: envelopes must name it in `aud`.
    pub audience: String,
    /// The keys whose envelopes are trusted.
    pub trusted_keys: Vec<TrustedKey>,
    /// Leeway and maximum lifetime.
    pub policy: Policy,
    /// Unacknowledged messages the broker may send ahead (basic.qos prefetch). Default 32.
    pub prefetch: u16,
    /// Messages processed at once; default (0) means as many as `prefetch`.
    pub concurrency: usize,
    /// How long a worker holds a message's use before a redelivery may take it over. Must
    /// exceed the handler's longest run. Default 5 minutes.
    pub lease: Duration,
    /// What a handler error or panic leads to. Default: dead-letter.
    pub on_handler_error: OnHandlerError,
    /// First delay before requeueing a message whose use is in flight elsewhere or whose
    /// ledger is unreachable; doubled on each retry of the same message. Default 250 ms.
    pub retry_delay: Duration,
    /// Largest such delay. Default 30 s.
    pub max_retry_delay: Duration,
    /// Verified envelopes kept, keyed by a digest of their exact bytes. Default 1024.
    pub cache_capacity: usize,
    /// Consumer tag; empty lets the broker choose.
    pub consumer_tag: String,
    /// Stop once no message has arrived for this long and none is in flight.
    pub idle_timeout: Option<Duration>,
}

impl ConsumerConfig {
    /// A configuration with the defaults for consuming `queue` as `audience`, trusting `keys`.
    pub fn new(
        queue: impl Into<String>,
        audience: impl Into<String>,
        trusted_keys: Vec<TrustedKey>,
    ) -> Self {
        ConsumerConfig {
            queue: queue.into(),
            audience: audience.into(),
            trusted_keys,
            policy: Policy::default(),
            prefetch: 32,
            concurrency: 0,
            lease: Duration::from_secs(300),
            on_handler_error: OnHandlerError::default(),
            retry_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(30),
            cache_capacity: 1024,
            consumer_tag: String::new(),
            idle_timeout: None,
        }
    }

    /// Sets [`prefetch`](Self::prefetch).
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets [`lease`](Self::lease).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets [`policy`](Self::policy).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`on_handler_error`](Self::on_handler_error).
    #[must_use]
    pub fn on_handler_error(mut self, on_error: OnHandlerError) -> Self {
        self.on_handler_error = on_error;
        self
    }

    /// Sets [`retry_delay`](Self::retry_delay) and [`max_retry_delay`](Self::max_retry_delay).
    #[must_use]
    pub fn retry_delays(mut self, first: Duration, max: Duration) -> Self {
        self.retry_delay = first;
        self.max_retry_delay = max.max(first);
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets [`consumer_tag`](Self::consumer_tag).
    #[must_use]
    pub fn consumer_tag(mut self, tag: impl Into<String>) -> Self {
        self.consumer_tag = tag.into();
        self
    }

    fn check(&self) -> Result<(), AmqpError> {
        if self.trusted_keys.is_empty() {
            return Err(AmqpError::Config("no trusted keys".into()));
        }
        if self.audience.is_empty() || self.queue.is_empty() {
            return Err(AmqpError::Config("queue and audience must be named".into()));
        }
        if self.prefetch == 0 {
            return Err(AmqpError::Config("prefetch must be at least 1".into()));
        }
        if self.lease.is_zero() {
            return Err(AmqpError::Config("the lease must be non-zero".into()));
        }
        Ok(())
    }
}

/// Counters of one middleware, across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Deliveries received.
    pub received: u64,
    /// Messages handed to the handler.
    pub handled: u64,
    /// Messages denied (dead-lettered without running).
    pub denied: u64,
    /// Messages requeued without running (in flight elsewhere, ledger unreachable, shutdown).
    pub requeued: u64,
    /// Handler errors and panics.
    pub handler_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) requeued: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

type Observer = Arc<dyn Fn(&Decision) + Send + Sync>;

/// State shared by the consuming loop and the per-message tasks.
pub(crate) struct Shared<L, H> {
    pub(crate) config: ConsumerConfig,
    pub(crate) ledger: Arc<L>,
    pub(crate) handler: H,
    pub(crate) cache: EnvelopeCache,
    pub(crate) observer: Option<Observer>,
    pub(crate) counters: Counters,
    /// Retries per `cti:message_id`, for the requeue backoff. Bounded: cleared when large.
    pub(crate) retries: Mutex<HashMap<String, u32>>,
}

impl<L, H> Shared<L, H> {
    pub(crate) fn verifier(&self) -> Verifier<'_> {
        Verifier::new(&self.config.trusted_keys, &self.config.audience)
            .with_policy(self.config.policy)
    }
}

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
        let cache = EnvelopeCache::new(config.cache_capacity);
        Middleware {
            shared: Arc::new(Shared {
                config,
                ledger,
                handler,
                cache,
                observer: None,
                counters: Counters::default(),
                retries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Calls `observer` with every decision (allowed before the handler runs; denied before
    /// the message is dead-lettered). Must be set before [`run`](Self::run).
    #[must_use]
    pub fn on_decision(mut self, observer: impl Fn(&Decision) + Send + Sync + 'static) -> Self {
        // Only `run` clones the Arc, and it joins every clone before it returns.
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.observer = Some(Arc::new(observer)),
            None => tracing::error!("laissez: on_decision ignored while the middleware runs"),
        }
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            handled: c.handled.load(Ordering::Relaxed),
            denied: c.denied.load(Ordering::Relaxed),
            requeued: c.requeued.load(Ordering::Relaxed),
            handler_failures: c.handler_failures.load(Ordering::Relaxed),
        }
    }

    /// Consumes the queue on `channel` until `shutdown` completes, the idle timeout passes,
    /// the broker cancels the consumer, or the connection fails beyond recovery.
    ///
    /// Stopping is graceful: consuming stops, messages already received but not started are
    /// requeued untouched, and messages in flight finish and are acked, dead-lettered or
    /// requeued before this returns. With lapin's auto-recovery enabled on the connection
    /// (see [`crate::connect`]), a lost connection is waited out and consuming resumes.
    pub async fn run(
        &self,
        channel: &Channel,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Stats, AmqpError> {
        let config = &self.shared.config;
        config.check()?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                config.queue.as_str().into(),
                config.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let tag = consumer.tag();
        tracing::info!(queue = %config.queue, audience = %config.audience, prefetch = config.prefetch, "laissez: consuming");
        let concurrency = match config.concurrency {
            0 => usize::from(config.prefetch),
            n => n,
        };
        let permits = Arc::new(Semaphore::new(concurrency));
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
                    tracing::info!(queue = %config.queue, "laissez: shutting down");
                    break;
                }
                () = tokio::time::sleep_until(idle_at), if idle.is_some() && tasks.is_empty() => {
                    tracing::info!(queue = %config.queue, "laissez: idle, stopping");
                    break;
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    last_activity = Instant::now();
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        last_activity = Instant::now();
                        Counters::bump(&self.shared.counters.received);
                        let shared = self.shared.clone();
                        let permits = permits.clone();
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            // The semaphore is never closed.
                            let _permit = permits.acquire_owned().await.ok();
                            process::process(&shared, delivery, stop).await;
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
                        tracing::info!(queue = %config.queue, "laissez: consumer cancelled by the broker");
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
            requeue_buffered(&mut consumer, &self.shared.counters).await;
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!(queue = %config.queue, stats = ?self.stats(), "laissez: stopped");
        result.map(|()| self.stats())
    }
}

/// Deliveries the broker sent before the cancel took effect: requeued unread.
async fn requeue_buffered(consumer: &mut lapin::Consumer, counters: &Counters) {
    let grace = Duration::from_secs(2);
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(grace, consumer.next()).await {
        Counters::bump(&counters.requeued);
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        if let Err(error) = delivery.acker.nack(requeue).await {
            tracing::warn!(%error, "laissez: requeue at shutdown failed; the broker requeues it when the channel closes");
        }
    }
}
