//! How a [`crate::Middleware`] consumes one queue.

use std::time::Duration;

use laissez_verify::{OwnedCatalogue, Policy, TrustedKey};

use crate::error::AmqpError;

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
        /// How long before the message comes back (through the retry queue when one is
        /// configured, else held by the worker).
        after: Duration,
    },
}

/// The longest lease the ledger accepts.
const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a [`crate::Middleware`] consumes one queue: built with [`ConsumerConfig::new`] and the
/// setters below, read with the getters.
///
/// The tool catalogue is the worker's: each tool it runs with its one action class. A call's
/// class is the catalogue's, never the publisher's (`docs/spec.md` §9); a tool the catalogue
/// does not list is denied `unknown_tool`.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub(crate) queue: String,
    pub(crate) audience: String,
    pub(crate) trusted_keys: Vec<TrustedKey>,
    pub(crate) tools: OwnedCatalogue,
    pub(crate) policy: Policy,
    pub(crate) prefetch: u16,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) on_handler_error: OnHandlerError,
    pub(crate) retry_delay: Duration,
    pub(crate) max_retry_delay: Duration,
    pub(crate) retry_queue: Option<String>,
    pub(crate) cache_capacity: usize,
    pub(crate) consumer_tag: String,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) revocations: Option<crate::revocations::SharedRevocations>,
}

impl ConsumerConfig {
    /// A configuration with the defaults for consuming `queue` as `audience`, trusting
    /// `trusted_keys`, running the tools of `tools`.
    ///
    /// Defaults: prefetch 32, concurrency equal to the prefetch, lease 5 minutes, handler
    /// failures dead-lettered, retry delays 250 ms doubling to 30 s, no retry queue, 1024
    /// cached envelopes, no idle timeout, bearer envelopes accepted (holder-bound ones always
    /// need their holder's invocation).
    pub fn new(
        queue: impl Into<String>,
        audience: impl Into<String>,
        trusted_keys: Vec<TrustedKey>,
        tools: OwnedCatalogue,
    ) -> Self {
        ConsumerConfig {
            queue: queue.into(),
            audience: audience.into(),
            trusted_keys,
            tools,
            policy: Policy::default(),
            prefetch: 32,
            concurrency: 0,
            lease: Duration::from_secs(300),
            on_handler_error: OnHandlerError::default(),
            retry_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(30),
            retry_queue: None,
            cache_capacity: 1024,
            consumer_tag: String::new(),
            idle_timeout: None,
            revocations: None,
        }
    }

    /// Consults these revocation records on every message (`revoked`). Start a
    /// [`crate::RevocationFollower`] and pass its [`revocations`](crate::RevocationFollower::revocations)
    /// before running the middleware: the follower returns only once caught up, so no work
    /// message is taken before the records present at start are applied. Default: none.
    #[must_use]
    pub fn revocations(mut self, held: crate::revocations::SharedRevocations) -> Self {
        self.revocations = Some(held);
        self
    }

