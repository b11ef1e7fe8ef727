//! The laissez use ledger: makes an envelope's `max_uses` hold under redelivery, races,
//! crashes and many workers.
//!
//! A use is spent per distinct `(cti, message_id)`, and every backend keys it by the envelope's
//! path of ctis from its chain's root down to it (just the cti for a root): a child carrying a
//! stranger's or a sibling's cti never reaches their count (`docs/spec.md` §8). For each such
//! key the ledger knows one of:
//! unknown, in flight (reserved by a worker under a lease), released (the holder gave the lease
//! back without finishing), completed, or abandoned (an at-most-once lease expired, or a message
//! was taken over more than [`MAX_TAKEOVERS`] times). Each key also remembers the call it was
//! first granted for (tool and class): it is never spent on another.
//! [`UseLedger::begin`] answers an [`Outcome`]; [`UseLedger::complete`] marks the key done;
//! [`UseLedger::release`] ends a lease early and keeps the use.
//!
//! Never more than `max_uses` distinct message ids are granted for one envelope, and a grant is
//! durable before `begin` returns. A use also spends the call's amounts on the budgets of its
//! envelope and ancestors ([`Begin::charges`], `docs/spec.md` §17), in the same atomic step:
//! no budget's sum ever passes its limit, and a message is charged once. Backends:
//!
//! - [`MemoryLedger`]: one process, for tests and single-process use; nothing survives it.
//! - `RedbLedger` (feature `redb`, default): an embedded file, shared safely by several
//!   processes on one host, with group commit.
//! - `RedisLedger` (feature `redis`): one atomic Lua script per operation, hash-tagged by
//!   chain, failing closed; one server or a Redis Cluster, over TLS or not.
//! - `AnyLedger` (features `redb` and `redis`): one of the above, chosen at run time, opened
//!   from a `LedgerLocation` (a file's path or a Redis URL, never shown with its password).
//!
//! See `docs/ledger.md` in the repository for the full design.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod clock;
mod error;
mod inline;
mod memory;
mod path;
pub mod redact;
mod revocations;
mod spend;
mod state;

#[cfg(all(feature = "redb", feature = "redis"))]
mod any;
#[cfg(all(feature = "redb", feature = "redis"))]
mod location;
#[cfg(feature = "redb")]
mod redb_ledger;
#[cfg(feature = "redis")]
mod redis_ledger;

use std::future::Future;
use std::time::Duration;

#[cfg(all(feature = "redb", feature = "redis"))]
pub use any::AnyLedger;
#[cfg(feature = "test-clock")]
pub use clock::TestClock;
pub use error::LedgerError;
pub use laissez_verify::ActionClass;
#[cfg(all(feature = "redb", feature = "redis"))]
pub use location::LedgerLocation;
pub use memory::MemoryLedger;
#[cfg(feature = "redb")]
pub use redb_ledger::{RedbLedger, RedbOptions};
#[cfg(feature = "redis")]
pub use redis_ledger::{RedisLedger, RedisOptions, RedisTls, RedisUrl};
pub use revocations::{
    Kept, MAX_KEPT_RECORDS, MAX_PROOF_LEN, RECORD_GRACE_SECS, RevocationStore, StreamMark, is_live,
    record_digest,
};
pub use spend::{HeldUse, NotGranted, UseRequest};

/// An envelope's CWT id (`cti`): the ledger counts uses per envelope, under its path of ctis
/// from its chain's root.
pub type Cti = [u8; 16];

/// How long, in seconds, every backend keeps a cti's count after the latest `expires_at` it was
/// asked under: the contract's largest leeway ([`laissez_verify::policy::MAX_LEEWAY`]).
///
/// Why: workers sharing a ledger may run different leeways, and `expires_at` is `exp + leeway`
/// of whoever asked. Were a count dropped at one caller's `expires_at`, a caller with a larger
/// leeway, still inside its own window, would find no count and be granted afresh, exceeding
/// `max_uses`. Keeping it that much longer covers a caller with any valid leeway.
pub const RETENTION_GRACE_SECS: u64 = laissez_verify::policy::MAX_LEEWAY;

/// The longest message id the ledger accepts, in bytes: the wire's, defined once in
/// `laissez_verify::wire`.
pub use laissez_verify::wire::MAX_MESSAGE_ID_LEN;

