//! The verifier: trusted keys, audience, policy, and the checks in the contract's order.

use core::fmt;

use crate::approval::{CountedApprovers, Counting};
use crate::call::{Attached, Call};
use crate::claims::Claims;
use crate::envelope::UntrustedEnvelope;
use crate::error::{Denial, Malformed, MalformedKind};
use crate::invocation::{InvocationFault, Mismatch, UntrustedInvocation};
use crate::keys::{self, Kid, TrustedKey};
use crate::policy::{Policy, PolicyError};
use crate::tools::{ActionClass, Request};
use crate::wire::MAX_APPROVALS;

/// A revocation set: envelopes (by cti) and signing keys (by kid) no longer honoured.
pub trait Revocations {
    /// Whether the envelope `cti`, or any envelope signed by `kid`, is revoked.
    fn is_revoked(&self, cti: &[u8; 16], kid: &Kid) -> bool;
}

/// The empty revocation set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn is_revoked(&self, _: &[u8; 16], _: &Kid) -> bool {
        false
    }
}

/// A revocation set held in two slices.
#[derive(Debug, Clone, Copy, Default)]
pub struct RevocationList<'r> {
    /// Revoked envelope ids.
    pub ctis: &'r [[u8; 16]],
    /// Revoked signing keys.
    pub kids: &'r [Kid],
}

impl Revocations for RevocationList<'_> {
    fn is_revoked(&self, cti: &[u8; 16], kid: &Kid) -> bool {
        self.ctis.contains(cti) || self.kids.contains(kid)
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
    audience: &'k str,
    policy: Policy,
    agent: Option<&'k str>,
    revocations: &'k dyn Revocations,
    /// Keys whose approvals count (`docs/spec.md` §12); disjoint from `keys`.
    approvers: &'k [TrustedKey],
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
        self.check_envelope(envelope, now, request)?;
        if envelope.claims.holder().is_some() || self.policy.require_holder() {
            return Err(Denial::InvocationRequired);
        }
        if let Some(class) = request.and_then(Request::class)
            && let Some(needed) = self.approvals_needed(envelope.claims(), class)
        {
            return Err(Denial::ApprovalRequired { counted: 0, needed });
        }
        Ok(())
    }

    /// How many approvals a call of `class` needs under `claims` and the policy: `None`
    /// when none, `Some(0)` when the policy requires approval and no rule covers the class.
    fn approvals_needed(&self, claims: &Claims<'_>, class: ActionClass) -> Option<u8> {
        match claims.approval() {
            Some(rule) if rule.covers(class) => Some(rule.m()),
            _ => self
                .policy
                .require_approval()
                .filter(|classes| classes.contains(class))
                .map(|_| 0),
        }
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
        let attached = attached.into();
        if attached.approvals().len() > MAX_APPROVALS {
            return Err(Malformed::new(0, MalformedKind::TooManyApprovals).into());
        }
        let request = Request::for_call(call);
        self.check_envelope(envelope, now, Some(&request))?;
        self.check_invocation(envelope, now, call, attached.invocation())?;
        self.check_approvals(envelope.claims(), now, call, attached.approvals())
    }

    /// The rows `invocation_required`, `bad_invocation` and `invocation_mismatch`.
    fn check_invocation(
        &self,
        envelope: &VerifiedEnvelope<'_>,
        now: u64,
        call: &Call<'_>,
        invocation: Option<&[u8]>,
    ) -> Result<(), Denial> {
        let Some(holder) = envelope.claims.holder() else {
            return if self.policy.require_holder() {
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
        let leeway = self.policy.leeway();
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

    /// The row `approval_required`: counts the approvals when the call's class needs them.
    fn check_approvals(
        &self,
        claims: &Claims<'_>,
        now: u64,
        call: &Call<'_>,
        approvals: &[&[u8]],
    ) -> Result<CountedApprovers, Denial> {
        let Some(needed) = self.approvals_needed(claims, call.class()) else {
            return Ok(CountedApprovers::default());
        };
        let Some(rule) = claims.approval().filter(|rule| rule.covers(call.class())) else {
            return Err(Denial::ApprovalRequired { counted: 0, needed });
        };
        let counted = Counting {
            rule,
            approver_keys: self.approvers,
            call,
            now,
            leeway: self.policy.leeway(),
            max_lifetime: self.policy.max_lifetime(),
        }
        .count(approvals);
        if counted.len() < usize::from(needed) {
            return Err(Denial::ApprovalRequired {
                // At most 16.
                counted: counted.len() as u8,
                needed,
            });
        }
        Ok(counted)
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
        let leeway = self.policy.leeway();
        if now.saturating_add(leeway) < claims.nbf() {
            return Err(Denial::NotYetValid);
        }
        if now >= claims.exp().saturating_add(leeway) {
            return Err(Denial::Expired);
        }
        // Decoding guarantees exp > nbf.
        if claims.exp() - claims.nbf() > self.policy.max_lifetime() {
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
        if self.revocations.is_revoked(claims.cti(), &envelope.kid) {
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
