//! The middleware's per-delivery semantics without a broker (`docs/spec.md` §9): a
//! [`Gatekeeper`] admits one delivery (its properties and body, however it was received) and
//! says what to do with it, and a [`Ticket`] settles an allowed one once its handler ran. The
//! [`crate::Middleware`] runs every delivery through the same steps ([`stopped`],
//! [`granted`], [`crate::outcome::plan`]): a worker in another language that settles with its
//! own client gets the same decisions, audit events, ledger calls and retry delays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use laissez_ledger::{HeldUse, UseLedger};
use laissez_verify::ActionClass;
use lapin::BasicProperties;
use tokio::sync::watch;

use crate::admit::{Admission, Admitted, Poisoned, Report, admit};
use crate::audit;
use crate::config::ConsumerConfig;
use crate::decide::{Facts, Verdict, decide};
use crate::decision::{Decision, Outcome};
use crate::error::AmqpError;
use crate::handler::{Authorized, Disposition};
use crate::outcome::{Plan, complete, count_failure, plan, release};
use crate::shared::{Counters, Shared, Stats};
use crate::telemetry::RequeueCause;

/// The gate and the ledger of one worker, for deliveries it receives and settles itself
/// (`docs/spec.md` §9): the same configuration as a [`crate::Middleware`]'s
/// ([`ConsumerConfig`]; its prefetch, concurrency, retry queue, idle timeout and consumer tag
/// are the caller's business), the same decisions, the same `laissez::audit` events, the
/// same ledger calls.
///
/// With [`ConsumerConfig::revocations`] from a follower, [`Gatekeeper::admit`] waits while
/// the follower is not ready (fail closed, `docs/spec.md` §14), as the middleware does.
pub struct Gatekeeper<L> {
    shared: Shared<L, ()>,
    stop: watch::Sender<bool>,
}

impl<L> std::fmt::Debug for Gatekeeper<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper")
            .field("queue", &self.shared.config.queue)
            .field("audience", &self.shared.config.audience)
            .finish_non_exhaustive()
    }
}

/// What to do with one delivery, as [`Gatekeeper::admit`] decided.
#[derive(Debug)]
#[must_use = "a delivery is settled as its entry says"]
#[non_exhaustive]
pub enum Entry<'g, L: UseLedger> {
    /// Allowed, and its use held in the ledger: run the handler, then
    /// [`Ticket::finish`] says how to settle.
    Run(Box<Ticket<'g, L>>),
    /// Denied: dead-letter it (reject without requeue). Its decision has been audited; a
    /// decision whose [`Decision::outcome`] is [`Outcome::Parked`] (`approval_required`)
    /// waits in the dead-letter queue for `laissez approve`.
    Refuse(Decision),
    /// Not run now and not denied (its use in flight on another worker, the ledger
    /// unreachable, the gatekeeper stopping): requeue it after `after`. Not a decision.
    Retry {
        /// How long before it comes back: the same backoff as the middleware's.
        after: Duration,
        /// Why.
        cause: RequeueCause,
    },
}

/// How to settle an allowed delivery once its handler ran ([`Ticket::finish`]); the ledger
/// has been told already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settle {
    /// Ack it.
    Ack,
    /// Reject it without requeue, to the dead-letter exchange.
    DeadLetter,
    /// Requeue it after `after` (the lease is released: the redelivery runs under the same
    /// use at once).
    Requeue {
        /// How long before it comes back.
        after: Duration,
    },
}

/// An allowed delivery whose use is held: what its handler gets, and [`Ticket::finish`] once
/// it ran. Dropped unfinished, the use stays in flight until its lease lapses, as when a
/// worker dies: the redelivery then takes it over (or, for the destructive class, is
/// `abandoned`).
#[must_use = "a ticket is finished once its handler ran"]
pub struct Ticket<'g, L: UseLedger> {
    shared: &'g Shared<L, ()>,
    held: HeldUse<'g, L>,
    decision: Decision,
    authorized: Authorized,
    started: Instant,
}

impl<L: UseLedger> std::fmt::Debug for Ticket<'_, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("decision", &self.decision)
            .field("authorized", &self.authorized)
            .finish_non_exhaustive()
    }
}

impl<L: UseLedger> Gatekeeper<L> {
    /// A gatekeeper over `ledger` for `config`; refused as [`crate::Middleware::run`] refuses
    /// a configuration ([`AmqpError::Config`]: no trusted key, no tool, an approver that is an
    /// issuer, ...).
    pub fn new(config: ConsumerConfig, ledger: Arc<L>) -> Result<Self, AmqpError> {
        config.check()?;
        Ok(Gatekeeper {
            shared: Shared::new(config, ledger, ()),
            stop: watch::Sender::new(false),
        })
    }

