//! The gate: the one decision of a call, for every front-end (`docs/spec.md` §2, §15).
//!
//! A front-end (the AMQP middleware, `laissez verify`, `laissez approve --from`, Python's
//! `Verifier.verify`) reads its input into a [`Presented`] call and asks
//! [`Verifier::decide`]. The answer is [`Allowed`] (the authenticated chain, the approvers
//! that counted, and through [`Allowed::uses`] what the ledger must spend) or [`Refused`]
//! (the [`Denial`], whose reason and [`Denial::detail`] are the same words everywhere). No
//! front-end decides anything of its own: what it adds is reading its input, spending the
//! use in a ledger and settling.
//!
//! No allocation, no recursion: the chain is a fixed array, the approvers a fixed set.

use crate::approval::CountedApprovers;
use crate::args::LazyBody;
use crate::call::{Attached, Call, CallError};
use crate::claims::Claims;
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::fault::{InvocationFault, Unreadable};
use crate::keys::Kid;
use crate::malformed::{Malformed, MalformedKind};
use crate::tools::Request;
use crate::verified::{VerifiedChain, VerifiedEnvelope};
use crate::verifier::Verifier;
use crate::wire::budget::MAX_BUDGETS;
use crate::wire::{MAX_APPROVALS, MAX_CHAIN_LEN};

/// Everything a call is decided on besides the worker's own configuration (its keys,
/// audience, policy, approvers, revocations, in the [`Verifier`]) and the time: the envelope
/// or chain as received, and the call as far as the front-end has one.
///
/// Three shapes, from least to most: the envelope alone ([`Presented::new`]: every check but
/// the request's); with a request ([`Presented::request`]: its tool and class too); with a
/// whole call ([`Presented::call`]: the message id and body, the holder's invocation and the
/// approvals). A holder-bound envelope, or a class that needs approval, is usable only with a
/// whole call.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    links: &'a [&'a [u8]],
    request: Option<Request<'a>>,
    /// The body whose arguments the grants' args, the budgets and the waivers read
    /// (`docs/spec.md` §16): the call's, or one given without a call.
    body: Option<&'a [u8]>,
    call: Option<CallParts<'a>>,
}

/// The parts of a whole call.
#[derive(Debug, Clone, Copy)]
struct CallParts<'a> {
    message_id: &'a str,
    body: &'a [u8],
    invocation: Option<Result<&'a [u8], Unreadable>>,
    approvals: &'a [&'a [u8]],
}

impl<'a> Presented<'a> {
    /// The chain as received, root first, the leaf (the envelope the call runs under) last:
    /// one envelope when not delegated.
    pub const fn new(links: &'a [&'a [u8]]) -> Self {
        Presented {
            links,
            request: None,
            body: None,
            call: None,
        }
    }

    /// A body without a whole call (`laissez verify --body` without `--message-id`): read
    /// for the args, budgets and waivers as a call's would be (`docs/spec.md` §16).
    #[must_use]
    pub const fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    /// The tool about to be called and its class: given by the caller, or the worker's
    /// catalogue's ([`Request::from_catalogue`]; a tool it does not list is `unknown_tool`).
    #[must_use]
    pub const fn request(mut self, request: Request<'a>) -> Self {
        self.request = Some(request);
        self
    }

    /// The whole call (with [`Presented::request`]): its message id and its body's exact
    /// bytes. Without an invocation or approvals until they are given.
    #[must_use]
    pub const fn call(mut self, message_id: &'a str, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self.call = Some(CallParts {
            message_id,
            body,
            invocation: None,
            approvals: &[],
        });
        self
    }

    /// The holder's invocation that came with the call: its bytes, or why the front-end could
    /// not read them. An unreadable invocation is `bad_invocation` exactly where an
    /// invocation would be checked (never for a bearer envelope, whose invocation is
    /// ignored). Ignored without [`Presented::call`].
    #[must_use]
    pub const fn invocation(mut self, invocation: Result<&'a [u8], Unreadable>) -> Self {
        if let Some(call) = &mut self.call {
            call.invocation = Some(invocation);
        }
        self
    }

    /// The approvals that came with the call, in the order received. Ignored without
    /// [`Presented::call`].
    #[must_use]
    pub const fn approvals(mut self, approvals: &'a [&'a [u8]]) -> Self {
        if let Some(call) = &mut self.call {
            call.approvals = approvals;
        }
        self
    }

    /// The links as received, root first.
    pub const fn links(&self) -> &'a [&'a [u8]] {
        self.links
    }

    /// The kid the root names, when it decodes (authentic only once the chain verified): for
    /// a refusal's report.
    pub fn claimed_kid(&self) -> Option<Kid> {
        let root = self.links.first()?;
        UntrustedEnvelope::decode(root).ok().map(|e| e.kid())
    }
}

