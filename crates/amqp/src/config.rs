//! How a [`crate::Middleware`] consumes one queue.

use std::time::Duration;

use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{Classes, Policy, TrustedKey};

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
    /// Keys whose approvals count (`docs/spec.md` §12); never a trusted issuer key.
    pub(crate) approvers: Vec<TrustedKey>,
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
    pub(crate) refuse_control_characters: bool,
}

impl ConsumerConfig {
    /// A configuration with the defaults for consuming `queue` as `audience`, trusting
    /// `trusted_keys`, running the tools of `tools`.
    ///
    /// Defaults: prefetch 32, concurrency equal to the prefetch, lease 5 minutes, handler
    /// failures dead-lettered, retry delays 250 ms doubling to 30 s, no retry queue, 1024
    /// cached envelopes, no idle timeout, bearer envelopes accepted (holder-bound ones always
    /// need their holder's invocation), no approver keys and no approval required beyond what
    /// envelopes' rules say.
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
            approvers: Vec::new(),
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
            refuse_control_characters: false,
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

    /// Leeway, maximum lifetime, holder binding and required approval. Default
    /// [`Policy::default`]. A holder requirement or required approval already set
    /// ([`require_holder`](Self::require_holder), [`require_approval`](Self::require_approval))
    /// stays on: a policy set after it never silently turns it off (classes required by
    /// either are required).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        let require_holder = policy.require_holder() || self.policy.require_holder();
        let require_approval = match (policy.require_approval(), self.policy.require_approval()) {
            (Some(a), Some(b)) => Some(union(a, b)),
            (a, b) => a.or(b),
        };
        let mut policy = policy.with_require_holder(require_holder);
        if let Some(classes) = require_approval {
            policy = policy.with_require_approval(classes);
        }
        self.policy = policy;
        self
    }

    /// The approvers' public keys: approvals signed with them count (`docs/spec.md` §12),
    /// those of any other key never do. Refused when one of them is also a trusted issuer key
    /// (an issuer never approves its own calls): [`AmqpError::Config`] naming its kid.
    /// Default: none, so a call whose class needs approval never runs.
    pub fn approvers(mut self, approvers: Vec<TrustedKey>) -> Result<Self, AmqpError> {
        check_disjoint(&self.trusted_keys, &approvers)?;
        self.approvers = approvers;
        Ok(self)
    }

    /// Requires approval for calls of `classes` whatever the envelope says: a call of such a
    /// class under an envelope whose approval rule does not cover it is denied
    /// `approval_required` (`docs/spec.md` §12). Adds to classes already required.
    #[must_use]
    pub fn require_approval(mut self, classes: Classes) -> Self {
        let classes = match self.policy.require_approval() {
            Some(already) => union(already, classes),
            None => classes,
        };
        self.policy = self.policy.with_require_approval(classes);
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

    /// Denies `malformed`, before its use is spent, a message whose message id, agent, obo or
    /// session holds a control character (C0, NUL included, or DEL): for a handler that gets
    /// them where such a character cannot go (a process environment, which `laissez consume
    /// --exec` uses, takes no NUL; an HTTP header, which `--http` uses, no control character).
    /// The audit detail is `control_in_message_id` or `control_in_claims`. Other text, non-ASCII
    /// UTF-8 included, passes. Default off: a Rust handler takes any text.
    #[must_use]
    pub fn refuse_control_characters(mut self, refuse: bool) -> Self {
        self.refuse_control_characters = refuse;
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

    /// The classes that need approval whatever the envelope says
    /// ([`require_approval`](Self::require_approval)).
    pub fn requires_approval(&self) -> Option<Classes> {
        self.policy.require_approval()
    }

    /// The approvers' keys.
    pub fn approver_keys(&self) -> &[TrustedKey] {
        &self.approvers
    }

    /// The retry queue, when configured.
    pub fn retry_queue_name(&self) -> Option<&str> {
        self.retry_queue.as_deref()
    }

    pub(crate) fn check(&self) -> Result<(), AmqpError> {
        if self.trusted_keys.is_empty() {
            return Err(AmqpError::Config("no trusted keys".into()));
        }
        check_disjoint(&self.trusted_keys, &self.approvers)?;
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

/// The classes of `a` and of `b`.
fn union(a: Classes, b: Classes) -> Classes {
    b.iter().fold(a, Classes::with)
}

/// Refuses an approver key that is also a trusted issuer key (the whole key compared).
fn check_disjoint(issuers: &[TrustedKey], approvers: &[TrustedKey]) -> Result<(), AmqpError> {
    match approvers
        .iter()
        .find(|a| issuers.iter().any(|i| i.as_bytes() == a.as_bytes()))
    {
        Some(key) => Err(AmqpError::Config(format!(
            "the approver key {} is also a trusted issuer key: an issuer never approves its own calls",
            key.kid()
        ))),
        None => Ok(()),
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

    #[test]
    fn required_approval_survives_a_later_policy_and_adds_up() {
        let d = Classes::only(ActionClass::Destructive);
        let w = Classes::only(ActionClass::Write);
        let c = config().require_approval(d).policy(Policy::default());
        assert_eq!(c.requires_approval(), Some(d));
        let c = c.policy(Policy::default().with_require_approval(w));
        assert_eq!(c.requires_approval(), Some(d.with(ActionClass::Write)));
        assert_eq!(config().requires_approval(), None);
    }

    #[test]
    fn an_issuer_key_is_refused_as_an_approver() {
        let issuer = laissez_sign::SecretKey::from_seed(&[1; 32])
            .unwrap()
            .public_key();
        let approver = laissez_sign::SecretKey::from_seed(&[2; 32])
            .unwrap()
            .public_key();
        let tools = OwnedCatalogue::new()
            .with("crm.read", ActionClass::Read)
            .unwrap();
        let c = ConsumerConfig::new("q", "aud", vec![issuer], tools);
        let err = c
            .clone()
            .approvers(vec![approver, issuer])
            .unwrap_err()
            .to_string();
        assert!(err.contains("also a trusted issuer key"), "{err}");
        assert!(err.contains(&issuer.kid().to_string()), "{err}");
        let ok = c.approvers(vec![approver]).unwrap();
        assert_eq!(ok.approver_keys(), &[approver]);
        assert!(ok.check().is_ok());
    }
}
