//! Delegation chains and the checks after authentication (`docs/spec.md` §2, §11–§13).
//!
//! A chain is `[root, child, …, leaf]`, one to four envelopes: the root signed by a trusted
//! issuer key, each child by its parent's holder (`cnf`) key. A single envelope is a chain of
//! one, and goes through the same rows: [`Verifier::check`] and [`Verifier::check_call`] are
//! the one-envelope forms of [`Verifier::check_chain`] and [`Verifier::check_chain_call`].
//! The chain is walked root first with loops over a fixed-size array: no recursion, no
//! allocation. The chain itself ([`VerifiedChain`]) is a plain value of its own module, below
//! the verifier; this module adds the verifier's methods that make and check one.

use crate::approval::{ApprovalRule, CountedApprovers, Counting};
use crate::args::{ArgPath, LazyBody, Openness, satisfies};
use crate::call::{Attached, Call};
use crate::claims::{Claims, KnownKeys, NoKnownKeys};
use crate::delegation::widening;
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::fault::{DelegationFault, InvocationFault, Mismatch};
use crate::gate::{ChainCharges, Charge};
use crate::invocation::UntrustedInvocation;
use crate::malformed::{Malformed, MalformedKind};
use crate::revocation::RevocationQuery;
use crate::tools::{ActionClass, Request};
use crate::verified::{VerifiedChain, VerifiedEnvelope};
use crate::verifier::Verifier;
use crate::wire::budget::MAX_AMOUNT;
use crate::wire::{MAX_APPROVALS, MAX_CHAIN_LEN};

