//! Spending the gate's decision (`docs/spec.md` §8, §15): a call
//! [`laissez_verify::Verifier::decide`] allowed becomes one [`UseRequest`]; the ledger's
//! answer is a [`HeldUse`] (completed or released through its own methods) or [`NotGranted`],
//! whose reason and detail are the decision's terms. No front-end builds the ancestor list or
//! turns an outcome into a reason itself.

use std::time::Duration;

use laissez_verify::gate::Uses;
use laissez_verify::{ActionClass, Reason};

use crate::{
    Ancestor, Begin, Charge, Cti, LeaseToken, LedgerError, MAX_ANCESTORS, Outcome, UseLedger,
};

/// What a use of an allowed call asks the ledger for: the leaf's cti, max_uses and expiry
/// and every ancestor's, each expiry plus the caller's leeway; the budgets each of them
/// spends; the message id and the call it binds. No allocation.
#[derive(Debug, Clone, Copy)]
pub struct UseRequest<'a> {
    cti: &'a Cti,
    max_uses: u64,
    expires_at: u64,
    message_id: &'a str,
    tool: &'a str,
    class: ActionClass,
    lease: Duration,
    /// The leaf's charges (`docs/spec.md` §17).
    charges: &'a [Charge<'a>],
    /// The ancestors, root first: the first `depth` hold.
    ancestors: [Ancestor<'a>; MAX_ANCESTORS],
    depth: usize,
}

impl<'a> UseRequest<'a> {
    /// The use of `uses` (from [`laissez_verify::Allowed::uses`]) for the call `message_id`
    /// of `tool` in `class`, with this caller's `leeway` and a lease of `lease`.
    pub fn new(
        uses: &Uses<'a>,
        message_id: &'a str,
        tool: &'a str,
        class: ActionClass,
        leeway: u64,
        lease: Duration,
    ) -> Self {
        let leaf = uses.leaf();
        // Unused slots are never read: `depth` counts the ones that hold.
        let mut ancestors = [Ancestor {
            cti: leaf.cti(),
            max_uses: 1,
            expires_at: 0,
            charges: &[],
        }; MAX_ANCESTORS];
        let mut depth = 0;
        for (slot, claims) in ancestors.iter_mut().zip(uses.ancestors()) {
            *slot = Ancestor {
                cti: claims.cti(),
                max_uses: claims.max_uses(),
                expires_at: claims.exp().saturating_add(leeway),
                charges: uses.ancestor_charges(depth),
            };
            depth += 1;
        }
        UseRequest {
            cti: leaf.cti(),
            max_uses: leaf.max_uses(),
            expires_at: leaf.exp().saturating_add(leeway),
            message_id,
            tool,
            class,
            lease,
            charges: uses.leaf_charges(),
            ancestors,
            depth,
        }
    }

    /// The same use with `charges` as the budgets of the envelope at `link` of the chain
    /// (root 0, the leaf last), in place of the verifier's: for a caller that works out the
    /// amounts itself, and for tests. A `link` past the leaf changes nothing.
    #[must_use]
    pub fn with_charges(mut self, link: usize, charges: &'a [Charge<'a>]) -> Self {
        if link == self.depth {
            self.charges = charges;
        } else if let Some(ancestor) = self.ancestors[..self.depth].get_mut(link) {
            ancestor.charges = charges;
        }
        self
    }

    /// The ledger's [`Begin`] for this use.
    pub fn begin(&self) -> Begin<'_> {
        Begin {
            cti: self.cti,
            message_id: self.message_id,
            max_uses: self.max_uses,
            expires_at: self.expires_at,
            lease: self.lease,
            tool: self.tool,
            class: self.class,
            ancestors: &self.ancestors[..self.depth],
            charges: self.charges,
        }
    }

    /// Spends the use and holds it: a [`HeldUse`] to complete or release, or why not.
    pub async fn hold<'l, L: UseLedger>(
        &self,
        ledger: &'l L,
    ) -> Result<HeldUse<'l, L>, NotGranted> {
        let answer = ledger.begin(&self.begin()).await;
        match answer {
            Ok(Outcome::Granted {
                use_number,
                lease,
                taken_over,
            }) => Ok(HeldUse {
                ledger,
                cti: *self.cti,
                message_id: self.message_id.to_owned(),
                lease,
                use_number,
                taken_over,
            }),
            Ok(other) => Err(NotGranted::Refused(other)),
            Err(error) => Err(NotGranted::Failed(error)),
        }
    }

    /// Spends the use and completes it at once, when the decision is the action (the command
    /// line's `--ledger`, Python's `ledger=`): the use number, or why not.
    pub async fn spend_now<L: UseLedger>(&self, ledger: &L) -> Result<u64, NotGranted> {
        let held = self.hold(ledger).await?;
        let use_number = held.use_number();
        held.complete().await.map_err(NotGranted::Failed)?;
        Ok(use_number)
    }
}

