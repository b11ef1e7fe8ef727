//! Messages parked for approval (`docs/spec.md` §12), the broker side of `laissez approve`.
//!
//! A worker denies a call whose class needs approval and has too few `approval_required`,
//! and rejects it to its queue's dead-letter exchange: the message is *parked* in the
//! dead-letter queue with its properties and headers intact, and the broker adds `x-death`,
//! whose first entry names the queue it came from. A person then:
//!
//! 1. [`take`]s a parked message (basic.get, not acknowledged: it stays the broker's until
//!    acked, and comes back to the dead-letter queue if the connection drops);
//! 2. has it [examined](Examiner::examine) as the worker would (headers, catalogue,
//!    envelope, invocation, approvals, and the revocation records the worker holds when the
//!    examiner is given them, [`Examiner::with_revocations`]), then the use ledger read
//!    without spending ([`spent`]) — only a message whose decision is `approval_required`
//!    and whose use is still to spend is offered; others are [left](Parked::leave) where
//!    they are;
//! 3. signs an approval of exactly that call, adds it with [`with_approval`](crate::with_approval);
//! 4. [`republish`]es it through the default exchange to the work queue the person named,
//!    mandatory and confirmed: message id, body, other properties and headers unchanged —
//!    only when [`Parked::dead_lettered_from`] that queue, rejected: `x-death` is a header
//!    like any other, and a publisher can put a message straight into a dead-letter queue
//!    with one that names a queue of its own choosing;
//! 5. and only once the broker confirmed the copy, [acks](Parked::ack) the parked one.
//!
//! Messages looked at and not approved are [held](Parked::hold) by their delivery tag alone,
//! their properties and body dropped, so that looking through a queue of large messages takes
//! the memory of one of them.
//!
//! Dying between 4 and 5 leaves two copies, never none: the parked copy comes back to the
//! dead-letter queue, and whichever copy a worker runs second is `replayed` by the ledger
//! (a destructive step runs at most once).

use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{
    ActionClass, Denial, Policy, Reason, ToolCatalogue as _, TrustedKey, Verifier,
};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::AMQPValue;
use lapin::{Acker, BasicProperties, Channel};

#[cfg(doc)]
use crate::confirm::PublishError;
use crate::confirm::publish_confirmed;
use crate::error::AmqpError;
use crate::headers::{self, HeaderError};
use crate::revocations::SharedRevocations;
use laissez_ledger::{AnyLedger, LedgerError, UseState};

/// What the use ledger says of a pending call, read without spending anything: `None` when
/// the worker would be granted its use once approved, else the reason it would deny it and
/// a detail, as `begin` would answer (`docs/spec.md` §8, §13): `replayed` when this message
/// already completed under the envelope, `abandoned` when its at-most-once lease expired,
/// `uses_exhausted` when the envelope, or an ancestor of it, has granted all its uses to
/// other messages. A message the ledger holds as in flight or released is still offered: its
/// use is its own, and the worker takes it over. Budgets are not read here: a call refused
/// only for a budget is offered, and the worker denies it `budget_exhausted`.
pub async fn spent(
    ledger: &AnyLedger,
    pending: &PendingCall,
) -> Result<Option<(Reason, String)>, LedgerError> {
    let ctis: Vec<[u8; 16]> = pending.links.iter().map(|l| l.cti).collect();
    let Some((leaf, ancestors)) = ctis.split_last() else {
        return Ok(None);
    };
    let usage = ledger.usage_in(ancestors, leaf).await?;
    let mine = usage
        .messages
        .iter()
        .find(|m| m.message_id == pending.message_id);
    match mine.map(|m| m.state) {
        Some(UseState::Completed) => {
            return Ok(Some((
                Reason::Replayed,
                "this message already ran under this envelope".to_owned(),
            )));
        }
        Some(UseState::Abandoned) => {
            return Ok(Some((
                Reason::Abandoned,
                "its at-most-once use expired without completing".to_owned(),
            )));
        }
        // Its own use, granted before: the worker takes it over (or says in_flight).
        Some(_) => return Ok(None),
        None => {}
    }
    let leaf_link = pending.links.last().map_or(1, |l| l.max_uses);
    if usage.granted >= leaf_link {
        return Ok(Some((
            Reason::UsesExhausted,
            format!(
                "{} of {leaf_link} uses granted to other messages",
                usage.granted
            ),
        )));
    }
    // Each ancestor counts its descendants' uses with its own (`docs/spec.md` §13).
    for (n, link) in pending.links.iter().enumerate().take(ancestors.len()) {
        let above = ledger.usage_in(&ctis[..n], &link.cti).await?;
        if above.granted >= link.max_uses {
            return Ok(Some((
                Reason::UsesExhausted,
                format!(
                    "the delegating envelope {n} (root 0) has granted {} of its {} uses",
                    above.granted, link.max_uses
                ),
            )));
        }
    }
    Ok(None)
}

