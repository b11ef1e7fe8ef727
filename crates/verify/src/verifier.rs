//! The verifier: trusted keys, audience, policy, and the checks in the contract's order.

use core::fmt;

use crate::approval::CountedApprovers;
use crate::call::{Attached, Call};
use crate::claims::{Claims, KnownKeys, NoKnownKeys};
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::fault::DelegationFault;
use crate::keys::{self, TrustedKey};
use crate::policy::{Policy, PolicyError};
use crate::revocation::{NoRevocations, Revocations};
use crate::tools::Request;
use crate::verified::{VerifiedCall, VerifiedChain, VerifiedEnvelope};

/// Where a verifier authenticates one link when it has a cache (`with_cache`, `std`): a
/// link verified before, or verified now and kept. The envelope cache implements it in its
/// own module; the one chain loop ([`Verifier::authenticate_chain`]) calls it. A trait, so
/// that the verifier names no cache: the cache calls the verifier's checks, and stays above
/// it.
#[cfg(feature = "std")]
pub(crate) trait LinkCache {
    /// The root: [`Verifier::authenticate`] unless these bytes were authenticated under
    /// this verifier's exact key before. `now` drops dead entries.
    fn root<'a>(
        &self,
        verifier: &Verifier<'_>,
        bytes: &'a [u8],
        now: u64,
    ) -> Result<VerifiedEnvelope<'a>, Denial>;

    /// A child of `parent`: authenticated in full unless these bytes were authenticated
    /// under this very parent before.
    fn child<'a>(
        &self,
        verifier: &Verifier<'_>,
        parent: &VerifiedEnvelope<'_>,
        bytes: &'a [u8],
        now: u64,
    ) -> Result<VerifiedEnvelope<'a>, Denial>;
}

/// Verifies envelopes for one audience against a set of trusted keys.
#[derive(Clone, Copy)]
pub struct Verifier<'k> {
    keys: &'k [TrustedKey],
    pub(crate) audience: &'k str,
    pub(crate) policy: Policy,
    pub(crate) agent: Option<&'k str>,
    pub(crate) revocations: &'k dyn Revocations,
    /// Keys whose approvals count (`docs/spec.md` §12); disjoint from `keys`.
    pub(crate) approvers: &'k [TrustedKey],
    /// Verified envelopes kept by their digest, consulted by [`Verifier::decide`].
    #[cfg(feature = "std")]
    pub(crate) cache: Option<&'k dyn LinkCache>,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("audience", &self.audience)
            .field("policy", &self.policy)
            .field("agent", &self.agent)
            .field("approvers", &self.approvers)
            .finish_non_exhaustive()
    }
}

impl<'k> Verifier<'k> {
    /// A verifier for `audience` (this worker's queue or pool name) trusting `keys`, with the
    /// default policy, no expected agent and no revocations.
    pub fn new(keys: &'k [TrustedKey], audience: &'k str) -> Self {
        Verifier {
            keys,
            audience,
            policy: Policy::default(),
            agent: None,
            revocations: &NoRevocations,
            approvers: &[],
            #[cfg(feature = "std")]
            cache: None,
        }
    }

    /// Counts approvals signed by `approvers` (`docs/spec.md` §12). Refused when one of them
    /// is also a trusted issuer key: an issuer never approves its own calls.
    pub fn with_approvers(mut self, approvers: &'k [TrustedKey]) -> Result<Self, PolicyError> {
        if approvers.iter().any(|a| self.trusts(a.as_bytes())) {
            return Err(PolicyError::ApproverIsIssuer);
        }
        self.approvers = approvers;
        Ok(self)
    }

