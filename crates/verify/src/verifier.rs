//! The verifier: trusted keys, audience, policy, and the checks in the contract's order.

use core::fmt;

use crate::call::Call;
use crate::claims::Claims;
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::invocation::{InvocationFault, Mismatch, UntrustedInvocation};
use crate::keys::{self, Kid, TrustedKey};
use crate::revocation::{NoRevocations, RevocationQuery, Revocations};
use crate::tools::Request;

/// Default clock leeway, seconds.
pub const DEFAULT_LEEWAY: u64 = 5;
/// Largest leeway a policy accepts, seconds.
pub const MAX_LEEWAY: u64 = 60;
/// Default maximum lifetime (`exp - nbf`), seconds.
pub const DEFAULT_MAX_LIFETIME: u64 = 3600;
/// Largest maximum lifetime a policy accepts, seconds: 7 days (`docs/spec.md` §2).
pub const MAX_MAX_LIFETIME: u64 = 7 * 24 * 3600;

/// Time policy of a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    leeway: u64,
    max_lifetime: u64,
    require_holder: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            require_holder: false,
        }
    }
}

/// A policy value out of its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Leeway above [`MAX_LEEWAY`].
    LeewayTooLarge,
    /// Maximum lifetime of 0 or above [`MAX_MAX_LIFETIME`].
    MaxLifetimeOutOfRange,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::LeewayTooLarge => write!(f, "leeway must be at most {MAX_LEEWAY} s"),
            PolicyError::MaxLifetimeOutOfRange => {
                write!(f, "max lifetime must be 1 to {MAX_MAX_LIFETIME} s")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

impl Policy {
    /// A policy with the given leeway and maximum lifetime, in seconds.
    pub const fn new(leeway: u64, max_lifetime: u64) -> Result<Policy, PolicyError> {
        if leeway > MAX_LEEWAY {
            return Err(PolicyError::LeewayTooLarge);
        }
        if max_lifetime == 0 || max_lifetime > MAX_MAX_LIFETIME {
            return Err(PolicyError::MaxLifetimeOutOfRange);
        }
        Ok(Policy {
            leeway,
            max_lifetime,
            require_holder: false,
        })
    }

    /// Requires every envelope to be holder-bound (`cnf`): a bearer envelope is then
    /// `invocation_required`.
    #[must_use]
    pub const fn with_require_holder(mut self, require: bool) -> Self {
        self.require_holder = require;
        self
    }

    /// Whether every envelope must be holder-bound.
    pub const fn require_holder(&self) -> bool {
        self.require_holder
    }

    /// Clock leeway, seconds.
    pub const fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Maximum accepted `exp - nbf`, seconds.
    pub const fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }
}

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