/// What the worker would decide about a parked message, as far as it can be known without
/// the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// One value per message examined, never kept in a collection: boxing `Pending` would only
// add an allocation (and change a public variant).
#[allow(clippy::large_enum_variant)]
pub enum Examined {
    /// `approval_required`: the call needs more approvals. The one kind offered for approval.
    Pending(PendingCall),
    /// The call has what it needs: the worker would run it (unless the ledger says it ran).
    Allowed,
    /// Denied for another reason (or `approval_required` that no approval can lift: the
    /// worker's policy requires approval and the envelope has no rule for the class). The
    /// detail says more, as the worker's audit event would.
    Denied {
        /// The reason.
        reason: Reason,
        /// What the reason does not say, possibly empty.
        detail: String,
    },
}

/// A parked call that needs more approvals: what a person is shown before approving it.
/// The agent, obo, session, tool and message id are what the envelope's issuer and the
/// publisher chose: escape them before showing them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingCall {
    /// The envelope, raw bytes (the approval names it by its SHA-256); for a delegated
    /// envelope, the leaf.
    pub envelope: Vec<u8>,
    /// For a delegated envelope, its ancestors, root first (the `laissez-chain` header);
    /// empty when not delegated. Any of their approval rules may be what needs approving.
    pub chain: Vec<Vec<u8>>,
    /// The agent (`sub`).
    pub agent: String,
    /// On behalf of whom (`obo`).
    pub obo: Option<String>,
    /// The session (`sid`).
    pub session: Option<String>,
    /// What each envelope of the chain names, root first, the leaf last (one entry when not
    /// delegated): a person is shown who delegated to whom, and which envelope named the
    /// `obo` and `sid` the call runs under.
    pub links: Vec<LinkClaims>,
    /// The envelope id.
    pub cti: [u8; 16],
    /// The tool.
    pub tool: String,
    /// Its class, the catalogue's.
    pub class: ActionClass,
    /// The message id.
    pub message_id: String,
    /// The body's size in bytes.
    pub body_len: usize,
    /// How many approvals came with the message (counting or not).
    pub attached: usize,
    /// How many of them count for the examiner's approvers.
    pub counted: u8,
    /// How many must count.
    pub needed: u8,
    /// Whether an approval by the examiner's own key already counts: another from it would
    /// not count twice.
    pub already_approved: bool,
}

/// What one envelope of a chain names (verified, as the worker would verify it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkClaims {
    /// The agent (`sub`).
    pub agent: String,
    /// On behalf of whom (`obo`).
    pub obo: Option<String>,
    /// The session (`sid`).
    pub session: Option<String>,
    /// The envelope id (`cti`): the ledger counts its uses under the path of ctis from the
    /// root down to it.
    pub cti: [u8; 16],
    /// Its use limit (`max_uses`).
    pub max_uses: u64,
    /// When it expires (`exp`, Unix seconds).
    pub exp: u64,
}

/// Examines parked messages as a worker of one audience would.
#[derive(Debug, Clone)]
pub struct Examiner {
    audience: String,
    trusted_keys: Vec<TrustedKey>,
    approvers: Vec<TrustedKey>,
    me: Option<TrustedKey>,
    tools: OwnedCatalogue,
    policy: Policy,
    revocations: Option<SharedRevocations>,
}

