//! Delegation (`docs/spec.md` §13): what makes a link of a chain hold (`bad_delegation`) and
//! what makes a child no wider than its parent (`not_attenuated`). Pure functions over two
//! decoded claims sets; the verifier walks the chain with them, root first, without
//! recursion and without allocating.

use core::fmt;

use crate::claims::Claims;

/// Why a link of a chain does not hold (`bad_delegation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DelegationFault {
    /// The root (the first envelope) names a parent: it is a child sent without its chain.
    RootHasParent,
    /// A child names no parent.
    NoParent,
    /// The parent has no `cnf`: a bearer envelope cannot delegate.
    ParentNotHolderBound,
    /// The child's kid is not the parent's `cnf` kid.
    WrongSigner,
    /// The child's signature does not verify with the parent's `cnf` key.
    BadSignature,
    /// The child's `parent` is not the SHA-256 of its parent's bytes.
    WrongParent,
    /// More than four envelopes.
    TooLong,
    /// The child's cti is the cti of an envelope above it: uses are counted under the path of
    /// ctis from the root, which must name each envelope once.
    AncestorCti,
}

impl DelegationFault {
    /// A stable snake_case word, for details in logs and JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            DelegationFault::RootHasParent => "root_has_parent",
            DelegationFault::NoParent => "no_parent",
            DelegationFault::ParentNotHolderBound => "parent_not_holder_bound",
            DelegationFault::WrongSigner => "wrong_signer",
            DelegationFault::BadSignature => "bad_signature",
            DelegationFault::WrongParent => "wrong_parent",
            DelegationFault::TooLong => "too_long",
            DelegationFault::AncestorCti => "cti",
        }
    }
}

impl fmt::Display for DelegationFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DelegationFault::RootHasParent => {
                "the first envelope names a parent: a delegated envelope needs its whole chain"
            }
            DelegationFault::NoParent => "a child envelope names no parent",
            DelegationFault::ParentNotHolderBound => {
                "the parent has no cnf: only a holder-bound envelope can delegate"
            }
            DelegationFault::WrongSigner => "the child's kid is not the parent's holder key's",
            DelegationFault::BadSignature => {
                "the child's signature does not verify with the parent's holder key"
            }
            DelegationFault::WrongParent => "the child's parent is not its parent's digest",
            DelegationFault::TooLong => "the chain holds more than four envelopes",
            DelegationFault::AncestorCti => "the child's cti is the cti of an envelope above it",
        })
    }
}

/// Which field of a child grants more than its parent (`not_attenuated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Widening {
    /// An audience the parent does not list.
    Audience,
    /// nbf before the parent's.
    NotBefore,
    /// exp after the parent's.
    Expiry,
    /// More uses than the parent's.
    MaxUses,
    /// A tool grant no grant of the parent covers with its classes.
    Tool,
    /// `obo` other than the parent's: dropped, changed, or added where the parent has none.
    OnBehalfOf,
    /// `sid` other than the parent's: dropped, changed, or added where the parent has none.
    Session,
    /// No `cnf`: a child is never a bearer envelope.
    Holder,
}

impl Widening {
    /// A stable snake_case word, for details in logs and JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            Widening::Audience => "aud",
            Widening::NotBefore => "nbf",
            Widening::Expiry => "exp",
            Widening::MaxUses => "max_uses",
            Widening::Tool => "tools",
            Widening::OnBehalfOf => "obo",
            Widening::Session => "sid",
            Widening::Holder => "cnf",
        }
    }
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Widening::Audience => "the child lists an audience its parent does not",
            Widening::NotBefore => "the child's nbf is before its parent's",
            Widening::Expiry => "the child's exp is after its parent's",
            Widening::MaxUses => "the child's max_uses exceeds its parent's",
            Widening::Tool => "the child grants a tool or class that no grant of its parent covers",
            Widening::OnBehalfOf => {
                "the child's obo is not its parent's (dropped, changed, or added)"
            }
            Widening::Session => "the child's sid is not its parent's (dropped, changed, or added)",
            Widening::Holder => "the child has no cnf: a delegated envelope is never a bearer one",
        })
    }
}

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

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString as _;

    use super::*;

    // The codes are the details that audit events, `laissez verify --json` and the
    // command line's refusals print (`docs/spec.md` §13): pinned, one per fault, and each
    // fault says in words what is wrong.
    const FAULTS: [(DelegationFault, &str); 8] = [
        (DelegationFault::RootHasParent, "root_has_parent"),
        (DelegationFault::NoParent, "no_parent"),
        (
            DelegationFault::ParentNotHolderBound,
            "parent_not_holder_bound",
        ),
        (DelegationFault::WrongSigner, "wrong_signer"),
        (DelegationFault::BadSignature, "bad_signature"),
        (DelegationFault::WrongParent, "wrong_parent"),
        (DelegationFault::TooLong, "too_long"),
        (DelegationFault::AncestorCti, "cti"),
    ];
    const WIDENINGS: [(Widening, &str); 8] = [
        (Widening::Audience, "aud"),
        (Widening::NotBefore, "nbf"),
        (Widening::Expiry, "exp"),
        (Widening::MaxUses, "max_uses"),
        (Widening::Tool, "tools"),
        (Widening::OnBehalfOf, "obo"),
        (Widening::Session, "sid"),
        (Widening::Holder, "cnf"),
    ];

    #[test]
    fn every_fault_and_widening_has_its_detail_code_and_a_distinct_text() {
        let mut texts = std::vec::Vec::new();
        for (fault, code) in FAULTS {
            assert_eq!(fault.code(), code);
            texts.push(fault.to_string());
        }
        for (widening, code) in WIDENINGS {
            assert_eq!(widening.code(), code);
            texts.push(widening.to_string());
        }
        for (n, text) in texts.iter().enumerate() {
            assert!(text.len() > 20, "{text:?} says too little");
            assert!(!texts[..n].contains(text), "{text:?} twice");
        }
    }
}
