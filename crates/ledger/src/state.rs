//! The per-key state machine, shared by the memory and redb backends (the Redis script is a
//! transcription of it). Pure functions: the backends supply the stored entry, the counter, the
//! clock and a fresh token, and write back what these return, all inside one atomic step.

// The byte encoding of an entry is redb's storage format; without redb nothing stores bytes.
#![cfg_attr(not(feature = "redb"), allow(dead_code))]

use std::time::{SystemTime, UNIX_EPOCH};

use laissez_verify::ActionClass;
use sha2::{Digest, Sha256};

use crate::inline::Inline;
use crate::{
    Begin, Charge, LeaseToken, LedgerError, MAX_ANCESTORS, MAX_BUDGETS, MAX_TAKEOVERS, Outcome,
    UseState,
};

/// The most budgets one begin may charge: every envelope of a chain (at most four) with
/// its most budgets.
pub(crate) const MAX_VIEWS: usize = laissez_verify::wire::MAX_CHAIN_LEN * MAX_BUDGETS;

/// The budget views of one begin, kept inline.
pub(crate) type BudgetViews<'c> = Inline<BudgetView<'c>, MAX_VIEWS>;

/// The largest integer a Lua (double) number holds exactly: 2^53 - 1.
pub(crate) const MAX_EXACT: u64 = (1 << 53) - 1;

/// What an entry keeps of a tool's name: the first 16 bytes of the SHA-256 of its UTF-8 bytes.
///
/// Fixed-size, so that redb entries keep one length and Redis fields stay short whatever the
/// name; 128 bits, so that two names collide only by a second preimage of SHA-256 (both names
/// must be in the worker's catalogue besides). It only ever tells "the same tool" from
/// "another tool"; nothing reads a name back from it.
pub(crate) type ToolDigest = [u8; 16];

/// The [`ToolDigest`] of `tool`.
pub(crate) fn tool_digest(tool: &str) -> ToolDigest {
    let full = Sha256::digest(tool.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// What the ledger stores for one `(cti, message_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) state: UseState,
    pub(crate) use_number: u64,
    /// Unix milliseconds after which an in-flight lease has expired.
    pub(crate) lease_until_ms: u64,
    /// The current (or last) holder.
    pub(crate) token: LeaseToken,
    /// Unix seconds after which the entry may be dropped.
    pub(crate) expires_at: u64,
    /// The class of the first grant, never changed: destructive makes the entry at most once
    /// for good, whoever asks later.
    pub(crate) class: ActionClass,
    /// The tool of the first grant, never changed.
    pub(crate) tool: ToolDigest,
    /// How many times the message was taken over (after an expired lease or a release), at
    /// most [`MAX_TAKEOVERS`].
    pub(crate) takeovers: u32,
}

/// The encoded length of an [`Entry`]: state, use number, lease until, token, expires_at,
/// class, tool digest, take-overs.
pub(crate) const ENTRY_LEN: usize = 1 + 8 + 8 + 16 + 8 + 1 + 16 + 4;

/// The length of an entry written before entries recorded their call (tool, class and
/// take-overs); this version refuses to read one rather than guess its class.
const OLD_ENTRY_LEN: usize = 1 + 8 + 8 + 16 + 8;

impl Entry {
    /// Whether the message may run at most once: its first grant was destructive.
    pub(crate) fn at_most_once(&self) -> bool {
        self.class == ActionClass::Destructive
    }

    pub(crate) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0] = state_byte(self.state);
        out[1..9].copy_from_slice(&self.use_number.to_be_bytes());
        out[9..17].copy_from_slice(&self.lease_until_ms.to_be_bytes());
        out[17..33].copy_from_slice(self.token.as_bytes());
        out[33..41].copy_from_slice(&self.expires_at.to_be_bytes());
        out[41] = self.class.bit();
        out[42..58].copy_from_slice(&self.tool);
        out[58..62].copy_from_slice(&self.takeovers.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        let bytes: &[u8; ENTRY_LEN] = bytes.try_into().map_err(|_| {
            LedgerError::Corrupt(if bytes.len() == OLD_ENTRY_LEN {
                format!(
                    "entry of {OLD_ENTRY_LEN} bytes, written by an earlier laissez-ledger \
                     that did not record the tool and class a message was granted for; this \
                     version will not guess them (let that envelope expire, or start a new \
                     ledger file)"
                )
            } else {
                format!("entry of {} bytes, expected {ENTRY_LEN}", bytes.len())
            })
        })?;
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut token = [0u8; 16];
        token.copy_from_slice(&bytes[17..33]);
        let mut tool = [0u8; 16];
        tool.copy_from_slice(&bytes[42..58]);
        let mut takeovers = [0u8; 4];
        takeovers.copy_from_slice(&bytes[58..62]);
        Ok(Entry {
            state: byte_state(bytes[0])?,
            use_number: u64_at(1),
            lease_until_ms: u64_at(9),
            token: LeaseToken::from_bytes(token),
            expires_at: u64_at(33),
            class: byte_class(bytes[41])?,
            tool,
            takeovers: u32::from_be_bytes(takeovers),
        })
    }
}

