//! Delegation (`docs/spec.md` §13): what makes a child no wider than its parent
//! (`not_attenuated`). A pure function over two decoded claims sets; the verifier walks the
//! chain with it, root first, without recursion and without allocating. The faults a link
//! can have ([`DelegationFault`], [`Widening`]) are plain values
//! defined below the claims decoder, so the denial that carries them needs no claims.

use crate::claims::Claims;

pub use crate::fault::{AtLink, DelegationFault, Widening};
pub use crate::verified::VerifiedChain;

// `Widening::between` lives here, beside the function it exposes, rather than with the type:
// it reads claims, and the type's module must stay below the claims decoder.
impl Widening {
    /// The first field in which `child` grants more than `parent`, in the order of
    /// `docs/spec.md` §13; `None` when the child is attenuated. For a delegator checking a
    /// child before signing it; the verifier runs the same function on every link.
    pub fn between(parent: &Claims<'_>, child: &Claims<'_>) -> Option<Widening> {
        widening(parent, child)
    }
}

/// The first field in which `child` grants more than `parent`, in the order of
/// `docs/spec.md` §13. Approval rules are never compared: every rule of the chain holds.
pub(crate) fn widening(parent: &Claims<'_>, child: &Claims<'_>) -> Option<Widening> {
    if !child.aud().all(|aud| parent.aud().any(|p| p == aud)) {
        return Some(Widening::Audience);
    }
    if child.nbf() < parent.nbf() {
        return Some(Widening::NotBefore);
    }
    if child.exp() > parent.exp() {
        return Some(Widening::Expiry);
    }
    if child.max_uses() > parent.max_uses() {
        return Some(Widening::MaxUses);
    }
    let covered = |grant: &crate::tools::ToolGrant<'_>| {
        parent
            .tools()
            .any(|p| p.pattern.covers(&grant.pattern) && p.classes.contains_all(grant.classes))
    };
    if !child.tools().all(|grant| covered(&grant)) {
        return Some(Widening::Tool);
    }
    // Exactly the parent's, or none when it has none: only the orchestrator names a principal
    // or a session; an agent cannot claim one its own grant does not name.
    if child.obo() != parent.obo() {
        return Some(Widening::OnBehalfOf);
    }
    if child.sid() != parent.sid() {
        return Some(Widening::Session);
    }
    if child.holder().is_none() {
        return Some(Widening::Holder);
    }
    None
}