impl<'k> Verifier<'k> {
    /// Authenticates a chain, root first (`docs/spec.md` §13): the root as
    /// [`Verifier::authenticate`] does, and no `parent` in it; then each child in turn: its
    /// outer structure, its kid and signature under its parent's holder key, its claims, its
    /// `parent` equal to the SHA-256 of its parent's bytes, and its cti unlike every cti above
    /// it. An empty chain is `malformed`; a fifth envelope is `bad_delegation`.
    ///
    /// Without the cache: `now` is only the cache's, to drop dead entries (see
    /// [`Verifier::authenticate_chain_at`]).
    pub fn authenticate_chain<'a>(&self, links: &[&'a [u8]]) -> Result<VerifiedChain<'a>, Denial> {
        self.links(
            links,
            |_, root| self.authenticate(root),
            |parent, bytes| self.authenticate_child(parent, bytes, &NoKnownKeys),
        )
    }

    /// [`Verifier::authenticate_chain`] through this verifier's cache, when it has one
    /// (`with_cache`): a link authenticated before under the same key (the root) or the same
    /// parent (a child) is not verified again. `now` drops the cache's dead entries; no row
    /// that depends on the moment is cached.
    pub fn authenticate_chain_at<'a>(
        &self,
        links: &[&'a [u8]],
        now: u64,
    ) -> Result<VerifiedChain<'a>, Denial> {
        #[cfg(feature = "std")]
        if let Some(cache) = self.cache {
            return self.links(
                links,
                |verifier, root| cache.root(verifier, root, now),
                |parent, bytes| cache.child(self, parent, bytes, now),
            );
        }
        let _ = now; // Only a cache needs the time.
        self.authenticate_chain(links)
    }

    /// The one chain loop: the root by `root`, then each child under its parent by `child`;
    /// at most four links, the chain's own rules checked as each is added.
    fn links<'a>(
        &self,
        links: &[&'a [u8]],
        root: impl FnOnce(&Self, &'a [u8]) -> Result<VerifiedEnvelope<'a>, Denial>,
        mut child: impl FnMut(&VerifiedEnvelope<'a>, &'a [u8]) -> Result<VerifiedEnvelope<'a>, Denial>,
    ) -> Result<VerifiedChain<'a>, Denial> {
        let Some((first, children)) = links.split_first() else {
            return Err(Malformed::new(0, MalformedKind::EmptyList).into());
        };
        // Refuses a root that names a parent.
        let mut chain = VerifiedChain::single(root(self, first)?);
        for (n, bytes) in children.iter().enumerate() {
            // n children already hold; a fifth envelope is refused before it is read.
            // This child's place in the chain, for its faults (the root is link 0).
            let link = n + 1;
            if link == MAX_CHAIN_LEN {
                return Err(Denial::BadDelegation(
                    DelegationFault::TooLong.at(MAX_CHAIN_LEN as u8),
                ));
            }
            let parent = *chain.leaf();
            let verified = child(&parent, bytes).map_err(|d| d.at_link(link))?;
            chain
                .push(verified)
                .map_err(|fault| Denial::BadDelegation(fault.at(link as u8)))?;
        }
        Ok(chain)
    }

    /// One link: `bytes` as a child of `parent`: its outer structure, its kid and signature
    /// under the parent's holder key, its claims, and its `parent` equal to the parent's
    /// digest. Its faults name link 0: the chain loop, which knows its place, moves them.
    pub(crate) fn authenticate_child<'a>(
        &self,
        parent: &VerifiedEnvelope<'_>,
        bytes: &'a [u8],
        known: &dyn KnownKeys,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let envelope = UntrustedEnvelope::decode(bytes)?;
        let holder = *parent.claims().holder().ok_or(Denial::BadDelegation(
            DelegationFault::ParentNotHolderBound.at(0),
        ))?;
        if envelope.kid() != holder.kid() {
            return Err(Denial::BadDelegation(DelegationFault::WrongSigner.at(0)));
        }
        envelope
            .verify_signature(&holder)
            .map_err(|_| Denial::BadDelegation(DelegationFault::BadSignature.at(0)))?;
        let (payload, base) = envelope.payload();
        let claims = Claims::decode_with_holder(payload, base, known)?;
        match claims.parent() {
            None => Err(Denial::BadDelegation(DelegationFault::NoParent.at(0))),
            Some(digest) if *digest != parent.digest() => {
                Err(Denial::BadDelegation(DelegationFault::WrongParent.at(0)))
            }
            Some(_) => Ok(VerifiedEnvelope::new(bytes, &holder, claims)),
        }
    }

    /// [`Verifier::check`] for a chain: attenuation of every link, then the rows through
    /// `revoked` (times and revocation on every envelope, audience, agent and request on the
    /// leaf), then `invocation_required` when the leaf is holder-bound and
    /// `approval_required` when the requested class needs approval.
    ///
    /// Without a body: a grant with args, or a budget that applies, never holds here
    /// (`arguments_not_granted`); [`Verifier::decide`] takes the body.
    pub fn check_chain(
        &self,
        chain: &VerifiedChain<'_>,
        now: u64,
        request: Option<&Request<'_>>,
    ) -> Result<(), Denial> {
        self.check_chain_body(chain, now, request, &LazyBody::new(None))
            .map(|_| ())
    }

    /// [`Verifier::check_chain`] with the body (when given): returns what the use spends of
    /// each budget of the chain.
    pub(crate) fn check_chain_body<'c>(
        &self,
        chain: &VerifiedChain<'c>,
        now: u64,
        request: Option<&Request<'_>>,
        body: &LazyBody<'_>,
    ) -> Result<ChainCharges<'c>, Denial> {
        let charges = self.check_rows(chain, now, request, body)?;
        if chain.leaf().claims().holder().is_some() {
            return Err(Denial::InvocationRequired);
        }
        if self.policy.require_holder() {
            return Err(Denial::HolderRequired);
        }
        if let Some(request) = request
            && let Some(class) = request.class()
            && let Some(needed) = self.first_rule_needing(chain, request.tool(), class, body)
        {
            return Err(Denial::ApprovalRequired { counted: 0, needed });
        }
        Ok(charges)
    }

    /// [`Verifier::check_call`] for a chain: the rows of [`Verifier::check_chain`] for the
    /// call's tool and class, then the invocation (signed by the leaf's holder over the
    /// leaf's digest), then every approval rule of every envelope that covers the class.
    /// Returns the approvers that counted.
    ///
    /// Without the body's bytes (a [`Call`] holds its digest): a grant with args, or a budget
    /// that applies, never holds here; [`Verifier::decide`] takes the body.
    pub fn check_chain_call<'p>(
        &self,
        chain: &VerifiedChain<'_>,
        now: u64,
        call: &Call<'_>,
        attached: impl Into<Attached<'p>>,
    ) -> Result<CountedApprovers, Denial> {
        self.check_chain_call_body(chain, now, call, attached.into(), &LazyBody::new(None))
            .map(|(approvers, _)| approvers)
    }

    /// [`Verifier::check_chain_call`] with the body: also returns what the use spends of
    /// each budget of the chain.
    pub(crate) fn check_chain_call_body<'c>(
        &self,
        chain: &VerifiedChain<'c>,
        now: u64,
        call: &Call<'_>,
        attached: Attached<'_>,
        body: &LazyBody<'_>,
    ) -> Result<(CountedApprovers, ChainCharges<'c>), Denial> {
        if attached.approvals().len() > MAX_APPROVALS {
            return Err(Malformed::new(0, MalformedKind::TooManyApprovals).into());
        }
        let request = Request::for_call(call);
        let charges = self.check_rows(chain, now, Some(&request), body)?;
        self.check_invocation(chain.leaf(), now, call, attached.invocation())?;
        let approvers = self.check_approvals(chain, now, call, attached.approvals(), body)?;
        Ok((approvers, charges))
    }

    /// The rows from `unknown_key` (the root's key must be one of this verifier's) and
    /// `not_attenuated` through `revoked`, each over the whole chain before the next.
    fn check_rows<'c>(
        &self,
        chain: &VerifiedChain<'c>,
        now: u64,
        request: Option<&Request<'_>>,
        body: &LazyBody<'_>,
    ) -> Result<ChainCharges<'c>, Denial> {
        // Authenticated under this verifier's own keys: the whole 32 bytes, not a kid.
        if !self.trusts(chain.root().key()) {
            return Err(Denial::UnknownKey);
        }
        for (n, (parent, child)) in chain.pairs().enumerate() {
            if let Some(field) = widening(parent.claims(), child.claims()) {
                // The child of the n-th pair is link n + 1 (at most 3).
                return Err(Denial::NotAttenuated(field.at(n as u8 + 1)));
            }
        }
        let leeway = self.policy.leeway();
        let claims = || chain.iter().map(VerifiedEnvelope::claims);
        if claims().any(|c| now.saturating_add(leeway) < c.nbf()) {
            return Err(Denial::NotYetValid);
        }
        // An iat after now would move the envelope past "issued up to" revocations
        // (`docs/spec.md` §14): no envelope of the chain may claim to be issued later than now.
        if claims().any(|c| c.iat().is_some_and(|iat| iat > now.saturating_add(leeway))) {
            return Err(Denial::IssuedInFuture);
        }
        if claims().any(|c| now >= c.exp().saturating_add(leeway)) {
            return Err(Denial::Expired);
        }
        // Decoding guarantees exp > nbf.
        if claims().any(|c| c.exp() - c.nbf() > self.policy.max_lifetime()) {
            return Err(Denial::LifetimeTooLong);
        }
        let leaf = chain.leaf().claims();
        if !leaf.aud().any(|aud| aud == self.audience) {
            return Err(Denial::WrongAudience);
        }
        if self.agent.is_some_and(|agent| agent != leaf.sub()) {
            return Err(Denial::WrongAgent);
        }
        let mut charges = ChainCharges::default();
        if let Some(request) = request {
            check_request(leaf, request, body)?;
            charges = budget_charges(chain, request.tool(), body)?;
        }
        // Every envelope of the chain, root first: a revoked ancestor revokes its children.
        if chain
            .iter()
            .any(|e| self.revocations.revokes(&RevocationQuery::of(e)))
        {
            return Err(Denial::Revoked);
        }
        Ok(charges)
    }

    /// The rows `invocation_required`, `bad_invocation` and `invocation_mismatch`, on the
    /// leaf: its holder signs the call over the leaf's digest, between its nbf and exp.
    fn check_invocation(
        &self,
        leaf: &VerifiedEnvelope<'_>,
        now: u64,
        call: &Call<'_>,
        invocation: Option<&[u8]>,
    ) -> Result<(), Denial> {
        let Some(holder) = leaf.claims().holder() else {
            return if self.policy.require_holder() {
                Err(Denial::HolderRequired)
            } else {
                Ok(())
            };
        };
        let bytes = invocation.ok_or(Denial::InvocationRequired)?;
        let invocation = UntrustedInvocation::decode(bytes)
            .map_err(|m| Denial::BadInvocation(InvocationFault::Malformed(m)))?;
        invocation
            .verify_signature(holder)
            .map_err(Denial::BadInvocation)?;
        // The call must be this envelope's: the worker hashed these very bytes.
        if *call.envelope_digest() != leaf.digest() {
            return Err(Denial::InvocationMismatch(Mismatch::Envelope));
        }
        if let Some(field) = invocation.mismatch(call) {
            return Err(Denial::InvocationMismatch(field));
        }
        let leeway = self.policy.leeway();
        let claims = leaf.claims();
        let iat = invocation.iat();
        if iat.saturating_add(leeway) < claims.nbf() {
            return Err(Denial::InvocationMismatch(Mismatch::IatBeforeNbf));
        }
        if iat > now.saturating_add(leeway) {
            return Err(Denial::InvocationMismatch(Mismatch::IatInFuture));
        }
        if iat >= claims.exp().saturating_add(leeway) {
            return Err(Denial::InvocationMismatch(Mismatch::IatAfterExp));
        }
        Ok(())
    }

    /// How many approvals the first rule of the chain applying to a call of `tool` in
    /// `class` needs; `Some(0)` when none applies and the policy requires approval for the
    /// class; `None` when none is needed.
    pub(crate) fn first_rule_needing(
        &self,
        chain: &VerifiedChain<'_>,
        tool: &str,
        class: ActionClass,
        body: &LazyBody<'_>,
    ) -> Option<u8> {
        let rule = chain
            .iter()
            .filter_map(|e| e.claims().approval())
            .find(|rule| self.rule_applies(rule, tool, class, body));
        match rule {
            Some(rule) => Some(rule.m()),
            None => self
                .policy
                .require_approval()
                .filter(|classes| classes.contains(class))
                .map(|_| 0),
        }
    }

    /// The row `approval_required`: every rule of the chain covering the call's class must
    /// hold (rules are never lifted by delegation, nor compared). Returns the approvers that
    /// counted for any rule, each once.
    fn check_approvals(
        &self,
        chain: &VerifiedChain<'_>,
        now: u64,
        call: &Call<'_>,
        approvals: &[&[u8]],
        body: &LazyBody<'_>,
    ) -> Result<CountedApprovers, Denial> {
        let class = call.class();
        let Some(needed) = self.first_rule_needing(chain, call.tool(), class, body) else {
            return Ok(CountedApprovers::default());
        };
        if needed == 0 {
            return Err(Denial::ApprovalRequired { counted: 0, needed });
        }
        let mut all = CountedApprovers::default();
        for rule in chain
            .iter()
            .filter_map(|e| e.claims().approval())
            .filter(|rule| self.rule_applies(rule, call.tool(), class, body))
        {
            let counted = Counting {
                rule,
                approver_keys: self.approvers,
                call,
                now,
                leeway: self.policy.leeway(),
                max_lifetime: self.policy.max_lifetime(),
            }
            .count(approvals);
            if counted.len() < usize::from(rule.m()) {
                return Err(Denial::ApprovalRequired {
                    // At most 16.
                    counted: counted.len() as u8,
                    needed: rule.m(),
                });
            }
            all.merge(&counted);
        }
        Ok(all)
    }

    /// Whether `rule` applies to a call of `tool` in `class` (`docs/spec.md` §12): it covers
    /// the class, and no waiver holds: a waiver holds when its pattern matches the tool and
    /// its args, read open, hold for the body. Classes the policy requires approval for
    /// ignore waivers: the worker's policy outranks the envelope's.
    fn rule_applies(
        &self,
        rule: &ApprovalRule<'_>,
        tool: &str,
        class: ActionClass,
        body: &LazyBody<'_>,
    ) -> bool {
        if !rule.covers(class) {
            return false;
        }
        if self
            .policy
            .require_approval()
            .is_some_and(|classes| classes.contains(class))
        {
            return true;
        }
        let Some(waivers) = rule.waivers() else {
            return true;
        };
        !waivers.iter().any(|(pattern, args)| {
            pattern.matches(tool) && satisfies(&args, body.get(), Openness::Open).is_ok()
        })
    }
}