fn byte_class(byte: u8) -> Result<ActionClass, LedgerError> {
    ActionClass::ALL
        .into_iter()
        .find(|c| c.bit() == byte)
        .ok_or_else(|| LedgerError::Corrupt(format!("entry class {byte}")))
}

fn state_byte(state: UseState) -> u8 {
    match state {
        UseState::InFlight => 1,
        UseState::Released => 2,
        UseState::Completed => 3,
        UseState::Abandoned => 4,
    }
}

fn byte_state(byte: u8) -> Result<UseState, LedgerError> {
    Ok(match byte {
        1 => UseState::InFlight,
        2 => UseState::Released,
        3 => UseState::Completed,
        4 => UseState::Abandoned,
        other => return Err(LedgerError::Corrupt(format!("entry state {other}"))),
    })
}

/// What a begin decided: the answer, and what to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BeginDecision {
    pub(crate) outcome: Outcome,
    /// The entry to store, if it changed.
    pub(crate) write: Option<Entry>,
    /// The cti's new granted count, if it changed.
    pub(crate) granted: Option<u64>,
}

/// Decides a begin. `granted` is how many distinct messages this cti has been granted.
pub(crate) fn decide_begin(
    req: &Begin<'_>,
    existing: Option<Entry>,
    granted: u64,
    now_ms: u64,
    fresh: LeaseToken,
) -> Result<BeginDecision, LedgerError> {
    if req.expires_at.saturating_mul(1000) <= now_ms {
        return Err(LedgerError::Expired);
    }
    let lease_until_ms = now_ms.saturating_add(duration_ms(req.lease));
    let tool = tool_digest(req.tool);
    let answer = |outcome| BeginDecision {
        outcome,
        write: None,
        granted: None,
    };
    let Some(mut entry) = existing else {
        if granted >= req.max_uses {
            return Ok(answer(Outcome::Exhausted));
        }
        let use_number = granted + 1;
        return Ok(BeginDecision {
            outcome: Outcome::Granted {
                use_number,
                lease: fresh,
                taken_over: false,
            },
            write: Some(Entry {
                state: UseState::InFlight,
                use_number,
                lease_until_ms,
                token: fresh,
                expires_at: req.expires_at,
                class: req.class,
                tool,
                takeovers: 0,
            }),
            granted: Some(use_number),
        });
    };
    // The first grant bound this message id to one call. Were another call let in, a
    // non-destructive class could take over a lapsed destructive lease, release it, and hand
    // the destructive step to the next delivery: a message id spent on one call is never spent
    // on another, whatever its state.
    if entry.tool != tool || entry.class != req.class {
        return Ok(answer(Outcome::OtherCall));
    }
    // An entry outlives at least the latest envelope expiry it was asked under.
    entry.expires_at = entry.expires_at.max(req.expires_at);
    let take_over = |mut entry: Entry| {
        entry.state = UseState::InFlight;
        entry.token = fresh;
        entry.lease_until_ms = lease_until_ms;
        entry.takeovers = entry.takeovers.saturating_add(1);
        BeginDecision {
            outcome: Outcome::Granted {
                use_number: entry.use_number,
                lease: fresh,
                taken_over: true,
            },
            write: Some(entry),
            granted: None,
        }
    };
    // Record that this message is dead-lettered, so that every later delivery is refused too.
    let abandon = |mut entry: Entry, holder: LeaseToken| {
        entry.state = UseState::Abandoned;
        entry.token = holder;
        BeginDecision {
            outcome: Outcome::Abandoned,
            write: Some(entry),
            granted: None,
        }
    };
    let capped = entry.takeovers >= MAX_TAKEOVERS;
    Ok(match entry.state {
        UseState::Completed => answer(Outcome::Replayed),
        UseState::Abandoned => answer(Outcome::Abandoned),
        UseState::InFlight if now_ms < entry.lease_until_ms => answer(Outcome::InFlight),
        // The holder may have run part of it, and the entry's own class (not this request's)
        // says it runs at most once. The lapsed holder keeps its token: if it did finish, it
        // may still complete.
        UseState::InFlight if entry.at_most_once() || capped => abandon(entry, entry.token),
        // The holder gave it back, but it has been re-run enough: nobody holds it now (a token
        // no caller was given), so the releaser cannot complete it either.
        UseState::Released if capped => abandon(entry, fresh),
        // The holder said it did not finish: safe to run again even when at most once.
        UseState::Released | UseState::InFlight => take_over(entry),
    })
}