    /// Unacknowledged messages the broker may send ahead (basic.qos prefetch). Default 32.
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Messages processed at once; 0 (the default) means as many as the prefetch.
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// How long a worker holds a message's use before a redelivery may take it over. Must
    /// exceed the handler's longest run. Default 5 minutes.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Leeway, maximum lifetime and holder binding. Default [`Policy::default`]. A holder
    /// requirement already set ([`require_holder`](Self::require_holder)) stays on: a policy
    /// set after it never silently turns it off.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        let require_holder = policy.require_holder() || self.policy.require_holder();
        self.policy = policy.with_require_holder(require_holder);
        self
    }

    /// Refuse bearer envelopes: with `true`, an envelope without `cnf` is denied
    /// `invocation_required` (after every envelope check), so every call that runs was signed
    /// by its envelope's holder (`docs/spec.md` §11). Holder-bound envelopes need their
    /// holder's invocation whatever this says. Default `false`.
    #[must_use]
    pub fn require_holder(mut self, require: bool) -> Self {
        self.policy = self.policy.with_require_holder(require);
        self
    }

    /// What a handler error or panic leads to. Default: dead-letter.
    #[must_use]
    pub fn on_handler_error(mut self, on_error: OnHandlerError) -> Self {
        self.on_handler_error = on_error;
        self
    }

    /// The delay before a message that did not run (its use in flight on another worker, or
    /// the ledger unreachable) comes back: `first`, doubled on each retry of the same
    /// message, at most `max`. Defaults 250 ms and 30 s. Applied only with a
    /// [`retry_queue`](Self::retry_queue): without one such a message goes to the back of the
    /// work queue at once (`docs/amqp.md`).
    #[must_use]
    pub fn retry_delays(mut self, first: Duration, max: Duration) -> Self {
        self.retry_delay = first;
        self.max_retry_delay = max.max(first);
        self
    }

    /// The retry queue (see [`crate::Topology`]): a message that must come back later is
    /// published there with its delay as per-message TTL (mandatory, confirmed), and only then
    /// acked; the broker dead-letters it back to the work queue when the delay is over. The
    /// worker holds no prefetch slot meanwhile. Default: none.
    #[must_use]
    pub fn retry_queue(mut self, queue: impl Into<String>) -> Self {
        self.retry_queue = Some(queue.into());
        self
    }

    /// Verified envelopes kept, keyed by a digest of their exact bytes. Default 1024.
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Stop once no message has arrived for this long and none is in flight. Default none.
    #[must_use]
    pub fn idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The consumer tag; empty (the default) lets the broker choose.
    #[must_use]
    pub fn consumer_tag(mut self, tag: impl Into<String>) -> Self {
        self.consumer_tag = tag.into();
        self
    }

    /// The queue consumed.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// This worker's audience name: envelopes must name it in `aud`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The worker's tool catalogue.
    pub fn tools(&self) -> &OwnedCatalogue {
        &self.tools
    }

    /// Whether bearer envelopes are refused ([`require_holder`](Self::require_holder)).
    pub fn requires_holder(&self) -> bool {
        self.policy.require_holder()
    }

    /// The retry queue, when configured.
    pub fn retry_queue_name(&self) -> Option<&str> {
        self.retry_queue.as_deref()
    }

    pub(crate) fn check(&self) -> Result<(), AmqpError> {
        if self.trusted_keys.is_empty() {
            return Err(AmqpError::Config("no trusted keys".into()));
        }
        if self.audience.is_empty() || self.queue.is_empty() {
            return Err(AmqpError::Config("queue and audience must be named".into()));
        }
        if self.tools.is_empty() {
            return Err(AmqpError::Config(
                "the tool catalogue lists no tool: every message would be unknown_tool".into(),
            ));
        }
        if self.prefetch == 0 {
            return Err(AmqpError::Config("prefetch must be at least 1".into()));
        }
        if self.lease.is_zero() || self.lease > MAX_LEASE {
            return Err(AmqpError::Config(
                "the lease must be non-zero and at most a year".into(),
            ));
        }
        if self.retry_queue.as_deref() == Some(self.queue.as_str()) {
            return Err(AmqpError::Config(
                "the retry queue must not be the work queue".into(),
            ));
        }
        Ok(())
    }

    /// How many messages are processed at once.
    pub(crate) fn effective_concurrency(&self) -> usize {
        match self.concurrency {
            0 => usize::from(self.prefetch),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use laissez_verify::ActionClass;

    use super::*;

    fn config() -> ConsumerConfig {
        let tools = OwnedCatalogue::new()
            .with("crm.read", ActionClass::Read)
            .unwrap();
        ConsumerConfig::new("q", "aud", Vec::new(), tools)
    }

    #[test]
    fn a_policy_set_later_never_turns_the_holder_requirement_off() {
        assert!(!config().requires_holder());
        assert!(config().require_holder(true).requires_holder());
        let relaxed = Policy::new(10, 600).unwrap();
        let c = config().require_holder(true).policy(relaxed);
        assert!(c.requires_holder());
        assert_eq!(c.policy.leeway(), 10);
        assert!(
            config()
                .policy(relaxed.with_require_holder(true))
                .requires_holder()
        );
        // Only an explicit choice turns it off.
        assert!(!c.require_holder(false).requires_holder());
    }
}
