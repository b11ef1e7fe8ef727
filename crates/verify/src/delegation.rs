//! Delegation (`docs/spec.md` §13): what makes a child no wider than its parent
//! (`not_attenuated`). A pure function over two decoded claims sets; the verifier walks the
//! chain with it, root first, without recursion and without allocating. The faults a link
//! can have ([`DelegationFault`], [`Widening`]) are plain values
//! defined below the claims decoder, so the denial that carries them needs no claims.

use crate::args::UNCONSTRAINED;
use crate::claims::Claims;
use crate::tools::ToolGrant;

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
    for grant in child.tools() {
        if let Some(widening) = uncovered(parent, &grant) {
            return Some(widening);
        }
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

/// Whether some grant of `parent` covers the child's `grant` (`docs/spec.md` §13, §16): its
/// pattern covers the child's, its classes hold the child's, and it has no args or args the
/// child's are narrower than (a child grant without args is covered only by a parent grant
/// without args). When none does, the widening: the args' failure against the first parent
/// grant whose pattern and classes cover it, or else the tool itself.
fn uncovered(parent: &Claims<'_>, grant: &ToolGrant<'_>) -> Option<Widening> {
    let mut first_failure = None;
    for p in parent.tools() {
        if !p.pattern.covers(&grant.pattern) || !p.classes.contains_all(grant.classes) {
            continue;
        }
        let narrower = match (p.args, grant.args) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(UNCONSTRAINED),
            (Some(parent_args), Some(child_args)) => child_args.narrower_than(&parent_args),
        };
        match narrower {
            Ok(()) => return None,
            Err(why) => {
                first_failure.get_or_insert(why);
            }
        }
    }
    Some(first_failure.map_or(Widening::Tool, Widening::Args))
}