/// A call the gate allowed: run it once the ledger grants its use ([`Allowed::uses`]).
#[derive(Debug, Clone, Copy)]
pub struct Allowed<'a> {
    chain: VerifiedChain<'a>,
    approvers: CountedApprovers,
    /// The budgets this call spends, per link of the chain (root first).
    charges: ChainCharges<'a>,
}

impl<'a> Allowed<'a> {
    /// The authenticated chain, root first (one envelope when not delegated).
    pub const fn chain(&self) -> &VerifiedChain<'a> {
        &self.chain
    }

    /// The leaf: the envelope the call runs under.
    pub fn leaf(&self) -> &VerifiedEnvelope<'a> {
        self.chain.leaf()
    }

    /// The approvers whose approvals counted (empty when the class needs none).
    pub const fn approvers(&self) -> &CountedApprovers {
        &self.approvers
    }

    /// What a use of this call spends: one use of the leaf and of every ancestor, at once
    /// (`docs/spec.md` §13).
    pub fn uses(&self) -> Uses<'_> {
        let mut ancestors = [None; MAX_CHAIN_LEN - 1];
        for (slot, envelope) in ancestors.iter_mut().zip(self.chain.ancestors()) {
            *slot = Some(envelope.claims());
        }
        Uses {
            leaf: self.chain.leaf().claims(),
            ancestors,
            charges: &self.charges,
        }
    }
}

/// One budget of one envelope that a call spends (`docs/spec.md` §17): the budget's place in
/// its envelope's list (`index`, which with the envelope's key names it in a ledger), its
/// pattern and member, its limit, and this call's amount (`0..=2^53-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Charge<'c> {
    /// The budget's place in its envelope's budget list (0..8).
    pub index: u8,
    /// The budget's tool pattern.
    pub pattern: &'c str,
    /// The member whose value is the amount.
    pub member: &'c str,
    /// The budget's limit: the sum of amounts may reach it, never pass it.
    pub limit: u64,
    /// This call's amount.
    pub amount: u64,
}

/// The charges of every link of a chain, root first: a fixed array, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChainCharges<'c> {
    links: [LinkCharges<'c>; MAX_CHAIN_LEN],
}

/// The charges of one link: the first `len` hold.
#[derive(Debug, Clone, Copy, Default)]
struct LinkCharges<'c> {
    charges: [Charge<'c>; MAX_BUDGETS],
    len: usize,
}

impl<'c> ChainCharges<'c> {
    /// Adds `charge` to link `link` (root 0). The claims decoder caps budgets at
    /// [`MAX_BUDGETS`] per envelope and the chain at [`MAX_CHAIN_LEN`]: a slot always exists.
    pub(crate) fn push(&mut self, link: usize, charge: Charge<'c>) {
        if let Some(slot) = self.links.get_mut(link)
            && let Some(free) = slot.charges.get_mut(slot.len)
        {
            *free = charge;
            slot.len += 1;
        }
    }

    fn of(&self, link: usize) -> &[Charge<'c>] {
        self.links
            .get(link)
            .map_or(&[][..], |slot| &slot.charges[..slot.len])
    }
}

/// The envelopes a use spends: the leaf, and its ancestors root first. The ledger turns it
/// into its request; no front-end builds the ancestor list itself.
#[derive(Debug, Clone, Copy)]
pub struct Uses<'c> {
    leaf: &'c Claims<'c>,
    ancestors: [Option<&'c Claims<'c>>; MAX_CHAIN_LEN - 1],
    charges: &'c ChainCharges<'c>,
}

impl<'c> Uses<'c> {
    /// The leaf's claims: its cti, max_uses and exp.
    pub const fn leaf(&self) -> &'c Claims<'c> {
        self.leaf
    }

    /// The ancestors' claims, root first: empty when not delegated.
    pub fn ancestors(&self) -> impl Iterator<Item = &'c Claims<'c>> + '_ {
        self.ancestors.iter().flatten().copied()
    }

    /// The budgets the leaf's use spends, with this call's amounts (`docs/spec.md` §17):
    /// spent in the same atomic step as the use, or not at all.
    pub fn leaf_charges(&self) -> &'c [Charge<'c>] {
        self.charges.of(self.ancestors().count())
    }

    /// The budgets the use of the `n`-th ancestor (root 0, in the order of
    /// [`Uses::ancestors`]) spends; empty past the last.
    pub fn ancestor_charges(&self, n: usize) -> &'c [Charge<'c>] {
        if n < self.ancestors().count() {
            self.charges.of(n)
        } else {
            &[]
        }
    }
}

/// A call the gate refused: the denial, and the chain when it authenticated (its claims are
/// then authentic, for the report).
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    denial: Denial,
    chain: Option<VerifiedChain<'a>>,
}