/// How many times one message may be taken over (after an expired lease or a release) before
/// the ledger gives up on it: the next take-over answers [`Outcome::Abandoned`] and the message
/// is recorded as abandoned. A message therefore runs at most `1 + MAX_TAKEOVERS` times.
///
/// Why: a handler that fails (or a `--exec` command that exits non-zero) and is requeued, or a
/// worker that keeps dying on one message, would otherwise re-run the same message id without
/// bound, each time under the same use. The bound turns a poison message into a dead-lettered
/// one after a few attempts, while still letting a crash or two be retried.
pub const MAX_TAKEOVERS: u32 = 3;

/// What a worker asks for before it runs a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begin<'a> {
    /// The envelope's cti.
    pub cti: &'a Cti,
    /// The message's id: non-empty, at most [`MAX_MESSAGE_ID_LEN`] bytes, else
    /// [`LedgerError::InvalidMessageId`].
    pub message_id: &'a str,
    /// The envelope's use limit; at least 1.
    pub max_uses: u64,
    /// Unix seconds: the envelope's exp plus this caller's leeway (at most
    /// [`laissez_verify::policy::MAX_LEEWAY`]). A request whose `expires_at` is already past is refused
    /// with [`LedgerError::Expired`]. Entries are kept [`RETENTION_GRACE_SECS`] past the latest
    /// `expires_at` they were asked under, then dropped.
    pub expires_at: u64,
    /// How long the granted worker holds the message before a redelivery may take it over.
    /// Must be non-zero.
    pub lease: Duration,
    /// The tool this message calls. The first grant binds the message id to it: a later begin
    /// naming another tool answers [`Outcome::OtherCall`].
    pub tool: &'a str,
    /// The tool's action class, from the worker's own tool catalogue (never the publisher's
    /// say). Bound by the first grant like `tool`. [`ActionClass::Destructive`] runs at most
    /// once: an expired lease answers [`Outcome::Abandoned`] instead of being taken over.
    pub class: ActionClass,
    /// For a delegated envelope, its ancestors, root first (at most three; empty when not
    /// delegated). A new use spends one use of each of them too, in the same atomic step: an
    /// ancestor counts distinct `(path, message_id)` pairs of all its descendants and itself
    /// together, a path being the ctis from the root down to the envelope; when any of them
    /// has none left the answer is [`Outcome::Exhausted`] and nothing is spent (`docs/spec.md`
    /// §13). The ctis of a chain must differ, else [`LedgerError::InvalidRequest`].
    pub ancestors: &'a [Ancestor<'a>],
    /// The leaf's budgets this call spends, with its amounts (`docs/spec.md` §17): a new use
    /// adds each amount to the leaf's sum under the charge's index, in the same atomic step
    /// as the use, or answers [`Outcome::BudgetExhausted`] and spends nothing. Empty when no
    /// budget applies. At most [`MAX_BUDGETS`], each index below it and named once, each
    /// limit 1 to [`MAX_AMOUNT`] and each amount at most that, else
    /// [`LedgerError::InvalidRequest`].
    pub charges: &'a [Charge<'a>],
}

/// One ancestor of a delegated envelope, as [`Begin::ancestors`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor<'a> {
    /// The ancestor's cti.
    pub cti: &'a Cti,
    /// Its use limit; at least 1.
    pub max_uses: u64,
    /// Its exp plus the caller's leeway, as [`Begin::expires_at`].
    pub expires_at: u64,
    /// Its budgets this call spends, as [`Begin::charges`]: charged only when the ancestor's
    /// use is (a `(leaf path, message id)` new to it), so an ancestor's budget sums distinct
    /// pairs, as its count does.
    pub charges: &'a [Charge<'a>],
}

/// One budget a use spends: the gate's own type (`laissez_verify::gate::Charge`), its
/// `index` naming the budget within its envelope (0 to [`MAX_BUDGETS`] - 1), its `limit`
/// (1 to [`MAX_AMOUNT`]) and this call's `amount` (0 to [`MAX_AMOUNT`]).
pub use laissez_verify::gate::Charge;

/// The most budgets one envelope has, and the largest limit and amount, so that every sum is
/// exact in a double (Redis's Lua numbers): defined once in `laissez_verify::wire`.
pub use laissez_verify::wire::budget::{MAX_AMOUNT, MAX_BUDGETS};

/// The most ancestors a [`Begin`] may list: a chain holds at most four envelopes (defined once
/// in `laissez_verify::wire`).
pub use laissez_verify::wire::MAX_ANCESTORS;