    /// Admits one delivery of `properties` and `body`: reads its headers, asks the gate and
    /// holds its use, as the middleware does for each delivery.
    pub async fn admit(&self, properties: &BasicProperties, body: &[u8]) -> Entry<'_, L> {
        let shared = &self.shared;
        Counters::bump(&shared.counters.received);
        let received_at = Instant::now();
        if let Some(held) = &shared.config.revocations
            && !held.status().wait_ready(&mut self.stop.subscribe()).await
        {
            shared.count_requeue(RequeueCause::Shutdown);
            return Entry::Retry {
                after: Duration::ZERO,
                cause: RequeueCause::Shutdown,
            };
        }
        let (admission, report) = admit(shared, properties, body, &Settled).await;
        match admission {
            Admission::Run(admitted) => {
                let Granted {
                    decision,
                    authorized,
                    held,
                } = granted(shared, *admitted, report, received_at);
                Counters::bump(&shared.counters.handled);
                Entry::Run(Box::new(Ticket {
                    shared,
                    held,
                    decision,
                    authorized,
                    started: Instant::now(),
                }))
            }
            Admission::Stopped(facts) => match stopped(shared, &facts, &report, received_at) {
                Stopped::Deny(decision) => Entry::Refuse(decision),
                Stopped::Retry { after, cause } => Entry::Retry { after, cause },
            },
            // `Settled` never reports a dead channel: not reached.
            Admission::ChannelLost => Entry::Retry {
                after: Duration::ZERO,
                cause: RequeueCause::Shutdown,
            },
        }
    }

    /// Stops waiting for the revocation follower: admissions waiting for it now, and later
    /// ones while it is not ready, answer [`Entry::Retry`] (cause `shutdown`).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The counts so far: received, handled, denied, parked, requeued, handler failures.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }
}

impl<L: UseLedger> Ticket<'_, L> {
    /// The decision (allowed, with its use number): the line `laissez consume` prints.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// What the handler acts on.
    pub fn authorized(&self) -> &Authorized {
        &self.authorized
    }

    /// The handler's `outcome` (its error's text when it failed): completes or releases the
    /// use as the middleware does ([`crate::OnHandlerError`] for a failure, never a requeue
    /// for a failed destructive call), and says how to settle the delivery.
    pub async fn finish(self, outcome: Result<Disposition, String>) -> Settle {
        let Ticket {
            shared,
            held,
            authorized,
            started,
            ..
        } = self;
        shared
            .meters
            .handler_ran(outcome.is_err(), started.elapsed());
        let class: ActionClass = authorized.class;
        let planned = plan(&outcome, shared.config.on_handler_error, class);
        count_failure(shared, &held, &outcome, planned);
        match planned {
            Plan::CompleteAck => {
                complete(held).await;
                Settle::Ack
            }
            Plan::CompleteDeadLetter => {
                complete(held).await;
                Settle::DeadLetter
            }
            Plan::Requeue(after, cause) => {
                // As with a retry queue: the lease goes back before the message does.
                shared.count_requeue(cause);
                release(held).await;
                Settle::Requeue { after }
            }
            Plan::DeadLetter => Settle::DeadLetter,
        }
    }
}

/// A delivery its receiver settles itself: its channel is the receiver's business.
struct Settled;

impl Poisoned for Settled {
    fn poisoned(&self) -> bool {
        false
    }
}

/// A delivery that does not run, counted, metered and reported.
pub(crate) enum Stopped {
    /// Denied (audited): dead-letter it.
    Deny(Decision),
    /// Not run now: back after `after`.
    Retry {
        after: Duration,
        cause: RequeueCause,
    },
}

