//! State shared by the consuming loop and the per-message tasks. A leaf module: the loop
//! (`consumer`) and the per-message work (`process`, `settle`) both use it, and it uses
//! neither.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use laissez_verify::Verifier;
use laissez_verify::cache::EnvelopeCache;

use crate::config::ConsumerConfig;
use crate::decision::Decision;
use crate::handler::HandlerOutcome;
use crate::telemetry::{Meters, RequeueCause};

/// Retry entries kept for the backoff before the map is cleared.
const MAX_RETRY_ENTRIES: usize = 4096;

/// Counters of one middleware, across runs. [`Stats::to_json`] is the shutdown summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Deliveries received.
    pub received: u64,
    /// Messages handed to the handler (whatever became of them: `handler_failures` counts
    /// those that failed).
    pub handled: u64,
    /// Messages denied (dead-lettered without running), parked ones aside.
    pub denied: u64,
    /// Messages denied `approval_required`: parked in the dead-letter queue for approval.
    pub parked: u64,
    /// Messages requeued without running (in flight elsewhere, ledger unreachable, shutdown),
    /// or requeued after the handler asked or failed.
    pub requeued: u64,
    /// Handler errors and panics.
    pub handler_failures: u64,
}

impl Stats {
    /// The counts as one JSON object, by outcome: `received`, `handled`, `denied`,
    /// `parked`, `requeued`, `handler_failures`. The shutdown summary (`docs/spec.md` §9,
    /// "Outcomes").
    pub fn to_json(&self) -> String {
        // Numbers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) parked: AtomicU64,
    pub(crate) requeued: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            received: self.received.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
            requeued: self.requeued.load(Ordering::Relaxed),
            handler_failures: self.handler_failures.load(Ordering::Relaxed),
        }
    }
}

/// Called with every decision.
pub(crate) type Observer = Arc<dyn Fn(&Decision) + Send + Sync>;

/// Called with every handler's outcome.
pub(crate) type OutcomeObserver = Arc<dyn Fn(&HandlerOutcome<'_>) + Send + Sync>;

/// What the consuming loop and every per-message task share.
pub(crate) struct Shared<L, H> {
    pub(crate) config: ConsumerConfig,
    pub(crate) ledger: Arc<L>,
    pub(crate) handler: H,
    pub(crate) cache: EnvelopeCache,
    pub(crate) observer: Option<Observer>,
    pub(crate) outcome_observer: Option<OutcomeObserver>,
    pub(crate) counters: Counters,
    /// The metrics' handles, registered with the recorder installed when the middleware was
    /// made.
    pub(crate) meters: Meters,
    /// Retries per `cti:message_id`, for the backoff. Bounded: cleared when large.
    retries: Mutex<HashMap<String, u32>>,
}

impl<L, H> Shared<L, H> {
    pub(crate) fn new(config: ConsumerConfig, ledger: Arc<L>, handler: H) -> Self {
        let cache = EnvelopeCache::new(config.cache_capacity);
        Shared {
            config,
            ledger,
            handler,
            cache,
            observer: None,
            outcome_observer: None,
            counters: Counters::default(),
            meters: Meters::register(),
            retries: Mutex::new(HashMap::new()),
        }
    }

    /// The verifier of this worker: its keys, audience, policy and approvers. The
    /// configuration refuses an approver key that is also an issuer key before the worker
    /// starts; were one to get through, no approval would count (the verifier without
    /// approvers), never one too many.
    pub(crate) fn verifier(&self) -> Verifier<'_> {
        let verifier = Verifier::new(&self.config.trusted_keys, &self.config.audience)
            .with_policy(self.config.policy)
            .with_cache(&self.cache);
        let verifier = verifier
            .with_approvers(&self.config.approvers)
            .unwrap_or(verifier);
        match &self.config.revocations {
            Some(held) => verifier.with_revocations(held),
            None => verifier,
        }
    }

    /// Counts a message sent back to the queue, in the stats and the metrics.
    pub(crate) fn count_requeue(&self, cause: RequeueCause) {
        Counters::bump(&self.counters.requeued);
        self.meters.requeued(cause);
    }

    /// The next backoff delay for `key`, doubling on each call.
    pub(crate) fn next_retry_delay(&self, key: String) -> Duration {
        let mut retries = self
            .retries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if retries.len() >= MAX_RETRY_ENTRIES {
            retries.clear();
        }
        let n = retries.entry(key).or_insert(0);
        let delay = self
            .config
            .retry_delay
            .saturating_mul(1u32 << (*n).min(16))
            .min(self.config.max_retry_delay);
        *n = n.saturating_add(1);
        delay
    }

    pub(crate) fn forget_retries(&self, key: &str) {
        self.retries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}