impl<'a> Refused<'a> {
    /// Why: its [`Denial::reason`] and [`Denial::detail`] are what every front-end reports.
    pub const fn denial(&self) -> &Denial {
        &self.denial
    }

    /// The chain, when it authenticated before a later row refused the call.
    pub const fn chain(&self) -> Option<&VerifiedChain<'a>> {
        self.chain.as_ref()
    }
}

impl<'k> Verifier<'k> {
    /// The one decision of a call (`docs/spec.md` §2): authenticate the chain (through the
    /// cache, when the verifier has one), then every row in the contract's order on every
    /// envelope and on the leaf, the holder's invocation over exactly this call, and every
    /// approval rule of the chain. `now` is Unix seconds from a clock the caller trusts.
    ///
    /// A bearer envelope whose call needs no approval and no holder is checked without the
    /// call's rows (they have nothing to check), so its body is not hashed.
    // Both answers hold the chain by value (a fixed array, about 2 KB): without allocation
    // there is nothing to box, and the Ok side is as large.
    #[allow(clippy::result_large_err)]
    pub fn decide<'a>(
        &self,
        presented: &Presented<'a>,
        now: u64,
    ) -> Result<Allowed<'a>, Refused<'a>> {
        // More approvals than one call may bring is a malformed call, whatever else holds.
        if presented
            .call
            .is_some_and(|call| call.approvals.len() > MAX_APPROVALS)
        {
            return Err(Refused {
                denial: Malformed::new(0, MalformedKind::TooManyApprovals).into(),
                chain: None,
            });
        }
        let chain = self
            .authenticate_chain_at(presented.links, now)
            .map_err(|denial| Refused {
                denial,
                chain: None,
            })?;
        let refuse = |denial| Refused {
            denial,
            chain: Some(chain),
        };
        let body = LazyBody::new(presented.body);
        let (approvers, charges) = match (presented.request, presented.call) {
            (Some(request), Some(call)) => match request.class() {
                Some(class) if self.needs_call(&chain, request.tool(), class, &body) => {
                    let checked = Call::new(
                        chain.leaf().as_bytes(),
                        self.audience,
                        call.message_id,
                        request.tool(),
                        class,
                        call.body,
                    )
                    .map_err(call_malformed)
                    .and_then(|whole| self.check_whole_call(&chain, now, &whole, &call, &body));
                    checked.map_err(refuse)?
                }
                // No holder and no approval: the envelope's rows say it all.
                _ => {
                    let charges = self
                        .check_chain_body(&chain, now, Some(&request), &body)
                        .map_err(refuse)?;
                    (CountedApprovers::default(), charges)
                }
            },
            (request, _) => {
                let charges = self
                    .check_chain_body(&chain, now, request.as_ref(), &body)
                    .map_err(refuse)?;
                (CountedApprovers::default(), charges)
            }
        };
        Ok(Allowed {
            chain,
            approvers,
            charges,
        })
    }

    /// Whether the call's rows have anything to check for `class`: a holder-bound leaf, a
    /// policy that requires one, or an approval rule (the chain's or the policy's).
    fn needs_call(
        &self,
        chain: &VerifiedChain<'_>,
        tool: &str,
        class: crate::tools::ActionClass,
        body: &LazyBody<'_>,
    ) -> bool {
        chain.leaf().claims().holder().is_some()
            || self.policy.require_holder()
            || self.first_rule_needing(chain, tool, class, body).is_some()
    }

    /// [`Verifier::check_chain_call`] with what the front-end presented: an unreadable
    /// invocation is checked as one of no bytes, and its fault is then what was unreadable.
    fn check_whole_call<'c>(
        &self,
        chain: &VerifiedChain<'c>,
        now: u64,
        whole: &Call<'_>,
        call: &CallParts<'_>,
        body: &LazyBody<'_>,
    ) -> Result<(CountedApprovers, ChainCharges<'c>), Denial> {
        let (bytes, unreadable) = match call.invocation {
            None => (None, None),
            Some(Ok(bytes)) => (Some(bytes), None),
            Some(Err(why)) => (Some(&[][..]), Some(why)),
        };
        let attached = Attached::new(bytes, call.approvals);
        match (
            self.check_chain_call_body(chain, now, whole, attached, body),
            unreadable,
        ) {
            (Err(Denial::BadInvocation(_)), Some(why)) => {
                Err(Denial::BadInvocation(InvocationFault::Unreadable(why)))
            }
            (checked, _) => checked,
        }
    }
}

/// A call that cannot be made from what was presented: a message id out of bounds (a tool
/// out of grammar never makes a [`Request`], and the audience is the verifier's).
fn call_malformed(error: CallError) -> Denial {
    let kind = match error {
        CallError::MessageId => MalformedKind::MessageId,
        _ => MalformedKind::UnexpectedType,
    };
    Denial::Malformed(Malformed::new(0, kind))
}