/// The verdict on a delivery stopped by `facts`, carried out but for settling: a denial is
/// counted, metered and audited, a requeue counted, metered, logged and given its backoff.
/// The one place every verdict is counted, as it is made: the metrics follow the decisions
/// (and their JSON lines) one for one.
pub(crate) fn stopped<L, H>(
    shared: &Shared<L, H>,
    facts: &Facts,
    report: &Report,
    received_at: Instant,
) -> Stopped {
    let mut decision = report.decision.clone();
    let id = decision.message_id.clone().unwrap_or_default();
    let retry_key = format!("{}:{id}", decision.cti.as_deref().unwrap_or(""));
    match decide(facts) {
        Verdict::Deny(reason, detail) => {
            shared.meters.denied(reason, received_at.elapsed());
            shared.forget_retries(&retry_key);
            decision.allowed = false;
            decision.reason = Some(reason);
            decision.detail = (!detail.is_empty()).then(|| detail.into_owned());
            // Parked, not refused for good: `laissez approve` takes it from the dead-letter
            // queue (docs/spec.md §9, "Outcomes").
            decision.outcome =
                (reason == laissez_verify::Reason::ApprovalRequired).then_some(Outcome::Parked);
            audit_denial(shared, &decision, report);
            Stopped::Deny(decision)
        }
        Verdict::Requeue(reason, warning) => {
            shared.meters.undecided(received_at.elapsed());
            match warning {
                Some(warning) => tracing::warn!(
                    reason = reason.code(),
                    message_id = ?id,
                    cti = ?decision.cti,
                    warning = ?warning,
                    "laissez: requeueing without running"
                ),
                None => tracing::debug!(
                    reason = reason.code(),
                    message_id = ?id,
                    "laissez: requeueing without running"
                ),
            }
            let cause = RequeueCause::of(reason);
            shared.count_requeue(cause);
            let after = shared.next_retry_delay(retry_key);
            Stopped::Retry { after, cause }
        }
    }
}

/// A denial's count and its one audit event.
fn audit_denial<L, H>(shared: &Shared<L, H>, decision: &Decision, report: &Report) {
    let parked = decision.outcome == Some(Outcome::Parked);
    Counters::bump(if parked {
        &shared.counters.parked
    } else {
        &shared.counters.denied
    });
    let claims_verified = decision.cti.is_some();
    let (cti, agent) = match (&decision.cti, &decision.agent, &report.claimed) {
        (Some(c), Some(a), _) | (_, _, Some((c, a))) => (Some(c.as_str()), Some(a.as_str())),
        _ => (None, None),
    };
    audit::denied(&audit::Denied {
        allowed: false,
        outcome: if parked { "parked" } else { "denied" },
        // Always set by the caller.
        reason: decision.reason.unwrap_or(laissez_verify::Reason::Malformed),
        detail: decision.detail.as_deref().unwrap_or(""),
        message_id: decision.message_id.as_deref(),
        cti,
        agent,
        chain: &report.chain_agents,
        claims_verified,
        kid: report.kid,
        tool: decision.tool.as_deref(),
        class: decision.class,
        class_header: report.class_header,
        queue: &shared.config.queue,
    });
}

/// An allowed delivery, audited: its decision, what its handler gets, and its held use.
pub(crate) struct Granted<'l, L> {
    pub(crate) decision: Decision,
    pub(crate) authorized: Authorized,
    pub(crate) held: HeldUse<'l, L>,
}

/// Carries out an allowance: metered, its backoff forgotten, one audit event; the decision
/// and the handler's [`Authorized`] value.
pub(crate) fn granted<'l, L: UseLedger, H>(
    shared: &Shared<L, H>,
    admitted: Admitted<'l, L>,
    report: Report,
    received_at: Instant,
) -> Granted<'l, L> {
    shared.meters.allowed(received_at.elapsed());
    let mut decision = report.decision;
    let Admitted {
        held,
        kid,
        claims,
        tool,
        class,
        approved_by,
        amounts,
    } = admitted;
    let message_id = held.message_id().to_owned();
    let cti = hex::encode(claims.cti);
    shared.forget_retries(&format!("{cti}:{message_id}"));
    decision.allowed = true;
    decision.use_number = Some(held.use_number());
    audit::allowed(&audit::Allowed {
        allowed: true,
        message_id: &message_id,
        cti: &cti,
        kid,
        agent: &claims.sub,
        chain: &report.chain_agents,
        obo: claims.obo.as_deref(),
        sid: claims.sid.as_deref(),
        tool: &tool,
        class,
        class_header: report.class_header,
        use_number: held.use_number(),
        taken_over: held.taken_over(),
        approved_by: &approved_by,
        amounts: &amounts,
        queue: &shared.config.queue,
    });
    let authorized = Authorized {
        agent: claims.sub.clone(),
        chain: report.chain_agents,
        obo: claims.obo.clone(),
        session: claims.sid.clone(),
        tool,
        class,
        cti: claims.cti,
        kid,
        use_number: held.use_number(),
        taken_over: held.taken_over(),
        message_id,
        approved_by,
        claims,
    };
    Granted {
        decision,
        authorized,
        held,
    }
}

#[cfg(test)]
mod tests;
