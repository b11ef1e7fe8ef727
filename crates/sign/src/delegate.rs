//! Delegation from the delegator's side (`docs/spec.md` §13): an agent holding a
//! holder-bound envelope signs a narrower child for another agent with its own key.
//!
//! The delegator usually does not hold the issuer's key, so the parent chain is decoded
//! without checking its signatures: these checks keep a delegator from producing a child no
//! worker would accept, and say why (naming the field that widens); the worker checks the
//! whole chain itself.

use std::fmt;

use laissez_verify::delegation::Widening;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::wire::MAX_CHAIN_LEN;
use laissez_verify::{Claims, Denial, Kid};
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};

use crate::builder::EnvelopeBuilder;
use crate::error::BuildError;
use crate::keys::SecretKey;

/// Why a child was not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DelegateError {
    /// No parent was given.
    EmptyChain,
    /// The parent chain already holds four envelopes: a child would make five.
    ChainTooLong,
    /// An envelope of the parent chain does not decode (its position, root 0, and why).
    Parent(usize, Denial),
    /// The parent (the chain's leaf) has no `cnf`: a bearer envelope cannot delegate.
    ParentNotHolderBound,
    /// The parent is bound to another key than the delegator's.
    NotTheHolder {
        /// The kid of the parent's holder key.
        holder: Kid,
        /// The kid of the key asked to sign.
        key: Kid,
    },
    /// The child names no holder key: a child is never a bearer envelope.
    NoHolder,
    /// The child grants more than its parent (the field).
    NotAttenuated(Widening),
    /// The child's claims are refused by the builder.
    Build(BuildError),
}

impl DelegateError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            DelegateError::EmptyChain => "empty_chain",
            DelegateError::ChainTooLong => "chain_too_long",
            DelegateError::Parent(_, d) => d.code(),
            DelegateError::ParentNotHolderBound => "parent_not_holder_bound",
            DelegateError::NotTheHolder { .. } => "not_the_holder",
            DelegateError::NoHolder => "no_holder",
            DelegateError::NotAttenuated(_) => "not_attenuated",
            DelegateError::Build(e) => e.code(),
        }
    }
}

impl fmt::Display for DelegateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelegateError::EmptyChain => f.write_str("no parent envelope was given"),
            DelegateError::ChainTooLong => write!(
                f,
                "the parent chain holds {MAX_CHAIN_LEN} envelopes already: a chain is at most {MAX_CHAIN_LEN} long"
            ),
            DelegateError::Parent(at, d) => {
                write!(f, "envelope {at} of the parent chain cannot be read: {d}")
            }
            DelegateError::ParentNotHolderBound => f.write_str(
                "the parent is not holder-bound (no cnf): only a holder-bound envelope can delegate",
            ),
            DelegateError::NotTheHolder { holder, key } => write!(
                f,
                "the parent is bound to the holder key {holder}, not to this key ({key})"
            ),
            DelegateError::NoHolder => f.write_str(
                "the child names no holder key (--holder): a delegated envelope is never a bearer one",
            ),
            DelegateError::NotAttenuated(w) => write!(f, "not attenuated ({}): {w}", w.code()),
            DelegateError::Build(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DelegateError {}

/// A delegation chain: its envelopes, root first, leaf last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChain {
    links: Vec<Vec<u8>>,
}

impl SignedChain {
    /// The envelopes, root first.
    pub fn links(&self) -> Vec<&[u8]> {
        self.links.iter().map(Vec::as_slice).collect()
    }

    /// The leaf: the envelope the new holder makes calls under.
    pub fn leaf(&self) -> &[u8] {
        self.links.last().map_or(&[], Vec::as_slice)
    }

    /// The leaf's ancestors, root first: what the `laissez-chain` header carries.
    pub fn ancestors(&self) -> Vec<&[u8]> {
        let n = self.links.len().saturating_sub(1);
        self.links[..n].iter().map(Vec::as_slice).collect()
    }

    /// The text form: each envelope's base64url, joined by `.`, root first.
    pub fn to_text(&self) -> String {
        crate::chain_text::encode_chain(&self.links)
    }
}

/// Signs `child` as a delegation of the leaf of `parent_chain` (root first), with the
/// parent's holder key, at the system clock's time. See [`delegate_at`].
pub fn delegate(
    holder: &SecretKey,
    parent_chain: &[&[u8]],
    child: EnvelopeBuilder,
) -> Result<SignedChain, DelegateError> {
    delegate_at(
        holder,
        parent_chain,
        child,
        crate::unix_now(),
        &mut getrandom::SysRng,
    )
}

/// Signs `child` as a delegation of the leaf of `parent_chain` as if the time were `now`.
///
/// The child takes the parent's `obo` and `sid` when it sets none (attribution survives the
/// handoff) and names the parent by its digest. Refused, with the reason: an empty or full
/// chain, a parent that does not decode, is not holder-bound or is bound to another key than
/// `holder`, a child without a holder key, and a child that grants more than its parent
/// (`DelegateError::NotAttenuated` names the field: aud, nbf, exp, max_uses, tools, obo,
/// sid, cnf).
pub fn delegate_at<R: TryCryptoRng + ?Sized>(
    holder: &SecretKey,
    parent_chain: &[&[u8]],
    mut child: EnvelopeBuilder,
    now: u64,
    rng: &mut R,
) -> Result<SignedChain, DelegateError> {
    let parent = *parent_chain.last().ok_or(DelegateError::EmptyChain)?;
    if parent_chain.len() >= MAX_CHAIN_LEN {
        return Err(DelegateError::ChainTooLong);
    }
    for (at, link) in parent_chain.iter().enumerate() {
        claims_of(link).map_err(|d| DelegateError::Parent(at, d))?;
    }
    let parent_claims =
        claims_of(parent).map_err(|d| DelegateError::Parent(parent_chain.len() - 1, d))?;
    let parent_holder = parent_claims
        .holder()
        .ok_or(DelegateError::ParentNotHolderBound)?;
    // The whole key, not only its kid.
    if parent_holder.as_bytes() != holder.public_key().as_bytes() {
        return Err(DelegateError::NotTheHolder {
            holder: parent_holder.kid(),
            key: holder.kid(),
        });
    }
    if child.holder.is_none() {
        return Err(DelegateError::NoHolder);
    }
    if child.obo.is_none() {
        child.obo = parent_claims.obo().map(str::to_owned);
    }
    if child.session.is_none() {
        child.session = parent_claims.sid().map(str::to_owned);
    }
    child.parent = Some(Sha256::digest(parent).into());
    let signed = child
        .sign_at(holder, now, rng)
        .map_err(DelegateError::Build)?;
    let child_claims = signed
        .claims()
        .map_err(|d| DelegateError::Build(BuildError::SelfCheck(d)))?;
    if let Some(field) = Widening::between(&parent_claims, &child_claims) {
        return Err(DelegateError::NotAttenuated(field));
    }
    let mut links: Vec<Vec<u8>> = parent_chain.iter().map(|l| l.to_vec()).collect();
    links.push(signed.into_bytes());
    Ok(SignedChain { links })
}

/// The claims of an envelope, decoded without checking its signature.
fn claims_of(bytes: &[u8]) -> Result<Claims<'_>, Denial> {
    UntrustedEnvelope::decode(bytes)?.claims_unverified()
}