/// What the ledger holds for one ancestor of a begin (`Begin::ancestors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AncestorView {
    /// The ancestor's use limit.
    pub(crate) max_uses: u64,
    /// How many distinct `(path, message id)` pairs it was charged, its own included.
    pub(crate) granted: u64,
    /// Whether this begin's `(leaf path, message id)` was already charged to it.
    pub(crate) charged: bool,
}

/// What the ledger holds for one budget a begin would charge: the charge (its index, limit
/// and this call's amount), the envelope it belongs to, and its sum so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BudgetView<'c> {
    /// The envelope's place in the chain: root 0, the leaf `ancestors.len()`.
    pub(crate) link: usize,
    pub(crate) charge: Charge<'c>,
    /// The sum of the amounts this envelope already authorised under this budget.
    pub(crate) spent: u64,
}

/// The budget views of a begin, root first, each link's in its charges' order: the order in
/// which every backend checks them, so that all name the same budget when several fail.
/// `spent(link, index)` reads a sum (0 when none is kept). Inline, not allocated: a budgeted
/// use should cost the ledger about what an unbudgeted one does.
pub(crate) fn budget_views<'c>(
    req: &Begin<'c>,
    mut spent: impl FnMut(usize, u8) -> Result<u64, LedgerError>,
) -> Result<BudgetViews<'c>, LedgerError> {
    let links = req
        .ancestors
        .iter()
        .map(|a| a.charges)
        .chain(std::iter::once(req.charges));
    let mut views = Inline::new();
    for (link, charges) in links.enumerate() {
        for charge in charges {
            views.push(BudgetView {
                link,
                charge: *charge,
                spent: spent(link, charge.index)?,
            })?;
        }
    }
    Ok(views)
}

/// The refusal naming `charge` of the envelope at `link`.
pub(crate) fn budget_exhausted(link: usize, charge: &Charge<'_>) -> Outcome {
    Outcome::BudgetExhausted {
        // A chain holds at most four envelopes (`normalize`).
        link: u8::try_from(link).unwrap_or(u8::MAX),
        index: charge.index,
        budget: format!("{}:{}", charge.pattern, charge.member),
    }
}

/// A leaf's decision extended over its ancestors: what to answer, for each ancestor its new
/// count when this begin charges it, and for each budget view its new sum when charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainDecision {
    pub(crate) leaf: BeginDecision,
    pub(crate) charges: Inline<Option<u64>, MAX_ANCESTORS>,
    /// In the order of the views given to [`decide_chain`].
    pub(crate) sums: Inline<Option<u64>, MAX_VIEWS>,
}