/// Identifies the holder of a lease. Random, so that a worker can only complete or release the
/// lease it was granted.
///
/// A lease granted for a delegated envelope also carries the ctis of its ancestors, root first
/// ([`LeaseToken::ancestors`]): every backend keys a use by the path of ctis from the root down
/// to its envelope (`docs/spec.md` §8), and finds the use by it. Two tokens are equal when
/// their 16 bytes are.
#[derive(Clone, Copy)]
pub struct LeaseToken {
    bytes: [u8; 16],
    ancestors: [Cti; MAX_ANCESTORS],
    /// How many of `ancestors` hold, 0 to [`MAX_ANCESTORS`].
    depth: u8,
}

impl PartialEq for LeaseToken {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for LeaseToken {}

impl std::hash::Hash for LeaseToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl LeaseToken {
    /// A token from its 16 bytes, as a backend reads it back from storage. Only the token a
    /// `begin` granted settles that lease: any other is [`LedgerError::LeaseNotHeld`].
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self {
            bytes,
            ancestors: [[0; 16]; MAX_ANCESTORS],
            depth: 0,
        }
    }

    /// The token's 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// The root cti of the chain the use was granted under, for a delegated envelope; `None`
    /// otherwise (and for a token rebuilt with [`LeaseToken::from_bytes`]: settle a delegated
    /// use with the token `begin` returned).
    pub fn root(&self) -> Option<&Cti> {
        self.ancestors().first()
    }

    /// The ctis of the ancestors of the envelope the use was granted to, root first: empty
    /// when it was not delegated (and for a token rebuilt with [`LeaseToken::from_bytes`]).
    pub fn ancestors(&self) -> &[Cti] {
        &self.ancestors[..usize::from(self.depth).min(MAX_ANCESTORS)]
    }

    /// The same token, routed to the use of an envelope under `ancestors` (root first; at
    /// most [`MAX_ANCESTORS`], as `normalize` checked).
    pub(crate) fn with_ancestors(mut self, ancestors: &[Ancestor<'_>]) -> Self {
        self.depth = 0;
        for (slot, ancestor) in self.ancestors.iter_mut().zip(ancestors) {
            *slot = *ancestor.cti;
            self.depth += 1;
        }
        self
    }

    /// A fresh random token from the operating system's generator.
    pub fn random() -> Result<Self, LedgerError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| LedgerError::unavailable("os", e))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The token as 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }
}

impl std::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeaseToken({})", self.to_hex())
    }
}

/// What [`UseLedger::begin`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Run the message. The use is spent durably before this is returned.
    Granted {
        /// This message's use number, `1..=max_uses`; the same on every take-over.
        use_number: u64,
        /// The lease to pass to `complete` or `release`.
        lease: LeaseToken,
        /// A redelivery took over an expired or released lease (same use number).
        taken_over: bool,
    },
    /// Another worker holds the lease: requeue later, do not run.
    InFlight,
    /// This message completed before under this envelope: never run it again.
    Replayed,
    /// `max_uses` distinct messages were already granted.
    Exhausted,
    /// This message's amount would take a budget of the chain past its limit: nothing was
    /// spent (`docs/spec.md` §17). Checked after every envelope's uses, so a call refused on
    /// both is [`Outcome::Exhausted`].
    BudgetExhausted {
        /// The envelope whose budget it is, by its place in the chain: 0 for the root (or an
        /// envelope that is not delegated), the number of ancestors for the leaf.
        link: u8,
        /// The budget's place in that envelope's list ([`Charge::index`]).
        index: u8,
        /// The budget as `pattern:member`, what [`Outcome::detail`] reports.
        budget: String,
    },
    /// Dead-letter, never run: an at-most-once (destructive) message whose earlier lease
    /// expired without completing, or a message already taken over [`MAX_TAKEOVERS`] times.
    Abandoned,
    /// This message id was first granted for another tool or class: never run. A message id
    /// spent on one call is never spent on another, so [`Outcome::reason`] reports it as
    /// `replayed`, the contract's reason.
    OtherCall,
}

/// The state of one `(cti, message_id)` the ledger knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UseState {
    /// A worker holds it under a lease (which may have expired without a redelivery yet).
    InFlight,
    /// The holder released it; the next begin takes it over.
    Released,
    /// Done: later begins answer [`Outcome::Replayed`].
    Completed,
    /// An at-most-once lease expired, or the message was taken over [`MAX_TAKEOVERS`] times:
    /// later begins answer [`Outcome::Abandoned`].
    Abandoned,
}

/// One message's use, as reported by the backends' `usage` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUse {
    /// The message id.
    pub message_id: String,
    /// Its use number.
    pub use_number: u64,
    /// Its state.
    pub state: UseState,
}