/// A use the ledger granted, held under its lease until [`HeldUse::complete`] or
/// [`HeldUse::release`]. Dropped without either, the lease lapses: a redelivery takes the use
/// over then (or, at most once, finds it abandoned).
#[derive(Debug)]
#[must_use = "a held use is completed or released"]
pub struct HeldUse<'l, L> {
    ledger: &'l L,
    cti: Cti,
    message_id: String,
    lease: LeaseToken,
    use_number: u64,
    taken_over: bool,
}

impl<L: UseLedger> HeldUse<'_, L> {
    /// The use number, `1..=max_uses`.
    pub const fn use_number(&self) -> u64 {
        self.use_number
    }

    /// Whether this run took over an earlier lease.
    pub const fn taken_over(&self) -> bool {
        self.taken_over
    }

    /// The message id the use is held for.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The envelope's cti.
    pub const fn cti(&self) -> &Cti {
        &self.cti
    }

    /// The message ran: later begins answer `replayed`.
    pub async fn complete(self) -> Result<(), LedgerError> {
        self.ledger
            .complete(&self.cti, &self.message_id, &self.lease)
            .await
    }

    /// The message did not run to the end and comes back: the next begin takes the use over
    /// at once, with the same use number.
    pub async fn release(self) -> Result<(), LedgerError> {
        self.ledger
            .release(&self.cti, &self.message_id, &self.lease)
            .await
    }
}

/// Why the ledger granted no use: its answer, or its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotGranted {
    /// The ledger answered, and not with a grant.
    Refused(Outcome),
    /// The ledger failed; a grant is never assumed.
    Failed(LedgerError),
}

impl NotGranted {
    /// The contract's reason: [`Reason::requeues`] says whether the message waits.
    pub fn reason(&self) -> Reason {
        match self {
            NotGranted::Refused(outcome) => outcome.reason().unwrap_or(Reason::LedgerUnavailable),
            NotGranted::Failed(error) => error.reason(),
        }
    }

    /// What the reason does not say: a snake_case word, or the budget (`pattern:member`) a
    /// `budget_exhausted` names; empty when the reason says it all.
    pub fn detail(&self) -> &str {
        match self {
            NotGranted::Refused(outcome) => outcome.detail(),
            NotGranted::Failed(error) => error.detail(),
        }
    }
}

impl std::fmt::Display for NotGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotGranted::Refused(outcome) => f.write_str(match outcome {
                Outcome::Replayed => "this message already ran under this envelope",
                Outcome::OtherCall => {
                    "this message id was first spent on another tool or class; it is never \
                     spent on another call"
                }
                Outcome::Exhausted => "the envelope's uses are exhausted",
                Outcome::BudgetExhausted { budget, .. } => {
                    return write!(
                        f,
                        "this call's amount would take the budget {budget} past its limit"
                    );
                }
                Outcome::InFlight => {
                    "another worker holds this message under a lease; try again later"
                }
                Outcome::Abandoned => {
                    "an earlier at-most-once attempt of this message never completed; a person \
                     must decide whether it ran"
                }
                Outcome::Granted { .. } => "granted",
            }),
            NotGranted::Failed(LedgerError::Expired) => {
                f.write_str("the envelope has expired (by the ledger's clock)")
            }
            NotGranted::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for NotGranted {}

impl Outcome {
    /// The contract's reason for an answer that is not a grant; `None` for a grant.
    /// [`Outcome::OtherCall`] is `replayed` (detail `message_id_spent_on_another_call`): to
    /// the contract, a message id spent on one call and presented for another is a replay.
    pub const fn reason(&self) -> Option<Reason> {
        Some(match self {
            Outcome::Granted { .. } => return None,
            Outcome::InFlight => Reason::InFlight,
            Outcome::Replayed | Outcome::OtherCall => Reason::Replayed,
            Outcome::Exhausted => Reason::UsesExhausted,
            Outcome::BudgetExhausted { .. } => Reason::BudgetExhausted,
            Outcome::Abandoned => Reason::Abandoned,
        })
    }

    /// What the reason does not say: `message_id_spent_on_another_call` for
    /// [`Outcome::OtherCall`], the budget as `pattern:member` (`billing.refund:amount`) for
    /// [`Outcome::BudgetExhausted`], empty otherwise.
    pub fn detail(&self) -> &str {
        match self {
            Outcome::OtherCall => "message_id_spent_on_another_call",
            Outcome::BudgetExhausted { budget, .. } => budget,
            _ => "",
        }
    }
}

impl LedgerError {
    /// The contract's reason when this error answers a `begin`: `expired` when the ledger's
    /// clock says the envelope expired; `malformed` for a request the ledger refuses
    /// (retrying cannot help); `ledger_unavailable` otherwise (the message waits).
    pub const fn reason(&self) -> Reason {
        match self {
            LedgerError::Expired => Reason::Expired,
            LedgerError::InvalidMessageId | LedgerError::InvalidRequest(_) => Reason::Malformed,
            _ => Reason::LedgerUnavailable,
        }
    }

    /// What the reason does not say, for a refused request; empty otherwise (the error's
    /// Display says what went wrong).
    pub const fn detail(&self) -> &'static str {
        match self {
            LedgerError::InvalidMessageId => "message_id_refused_by_ledger",
            LedgerError::InvalidRequest(_) => "request_refused_by_ledger",
            _ => "",
        }
    }
}