    /// The approver keys.
    pub const fn approvers(&self) -> &'k [TrustedKey] {
        self.approvers
    }

    /// Uses `policy` instead of the default.
    #[must_use]
    pub const fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Requires `sub` to equal `agent`.
    #[must_use]
    pub const fn expect_agent(mut self, agent: &'k str) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Consults `revocations` on every check.
    #[must_use]
    pub const fn with_revocations(mut self, revocations: &'k dyn Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// The audience this verifier accepts.
    pub const fn audience(&self) -> &'k str {
        self.audience
    }

    /// The trusted keys.
    pub const fn keys(&self) -> &'k [TrustedKey] {
        self.keys
    }

    /// The policy in force.
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether this verifier trusts exactly this raw public key.
    pub(crate) fn trusts(&self, key: &[u8; 32]) -> bool {
        self.keys.iter().any(|k| k.as_bytes() == key)
    }

    /// Every check of the contract, in its order: decode, key, signature, claims, time,
    /// lifetime, audience, agent, request (when given), revocation. `now` is seconds since
    /// the Unix epoch from a clock the caller trusts.
    pub fn verify<'a>(
        &self,
        bytes: &'a [u8],
        now: u64,
        request: Option<&Request<'_>>,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let verified = self.authenticate_at(bytes, now)?;
        self.check(&verified, now, request)?;
        Ok(verified)
    }

    /// [`Verifier::authenticate`] through this verifier's cache when it has one: one
    /// envelope, without building a chain around it (the cached path of every `verify`).
    fn authenticate_at<'a>(
        &self,
        bytes: &'a [u8],
        now: u64,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        #[cfg(feature = "std")]
        if let Some(cache) = self.cache {
            return cache.root(self, bytes, now);
        }
        let _ = now; // Only a cache needs the time.
        self.authenticate(bytes)
    }

    /// The checks that depend only on the bytes and the keys: decode, key, signature,
    /// claims, and no `parent` (a delegated envelope is checked with its chain,
    /// [`Verifier::authenticate_chain`]). The result may be cached; [`Verifier::check`] must
    /// still run on every use.
    pub fn authenticate<'a>(&self, bytes: &'a [u8]) -> Result<VerifiedEnvelope<'a>, Denial> {
        self.authenticate_with(bytes, &NoKnownKeys)
    }

    /// [`Verifier::authenticate`], taking a holder key (`cnf`) found in `known` as checked.
    pub(crate) fn authenticate_with<'a>(
        &self,
        bytes: &'a [u8],
        known: &dyn KnownKeys,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let envelope = UntrustedEnvelope::decode(bytes)?;
        let key = keys::find(self.keys, &envelope.kid()).ok_or(Denial::UnknownKey)?;
        envelope.verify_signature(&key)?;
        // Claims are decoded only once the signature holds.
        let (payload, base) = envelope.payload();
        let claims = Claims::decode_with_holder(payload, base, known)?;
        // Only a chain's root is signed by an issuer, and a root names no parent: a delegated
        // envelope without its chain proves nothing (`docs/spec.md` §13).
        if claims.parent().is_some() {
            return Err(Denial::BadDelegation(DelegationFault::RootHasParent.at(0)));
        }
        Ok(VerifiedEnvelope::new(bytes, &key, claims))
    }

    /// The checks that depend on the moment and the request, for an envelope used without a
    /// call (`docs/spec.md` §2): time, lifetime, audience, agent, tool and class (when
    /// `request` is given), revocation; then, since no invocation can come without a call, a
    /// holder-bound envelope (or any envelope when the policy requires holder binding and it
    /// has none) is `invocation_required`, and a requested class that needs approval is
    /// `approval_required` (0 counted: no approval can come without a call).
    ///
    /// The envelope must have been authenticated under one of this verifier's own keys (the
    /// whole 32-byte key, not only its kid), else `unknown_key`: a verified envelope from a
    /// verifier with other keys proves nothing here.
    pub fn check(
        &self,
        envelope: &VerifiedEnvelope<'_>,
        now: u64,
        request: Option<&Request<'_>>,
    ) -> Result<(), Denial> {
        self.check_chain(&VerifiedChain::single(*envelope), now, request)
    }

    /// Every check of a call on a queue (`docs/spec.md` §2, §11, §12): the envelope's checks
    /// for the call's tool and class, then the holder binding: a holder-bound envelope needs
    /// an invocation signed by its `cnf` key over exactly this call, made between the
    /// envelope's nbf and exp and not after now (each with the leeway); then approval: when
    /// the class needs it, at least m of the attached approvals must count. An invocation
    /// that comes with a bearer envelope is ignored, unless the policy requires holder
    /// binding. Returns the approvers that counted. Use counting (the ledger) comes after.
    pub fn check_call<'p>(
        &self,
        envelope: &VerifiedEnvelope<'_>,
        now: u64,
        call: &Call<'_>,
        attached: impl Into<Attached<'p>>,
    ) -> Result<CountedApprovers, Denial> {
        self.check_chain_call(&VerifiedChain::single(*envelope), now, call, attached)
    }

    /// [`Verifier::authenticate`] then [`Verifier::check_call`].
    pub fn verify_call<'a, 'p>(
        &self,
        bytes: &'a [u8],
        now: u64,
        call: &Call<'_>,
        attached: impl Into<Attached<'p>>,
    ) -> Result<VerifiedCall<'a>, Denial> {
        let envelope = self.authenticate_at(bytes, now)?;
        let approvers = self.check_call(&envelope, now, call, attached)?;
        Ok(VerifiedCall::new(envelope, approvers))
    }
}