impl Examiner {
    /// An examiner for `audience` trusting `trusted_keys`, counting approvals of
    /// `approvers`, with the worker's tool catalogue and policy; `me`, the person's own
    /// public key, to tell whether they already approved. Refused when an approver key, or
    /// `me`, is also a trusted issuer key (what is wrong is said).
    pub fn new(
        audience: impl Into<String>,
        trusted_keys: Vec<TrustedKey>,
        approvers: Vec<TrustedKey>,
        me: Option<TrustedKey>,
        tools: OwnedCatalogue,
        policy: Policy,
    ) -> Result<Self, AmqpError> {
        let audience = audience.into();
        let base = Verifier::new(&trusted_keys, &audience);
        if base.with_approvers(&approvers).is_err() {
            return Err(AmqpError::Config(
                "an approver key is also a trusted issuer key: an issuer never approves".into(),
            ));
        }
        if let Some(me) = &me
            && base.with_approvers(std::slice::from_ref(me)).is_err()
        {
            return Err(AmqpError::Config(format!(
                "the approving key {} is a trusted issuer key: an issuer never approves its own calls",
                me.kid()
            )));
        }
        Ok(Examiner {
            audience,
            trusted_keys,
            approvers,
            me,
            tools,
            policy,
            revocations: None,
        })
    }

    /// The same examiner, deciding with the revocation records `revocations` holds (those a
    /// [`RevocationFollower`](crate::RevocationFollower) read from the stream
    /// the worker reads): a parked call from a revoked envelope, agent, session or key is
    /// then `revoked`, as the worker would say, and never offered.
    pub fn with_revocations(mut self, revocations: SharedRevocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// What the worker would decide about a message with `properties` and `body` at `now`
    /// (Unix seconds), in the order of `docs/spec.md` §2, the ledger's rows aside.
    pub fn examine(&self, properties: &BasicProperties, body: &[u8], now: u64) -> Examined {
        let denied = |reason: Reason, detail: &str| Examined::Denied {
            reason,
            detail: detail.to_owned(),
        };
        let malformed = |e: HeaderError| denied(Reason::Malformed, e.detail());
        let read = match headers::read_headers(properties) {
            Ok(read) => read,
            Err(e) => return malformed(e),
        };
        let links = read.links();
        let approvals: Vec<&[u8]> = read.approvals.iter().map(|a| &a[..]).collect();
        let presented = match read.presented(&links, &approvals, body, &self.tools) {
            Ok(presented) => presented,
            Err(e) => return malformed(e),
        };
        // A tool the catalogue does not list is `unknown_tool`, as the worker says it.
        let Some(class) = self.tools.class_of(read.tool) else {
            return denied(Reason::UnknownTool, "");
        };
        let mut base = Verifier::new(&self.trusted_keys, &self.audience).with_policy(self.policy);
        if let Some(revocations) = &self.revocations {
            base = base.with_revocations(revocations);
        }
        let verifier = base.with_approvers(&self.approvers).unwrap_or(base);
        // Re-checked by the gate as the worker checks it, chain included (`docs/spec.md` §13,
        // §15): the call runs under the leaf, and every approval rule of the chain holds.
        let (chain, verified) = match verifier.decide(&presented, now) {
            Ok(_) => return Examined::Allowed,
            Err(refused) => match (refused.chain(), *refused.denial()) {
                (Some(chain), Denial::ApprovalRequired { counted, needed }) if needed > 0 => {
                    (*chain, (counted, needed))
                }
                (_, denial) => return denied(denial.reason(), &denial.detail().to_string()),
            },
        };
        let claims = chain.leaf().claims();
        let already_approved = self.me.as_ref().is_some_and(|me| {
            let mine = base
                .with_approvers(std::slice::from_ref(me))
                .unwrap_or(base);
            match mine.decide(&presented, now) {
                Ok(allowed) => allowed.approvers().as_slice().contains(&me.kid()),
                Err(refused) => matches!(
                    refused.denial(),
                    Denial::ApprovalRequired { counted, .. } if *counted > 0
                ),
            }
        });
        Examined::Pending(PendingCall {
            envelope: read.envelope.to_vec(),
            chain: read.chain.iter().map(|a| a.to_vec()).collect(),
            agent: claims.sub().to_owned(),
            obo: claims.obo().map(str::to_owned),
            session: claims.sid().map(str::to_owned),
            links: chain
                .iter()
                .map(|e| {
                    let c = e.claims();
                    LinkClaims {
                        agent: c.sub().to_owned(),
                        obo: c.obo().map(str::to_owned),
                        session: c.sid().map(str::to_owned),
                        cti: *c.cti(),
                        max_uses: c.max_uses(),
                        exp: c.exp(),
                    }
                })
                .collect(),
            cti: *claims.cti(),
            tool: read.tool.to_owned(),
            class,
            message_id: read.message_id.to_owned(),
            body_len: body.len(),
            attached: approvals.len(),
            counted: verified.0,
            needed: verified.1,
            already_approved,
        })
    }
}

/// A message taken from a dead-letter queue and not yet acknowledged.
#[derive(Debug)]
pub struct Parked {
    /// Its properties, headers included, as parked.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Vec<u8>,
    acker: Acker,
}

/// Takes the next message of `queue` without acknowledging it (basic.get): `None` when the
/// queue is empty. Until [`Parked::ack`] or [`Parked::leave`], the message is held by this
/// channel; it goes back to the queue if the channel closes.
pub async fn take(channel: &Channel, queue: &str) -> Result<Option<Parked>, AmqpError> {
    let got = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?;
    Ok(got.map(|m| {
        let delivery = m.delivery;
        Parked {
            properties: delivery.properties,
            body: delivery.data,
            acker: delivery.acker,
        }
    }))
}

impl Parked {
    /// The message id, if any.
    pub fn message_id(&self) -> Option<&str> {
        headers::message_id(&self.properties)
    }