/// Verifies envelopes for one audience against a set of trusted keys.
#[derive(Clone, Copy)]
pub struct Verifier<'k> {
    keys: &'k [TrustedKey],
    audience: &'k str,
    policy: Policy,
    agent: Option<&'k str>,
    revocations: &'k dyn Revocations,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("audience", &self.audience)
            .field("policy", &self.policy)
            .field("agent", &self.agent)
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
        }
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
        let verified = self.authenticate(bytes)?;
        self.check(&verified, now, request)?;
        Ok(verified)
    }

    /// The checks that depend only on the bytes and the keys: decode, key, signature,
    /// claims. The result may be cached; [`Verifier::check`] must still run on every use.
    pub fn authenticate<'a>(&self, bytes: &'a [u8]) -> Result<VerifiedEnvelope<'a>, Denial> {
        let envelope = UntrustedEnvelope::decode(bytes)?;
        let key = keys::find(self.keys, &envelope.kid()).ok_or(Denial::UnknownKey)?;
        envelope.verify_signature(&key)?;
        // Claims are decoded only once the signature holds.
        let (payload, base) = envelope.payload();
        let claims = Claims::decode(payload, base)?;
        Ok(VerifiedEnvelope::new(bytes, &key, claims))
    }

    /// The checks that depend on the moment and the request, for an envelope used without a
    /// call (`docs/spec.md` §2): time, lifetime, audience, agent, tool and class (when
    /// `request` is given), revocation; then, since no invocation can come without a call, a
    /// holder-bound envelope (or any envelope when the policy requires holder binding and it
    /// has none) is `invocation_required`.
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
        self.check_envelope(envelope, now, request)?;
        if envelope.claims.holder().is_some() || self.policy.require_holder {
            return Err(Denial::InvocationRequired);
        }
        Ok(())
    }

    /// Every check of a call on a queue (`docs/spec.md` §2, §11): the envelope's checks for
    /// the call's tool and class, then the holder binding: a holder-bound envelope needs an
    /// `invocation` signed by its `cnf` key over exactly this call, made between the
    /// envelope's nbf and exp and not after now (each with the leeway). An invocation that
    /// comes with a bearer envelope is ignored, unless the policy requires holder binding.
    /// Use counting (the ledger) comes after.
    pub fn check_call(
        &self,
        envelope: &VerifiedEnvelope<'_>,
        now: u64,
        call: &Call<'_>,
        invocation: Option<&[u8]>,
    ) -> Result<(), Denial> {
        let request = Request::for_call(call);
        self.check_envelope(envelope, now, Some(&request))?;
        let Some(holder) = envelope.claims.holder() else {
            return if self.policy.require_holder {
                Err(Denial::InvocationRequired)
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
        if *call.envelope_digest() != envelope.digest() {
            return Err(Denial::InvocationMismatch(Mismatch::Envelope));
        }
        if let Some(field) = invocation.mismatch(call) {
            return Err(Denial::InvocationMismatch(field));
        }
        let leeway = self.policy.leeway;
        let claims = envelope.claims();
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

    /// [`Verifier::authenticate`] then [`Verifier::check_call`].
    pub fn verify_call<'a>(
        &self,
        bytes: &'a [u8],
        now: u64,
        call: &Call<'_>,
        invocation: Option<&[u8]>,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let verified = self.authenticate(bytes)?;
        self.check_call(&verified, now, call, invocation)?;
        Ok(verified)
    }

    /// The rows of `docs/spec.md` §2 from `not_yet_valid` through `revoked`.
    fn check_envelope(
        &self,
        envelope: &VerifiedEnvelope<'_>,
        now: u64,
        request: Option<&Request<'_>>,
    ) -> Result<(), Denial> {
        if !self.trusts(&envelope.key) {
            return Err(Denial::UnknownKey);
        }
        let claims = envelope.claims();
        let leeway = self.policy.leeway;
        if now.saturating_add(leeway) < claims.nbf() {
            return Err(Denial::NotYetValid);
        }
        if now >= claims.exp().saturating_add(leeway) {
            return Err(Denial::Expired);
        }
        // Decoding guarantees exp > nbf.
        if claims.exp() - claims.nbf() > self.policy.max_lifetime {
            return Err(Denial::LifetimeTooLong);
        }
        if !claims.aud().any(|aud| aud == self.audience) {
            return Err(Denial::WrongAudience);
        }
        if self.agent.is_some_and(|agent| agent != claims.sub()) {
            return Err(Denial::WrongAgent);
        }
        if let Some(request) = request {
            check_request(claims, request)?;
        }
        if self.revocations.revokes(&RevocationQuery::of(envelope)) {
            return Err(Denial::Revoked);
        }
        Ok(())
    }
}

/// `unknown_tool` when the worker's catalogue does not list the tool; `tool_not_granted`
/// when no pattern matches; `class_not_granted` when patterns match but
/// none of them allows the class.
fn check_request(claims: &Claims<'_>, request: &Request<'_>) -> Result<(), Denial> {
    // The class is the worker's: a tool its catalogue does not list runs under no grant.
    let class = request.class().ok_or(Denial::UnknownTool)?;
    let mut tool_matched = false;
    for grant in claims.tools() {
        if grant.pattern.matches(request.tool()) {
            if grant.classes.contains(class) {
                return Ok(());
            }
            tool_matched = true;
        }
    }
    Err(if tool_matched {
        Denial::ClassNotGranted
    } else {
        Denial::ToolNotGranted
    })
}