/// `unknown_tool` when the worker's catalogue does not list the tool; `tool_not_granted`
/// when no pattern matches; `class_not_granted` when patterns match but none of them allows
/// the class; `arguments_not_granted` when grants allow the tool and class but the body holds
/// the args of none of them (the detail is the first such grant's failing member).
fn check_request(
    claims: &Claims<'_>,
    request: &Request<'_>,
    body: &LazyBody<'_>,
) -> Result<(), Denial> {
    // The class is the worker's: a tool its catalogue does not list runs under no grant.
    let class = request.class().ok_or(Denial::UnknownTool)?;
    let mut tool_matched = false;
    let mut args_failure = None;
    for grant in claims.tools() {
        if !grant.pattern.matches(request.tool()) {
            continue;
        }
        tool_matched = true;
        if !grant.classes.contains(class) {
            continue;
        }
        let Some(args) = grant.args else {
            return Ok(());
        };
        match satisfies(&args, body.get(), Openness::Closed) {
            Ok(()) => return Ok(()),
            Err(path) => {
                args_failure.get_or_insert(path);
            }
        }
    }
    Err(match (args_failure, tool_matched) {
        (Some(path), _) => Denial::ArgumentsNotGranted(path),
        (None, true) => Denial::ClassNotGranted,
        (None, false) => Denial::ToolNotGranted,
    })
}

/// The budgets of every envelope of the chain that apply to a call of `tool`, with this
/// call's amount (`docs/spec.md` §17): `arguments_not_granted` when one applies and the body
/// has no such top-level member holding an integer from 0 to 2^53-1 (the detail names the
/// member, or `body` when there is no JSON object to read).
fn budget_charges<'c>(
    chain: &VerifiedChain<'c>,
    tool: &str,
    body: &LazyBody<'_>,
) -> Result<ChainCharges<'c>, Denial> {
    let mut charges = ChainCharges::default();
    for (link, envelope) in chain.iter().enumerate() {
        for budget in envelope.claims().budgets() {
            if !budget.pattern.matches(tool) {
                continue;
            }
            let body = body.get();
            let amount = body.amount(budget.member, MAX_AMOUNT).ok_or_else(|| {
                let mut path = ArgPath::body();
                if body.is_object() {
                    path.push_member(budget.member.bytes());
                }
                Denial::ArgumentsNotGranted(path)
            })?;
            charges.push(
                link,
                Charge {
                    index: budget.index,
                    pattern: budget.pattern.as_str(),
                    member: budget.member,
                    limit: budget.limit,
                    amount,
                },
            );
        }
    }
    Ok(charges)
}