    /// The broker's most recent death record, `x-death[0]`: its `queue` and `reason`, as
    /// bytes (each empty when absent or not text). `None` without an `x-death` array of
    /// tables. A publisher can write this header itself: it says where the message claims to
    /// come from, not where a person wants it to go.
    pub fn first_death(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let deaths = self.properties.headers().as_ref()?.inner().get("x-death")?;
        let AMQPValue::FieldArray(deaths) = deaths else {
            return None;
        };
        let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
            return None;
        };
        let text = |name: &str| match first.inner().get(name) {
            Some(AMQPValue::LongString(s)) => s.as_bytes().to_vec(),
            Some(AMQPValue::ShortString(s)) => s.as_str().as_bytes().to_vec(),
            _ => Vec::new(),
        };
        Some((text("queue"), text("reason")))
    }

    /// Whether the broker's most recent death record says the message was rejected from
    /// exactly `queue` (byte for byte: `rt-apq` followed by a zero-width space is another
    /// queue): the one condition under which `laissez approve` puts it back in `queue`.
    pub fn dead_lettered_from(&self, queue: &str) -> bool {
        self.first_death()
            .is_some_and(|(from, reason)| from == queue.as_bytes() && reason == b"rejected")
    }

    /// Keeps only what leaves the message parked later: its delivery tag. The properties and
    /// body are dropped.
    pub fn hold(self) -> Held {
        Held { acker: self.acker }
    }