/// Extends the leaf's decision to its ancestors (`docs/spec.md` §13) and to the budgets of
/// every envelope (§17): a new use of the leaf (its count grows) is charged to every ancestor
/// not yet charged for this message, and every budget of the leaf and of those ancestors is
/// charged its amount, all or nothing. When any ancestor has no use left the answer is
/// `Exhausted`; else when any budget's sum plus its amount would pass its limit, it is
/// `BudgetExhausted` (uses come first, the contract's order); either way nothing is written,
/// not even the leaf's entry. Any other decision (a take-over, a replay, a refusal) spends
/// nothing new, no use and no amount: a redelivered or in-flight message is never charged
/// twice, and an ancestor already charged for this pair is not charged its budgets again.
///
/// More ancestors or views than a chain holds (which `normalize` rules out) is refused as an
/// invalid request. Nothing is allocated: the answer's lists are inline.
pub(crate) fn decide_chain(
    leaf: BeginDecision,
    ancestors: &[AncestorView],
    budgets: &[BudgetView<'_>],
) -> Result<ChainDecision, LedgerError> {
    let too_many = LedgerError::InvalidRequest("more budgets or ancestors than a chain holds");
    let untouched = |leaf| {
        Ok(ChainDecision {
            leaf,
            charges: Inline::filled(ancestors.len(), None).ok_or(too_many.clone())?,
            sums: Inline::filled(budgets.len(), None).ok_or(too_many.clone())?,
        })
    };
    let refused = |outcome| {
        untouched(BeginDecision {
            outcome,
            write: None,
            granted: None,
        })
    };
    if leaf.granted.is_none() {
        return untouched(leaf);
    }
    let mut charges = Inline::new();
    for ancestor in ancestors {
        if ancestor.charged {
            charges.push(None)?;
        } else if ancestor.granted >= ancestor.max_uses {
            return refused(Outcome::Exhausted);
        } else {
            charges.push(Some(ancestor.granted + 1))?;
        }
    }
    let mut sums = Inline::new();
    for view in budgets {
        // The leaf's use is new (checked above); an ancestor's, when it is charged now.
        let charged = charges.get(view.link).is_none_or(Option::is_some);
        if !charged {
            sums.push(None)?;
            continue;
        }
        // Never `spent + amount > limit`: the same comparison as the Lua script's, where that
        // sum of two values up to 2^53 - 1 would not be exact. A sum past its limit (which no
        // grant writes) refuses every amount.
        let Some(left) = view.charge.limit.checked_sub(view.spent) else {
            return refused(budget_exhausted(view.link, &view.charge));
        };
        if view.charge.amount > left {
            return refused(budget_exhausted(view.link, &view.charge));
        }
        sums.push(Some(view.spent + view.charge.amount))?;
    }
    Ok(ChainDecision {
        leaf,
        charges,
        sums,
    })
}

/// Decides a complete: the entry to write, or why not.
pub(crate) fn decide_complete(
    existing: Option<Entry>,
    lease: &LeaseToken,
) -> Result<Option<Entry>, LedgerError> {
    let Some(mut entry) = existing else {
        return Err(LedgerError::LeaseNotHeld);
    };
    if entry.token != *lease {
        return Err(LedgerError::LeaseNotHeld);
    }
    match entry.state {
        UseState::Completed => Ok(None),
        // A holder whose lease expired may still finish, as long as nobody took over (the
        // token still matches); an abandoned message that did finish is done, not lost.
        UseState::InFlight | UseState::Abandoned => {
            entry.state = UseState::Completed;
            Ok(Some(entry))
        }
        // It gave the message back: it may not claim it now.
        UseState::Released => Err(LedgerError::LeaseNotHeld),
    }
}

/// Decides a release: the entry to write, or why not.
pub(crate) fn decide_release(
    existing: Option<Entry>,
    lease: &LeaseToken,
) -> Result<Option<Entry>, LedgerError> {
    let Some(mut entry) = existing else {
        return Err(LedgerError::LeaseNotHeld);
    };
    if entry.token != *lease {
        return Err(LedgerError::LeaseNotHeld);
    }
    match entry.state {
        UseState::Released => Ok(None),
        UseState::InFlight => {
            entry.state = UseState::Released;
            Ok(Some(entry))
        }
        // Completed cannot be undone; abandoned was already dead-lettered.
        UseState::Completed | UseState::Abandoned => Err(LedgerError::LeaseNotHeld),
    }
}

/// The system clock in unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A lease in whole milliseconds, at least 1.
pub(crate) fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests;