/// What the ledger holds for one cti: for audits, the CLI and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// How many distinct messages were granted a use.
    pub granted: u64,
    /// Every message the ledger still holds for this cti, ordered by use number.
    pub messages: Vec<MessageUse>,
}

/// A use ledger. Every method is atomic with respect to every other caller of the same store,
/// in this process or another.
pub trait UseLedger: Send + Sync {
    /// Reserve this message's use, or say why not. A grant is durable before this returns.
    fn begin(&self, req: &Begin<'_>) -> impl Future<Output = Result<Outcome, LedgerError>> + Send;

    /// Mark the message done: later begins answer [`Outcome::Replayed`]. Fails with
    /// [`LedgerError::LeaseNotHeld`] if `lease` is not the current holder's. Completing twice
    /// with the same lease is not an error.
    fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The handler asked to requeue: end the lease early and keep the use. The next begin takes
    /// it over at once with the same use number, even when at most once, since the holder said
    /// it did not finish (within [`MAX_TAKEOVERS`]).
    fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Checks a request before any backend sees it, and brings its numbers into the range every
/// backend counts exactly (Lua numbers are doubles). Clamping only lowers them, and 2^53 - 1
/// uses or the year 285,000 are never reached, so an envelope's limit is never exceeded.
pub(crate) fn normalize<'a>(req: &Begin<'a>) -> Result<Begin<'a>, LedgerError> {
    validate_message_id(req.message_id)?;
    if req.max_uses == 0 {
        return Err(LedgerError::InvalidRequest("max_uses must be at least 1"));
    }
    if req.lease.is_zero() {
        return Err(LedgerError::InvalidRequest("lease must be non-zero"));
    }
    if req.lease > Duration::from_secs(365 * 24 * 3600) {
        return Err(LedgerError::InvalidRequest("lease longer than a year"));
    }
    if req.ancestors.len() > MAX_ANCESTORS {
        return Err(LedgerError::InvalidRequest(
            "more than three ancestors: a chain holds at most four envelopes",
        ));
    }
    check_charges(req.charges)?;
    for ancestor in req.ancestors {
        check_charges(ancestor.charges)?;
    }
    if req.ancestors.iter().any(|a| a.max_uses == 0) {
        return Err(LedgerError::InvalidRequest(
            "an ancestor's max_uses must be at least 1",
        ));
    }
    // A chain's ctis differ (`docs/spec.md` §13): an envelope is not its own ancestor.
    let path = path::ChainPath::of_begin(req);
    let ctis = path.ctis();
    if ctis
        .iter()
        .enumerate()
        .any(|(i, cti)| ctis[..i].contains(cti))
    {
        return Err(LedgerError::InvalidRequest(
            "a cti appears twice in the chain: an envelope is not its own ancestor",
        ));
    }
    Ok(Begin {
        max_uses: req.max_uses.min(state::MAX_EXACT),
        expires_at: req.expires_at.min(state::MAX_EXACT / 1000),
        ..*req
    })
}

/// Checks one envelope's charges: at most [`MAX_BUDGETS`], each index below it and named
/// once, each limit from 1 and each amount from 0, both at most [`MAX_AMOUNT`]. The gate
/// never hands out others; a request that does is refused rather than clamped, since a
/// clamped amount would spend less than the call.
pub(crate) fn check_charges(charges: &[Charge<'_>]) -> Result<(), LedgerError> {
    if charges.len() > MAX_BUDGETS {
        return Err(LedgerError::InvalidRequest(
            "more than 8 budgets on one envelope",
        ));
    }
    for (i, charge) in charges.iter().enumerate() {
        if usize::from(charge.index) >= MAX_BUDGETS {
            return Err(LedgerError::InvalidRequest("a budget index past 7"));
        }
        if charges[..i].iter().any(|c| c.index == charge.index) {
            return Err(LedgerError::InvalidRequest(
                "one budget charged twice for one envelope",
            ));
        }
        if charge.limit == 0 || charge.limit > MAX_AMOUNT {
            return Err(LedgerError::InvalidRequest(
                "a budget limit outside 1 ..= 2^53 - 1",
            ));
        }
        if charge.amount > MAX_AMOUNT {
            return Err(LedgerError::InvalidRequest("an amount past 2^53 - 1"));
        }
    }
    Ok(())
}

/// Checks a message id: non-empty and at most [`MAX_MESSAGE_ID_LEN`] bytes.
pub(crate) fn validate_message_id(message_id: &str) -> Result<(), LedgerError> {
    if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_LEN {
        return Err(LedgerError::InvalidMessageId);
    }
    Ok(())
}
