//! The verifier: trusted keys, audience, policy, and the checks in the contract's order.

use core::fmt;

use crate::approval::CountedApprovers;
use crate::call::{Attached, Call};
use crate::chain::VerifiedChain;
use crate::claims::{Claims, KnownKeys, NoKnownKeys};
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::fault::DelegationFault;
use crate::keys::{self, Kid, TrustedKey};
use crate::policy::{Policy, PolicyError};
use crate::revocation::{NoRevocations, Revocations};
use crate::tools::Request;

/// An envelope whose signature holds under a trusted key and whose claims are well formed.
///
/// Only [`Verifier`] makes one. Time, audience, agent, request and revocation are checked
/// by [`Verifier::check`] (or all at once by [`Verifier::verify`]), on every use.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedEnvelope<'a> {
    bytes: &'a [u8],
    /// The whole public key the signature held under, not only its 64-bit kid: a verifier
    /// honours the envelope only while it trusts these exact 32 bytes.
    key: [u8; 32],
    kid: Kid,
    claims: Claims<'a>,
}

impl<'a> VerifiedEnvelope<'a> {
    pub(crate) fn new(bytes: &'a [u8], key: &TrustedKey, claims: Claims<'a>) -> Self {
        VerifiedEnvelope {
            bytes,
            key: *key.as_bytes(),
            kid: key.kid(),
            claims,
        }
    }

    /// Rebuilds a verified envelope from a cache entry that recorded the key it held under.
    #[cfg(feature = "std")]
    pub(crate) const fn from_cache(
        bytes: &'a [u8],
        key: [u8; 32],
        kid: Kid,
        claims: Claims<'a>,
    ) -> Self {
        VerifiedEnvelope {
            bytes,
            key,
            kid,
            claims,
        }
    }

    /// The raw public key whose signature held.
    pub const fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The envelope bytes as received.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// SHA-256 of the envelope's bytes as received: what a call names it by.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.bytes).into()
    }

    /// The kid of the key that signed it.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// The authenticated claims.
    pub const fn claims(&self) -> &Claims<'a> {
        &self.claims
    }
}

/// A call that passed every check of the verifier: its envelope and the approvers that
/// counted. Only [`Verifier::verify_call`] (and the cache's) makes one.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedCall<'a> {
    envelope: VerifiedEnvelope<'a>,
    approvers: CountedApprovers,
}

impl<'a> VerifiedCall<'a> {
    #[cfg(feature = "std")]
    pub(crate) const fn new(envelope: VerifiedEnvelope<'a>, approvers: CountedApprovers) -> Self {
        VerifiedCall {
            envelope,
            approvers,
        }
    }

    /// The verified envelope.
    pub const fn envelope(&self) -> &VerifiedEnvelope<'a> {
        &self.envelope
    }

    /// The approvers whose approvals counted (empty when the class needs none).
    pub const fn approvers(&self) -> &CountedApprovers {
        &self.approvers
    }
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
    pub(crate) cache: Option<&'k crate::cache::EnvelopeCache>,
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

    /// Authenticates through `cache` in [`Verifier::decide`]: a chain's links verified before
    /// (under this verifier's exact keys, or the same parent) are not verified again. Only
    /// the signatures are cached, never a row that depends on the moment or the call.
    #[cfg(feature = "std")]
    #[must_use]
    pub const fn with_cache(mut self, cache: &'k crate::cache::EnvelopeCache) -> Self {
        self.cache = Some(cache);
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
        let verified = self.authenticate(bytes)?;
        self.check(&verified, now, request)?;
        Ok(verified)
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
            return Err(Denial::BadDelegation(DelegationFault::RootHasParent));
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
        let envelope = self.authenticate(bytes)?;
        let approvers = self.check_call(&envelope, now, call, attached)?;
        Ok(VerifiedCall {
            envelope,
            approvers,
        })
    }
}