    /// Acknowledges the parked copy: it leaves the dead-letter queue. Only once its
    /// replacement was confirmed.
    pub async fn ack(self) -> Result<(), AmqpError> {
        self.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// Leaves the message parked: back to its queue (nack with requeue).
    pub async fn leave(self) -> Result<(), AmqpError> {
        self.hold().leave().await
    }
}

/// A message taken from a dead-letter queue, not acknowledged, of which only the delivery
/// tag is kept ([`Parked::hold`]).
#[derive(Debug)]
pub struct Held {
    acker: Acker,
}

impl Held {
    /// Leaves the message parked: back to its queue (nack with requeue).
    pub async fn leave(self) -> Result<(), AmqpError> {
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        self.acker.nack(options).await?;
        Ok(())
    }
}

/// Publishes `body` with `properties` through the default exchange to `queue`, mandatory,
/// and waits for the broker's confirm. `channel` must be in confirm mode. A copy no queue
/// took is [`PublishError::Unroutable`], one the broker refused [`PublishError::Nacked`],
/// and a channel without confirms [`PublishError::ConfirmsOff`] (all as [`AmqpError::Publish`]).
pub async fn republish(
    channel: &Channel,
    queue: &str,
    properties: BasicProperties,
    body: &[u8],
) -> Result<(), AmqpError> {
    publish_confirmed(channel, "", queue, properties, body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use laissez_ledger::{Ancestor, Begin, MemoryLedger, Outcome};

    use super::*;

    const ROOT: [u8; 16] = [1; 16];
    const LEAF: [u8; 16] = [2; 16];
    const SIBLING: [u8; 16] = [3; 16];
    const FAR: u64 = 4_000_000_000;

    fn link(cti: [u8; 16], max_uses: u64) -> LinkClaims {
        LinkClaims {
            agent: "a".into(),
            obo: None,
            session: None,
            cti,
            max_uses,
            exp: FAR,
        }
    }

    /// A call of `message_id` under `links` (root first), awaiting one approval.
    fn pending(links: Vec<LinkClaims>, message_id: &str) -> PendingCall {
        PendingCall {
            envelope: Vec::new(),
            chain: Vec::new(),
            agent: "a".into(),
            obo: None,
            session: None,
            cti: links.last().map_or([0; 16], |l| l.cti),
            links,
            tool: "crm.drop".into(),
            class: ActionClass::Destructive,
            message_id: message_id.into(),
            body_len: 0,
            attached: 0,
            counted: 0,
            needed: 1,
            already_approved: false,
        }
    }

    /// Spends a use of `cti` (under `ancestors`, each with `max_uses`) for `message_id`.
    fn spend(ledger: &MemoryLedger, ancestors: &[([u8; 16], u64)], cti: &[u8; 16], id: &str) {
        let ancestors: Vec<Ancestor<'_>> = ancestors
            .iter()
            .map(|(cti, max_uses)| Ancestor {
                cti,
                max_uses: *max_uses,
                expires_at: FAR,
                charges: &[],
            })
            .collect();
        let outcome = ledger
            .begin_blocking(&Begin {
                cti,
                message_id: id,
                max_uses: 3,
                expires_at: FAR,
                lease: Duration::from_secs(60),
                tool: "crm.drop",
                class: ActionClass::Destructive,
                ancestors: &ancestors,
                charges: &[],
            })
            .unwrap();
        let Outcome::Granted { lease, .. } = outcome else {
            panic!("{outcome:?}");
        };
        ledger.complete_blocking(cti, id, &lease).unwrap();
    }

    fn reason(ledger: MemoryLedger, call: &PendingCall) -> Option<Reason> {
        let ledger = AnyLedger::Memory(ledger);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(spent(&ledger, call)).unwrap().map(|(r, _)| r)
    }

    #[test]
    fn a_use_left_is_offered_and_a_spent_or_completed_one_is_not() {
        let call = pending(vec![link(LEAF, 2)], "m");
        assert_eq!(reason(MemoryLedger::new(), &call), None);
        // One use of two spent on another message: one is left.
        let ledger = MemoryLedger::new();
        spend(&ledger, &[], &LEAF, "other-1");
        assert_eq!(reason(ledger, &call), None);
        // Both spent on other messages.
        let ledger = MemoryLedger::new();
        spend(&ledger, &[], &LEAF, "other-1");
        spend(&ledger, &[], &LEAF, "other-2");
        assert_eq!(reason(ledger, &call), Some(Reason::UsesExhausted));
        // This very message already ran: replayed, whatever is left.
        let ledger = MemoryLedger::new();
        spend(&ledger, &[], &LEAF, "m");
        assert_eq!(reason(ledger, &call), Some(Reason::Replayed));
    }

    #[test]
    fn an_ancestor_whose_uses_a_sibling_spent_stops_the_offer() {
        // The root allows one use in all; a sibling delegate spent it.
        let call = pending(vec![link(ROOT, 1), link(LEAF, 3)], "m");
        assert_eq!(reason(MemoryLedger::new(), &call), None);
        let ledger = MemoryLedger::new();
        spend(&ledger, &[(ROOT, 1)], &SIBLING, "other");
        assert_eq!(reason(ledger, &call), Some(Reason::UsesExhausted));
    }
}
