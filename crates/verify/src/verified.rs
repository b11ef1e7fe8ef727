//! What the verifier hands out: an authenticated envelope, a chain of them, and a call that
//! passed every check. Plain values over borrowed bytes, made only inside the crate; they sit
//! below the verifier and its checks (chain, gate, cache) and below the revocation queries,
//! which all read them, and name none of them.

use crate::approval::CountedApprovers;
use crate::claims::Claims;
use crate::fault::DelegationFault;
use crate::keys::{Kid, TrustedKey};
use crate::wire::MAX_CHAIN_LEN;

/// An envelope whose signature holds under a trusted key and whose claims are well formed.
///
/// Only [`Verifier`](crate::Verifier) makes one. Time, audience, agent, request and
/// revocation are checked by [`Verifier::check`](crate::Verifier::check) (or all at once by
/// [`Verifier::verify`](crate::Verifier::verify)), on every use.
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
/// counted. Only [`Verifier::verify_call`](crate::Verifier::verify_call) (and the cache's)
/// makes one.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedCall<'a> {
    envelope: VerifiedEnvelope<'a>,
    approvers: CountedApprovers,
}

impl<'a> VerifiedCall<'a> {
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

/// A chain whose every link holds: the root's signature under a trusted key, each child's
/// under its parent's holder key, each child naming its parent's digest, every claims set
/// well formed. Only [`Verifier::authenticate_chain`](crate::Verifier::authenticate_chain)
/// makes one (or a single verified envelope, [`VerifiedChain::single`]). Attenuation, time,
/// audience, request, revocation, invocation and approval are checked on every use by
/// [`Verifier::check_chain_call`](crate::Verifier::check_chain_call).
#[derive(Debug, Clone, Copy)]
pub struct VerifiedChain<'a> {
    root: VerifiedEnvelope<'a>,
    /// The children, root's first, filled from the front: `Some` up to the leaf.
    children: [Option<VerifiedEnvelope<'a>>; MAX_CHAIN_LEN - 1],
}

impl<'a> VerifiedChain<'a> {
    /// The chain of one envelope.
    pub const fn single(envelope: VerifiedEnvelope<'a>) -> Self {
        VerifiedChain {
            root: envelope,
            children: [None; MAX_CHAIN_LEN - 1],
        }
    }

    /// How many envelopes, 1 to 4.
    pub fn len(&self) -> usize {
        1 + self.children.iter().flatten().count()
    }

    /// Never: a chain holds at least its root.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The envelopes, root first.
    pub fn iter(&self) -> impl Iterator<Item = &VerifiedEnvelope<'a>> {
        core::iter::once(&self.root).chain(self.children.iter().flatten())
    }

    /// The leaf's ancestors, root first: every envelope but the leaf (none when not
    /// delegated). A use of the leaf spends a use of each (`docs/spec.md` §13).
    pub fn ancestors(&self) -> impl Iterator<Item = &VerifiedEnvelope<'a>> {
        self.iter().take(self.len() - 1)
    }

    /// The root: the envelope the trusted issuer signed.
    pub const fn root(&self) -> &VerifiedEnvelope<'a> {
        &self.root
    }

    /// The leaf: the envelope the call runs under (its audience, agent, tools and holder).
    pub fn leaf(&self) -> &VerifiedEnvelope<'a> {
        self.children.iter().flatten().last().unwrap_or(&self.root)
    }

    /// Whether it is a delegated chain (more than one envelope).
    pub const fn is_delegated(&self) -> bool {
        self.children[0].is_some()
    }

    /// Appends an authenticated child: [`DelegationFault::AncestorCti`] when its cti is the
    /// cti of an envelope above it (a use is counted under the path of ctis from the root,
    /// `docs/spec.md` §8, which must name each envelope once), [`DelegationFault::TooLong`]
    /// when the chain is full.
    pub(crate) fn push(&mut self, envelope: VerifiedEnvelope<'a>) -> Result<(), DelegationFault> {
        let cti = envelope.claims().cti();
        if self.iter().any(|above| above.claims().cti() == cti) {
            return Err(DelegationFault::AncestorCti);
        }
        match self.children.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => {
                *slot = Some(envelope);
                Ok(())
            }
            None => Err(DelegationFault::TooLong),
        }
    }

    /// Parent and child of each link, root first.
    pub(crate) fn pairs(
        &self,
    ) -> impl Iterator<Item = (&VerifiedEnvelope<'a>, &VerifiedEnvelope<'a>)> {
        self.iter().zip(self.iter().skip(1))
    }
}
