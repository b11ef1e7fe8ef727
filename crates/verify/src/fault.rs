//! The faults a denial carries (`docs/spec.md` §11, §13): why an invocation does not hold,
//! which part of it differs from the call, why a link of a delegation chain does not hold,
//! and which field of a child grants more than its parent. Plain values with their stable
//! detail codes, in a module of their own so that the decoders and checks that find them and
//! the [`Denial`](crate::Denial) that carries them both depend on it, and not on each other.

use core::fmt;

use crate::args::NotNarrower;

use crate::malformed::Malformed;

/// Why an invocation does not hold (`bad_invocation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvocationFault {
    /// Not an invocation as the format defines it (offset and kind).
    Malformed(Malformed),
    /// Its kid is not the holder key's.
    WrongKey,
    /// Its signature does not verify with the holder key.
    BadSignature,
    /// What came with the call could not be read as an invocation's bytes (the front-end
    /// says why): checked as an invocation of no bytes, so it is refused only where an
    /// invocation is checked.
    Unreadable(Unreadable),
}

/// Why a front-end could not read the invocation that came with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreadable {
    /// Neither bytes nor text (a transport's typed value: a number, a table...).
    NotBytesOrText,
    /// Text longer than any invocation's, or that decodes to more than 1024 bytes.
    TooLong,
    /// Text that is not base64url (or nothing but whitespace).
    NotBase64url,
}

impl Unreadable {
    /// A stable snake_case word: the detail of the denial.
    pub const fn code(&self) -> &'static str {
        match self {
            Unreadable::NotBytesOrText => "not_bytes_or_text",
            Unreadable::TooLong => "too_long",
            Unreadable::NotBase64url => "not_base64url",
        }
    }

    /// How the text reader's refusal reads for an invocation.
    pub const fn of_text(error: &crate::text::TextError) -> Self {
        match error {
            crate::text::TextError::TooLong(_) => Unreadable::TooLong,
            _ => Unreadable::NotBase64url,
        }
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unreadable::NotBytesOrText => "the invocation is neither bytes nor text",
            Unreadable::TooLong => "the invocation's text is longer than any invocation's",
            Unreadable::NotBase64url => {
                "the invocation is neither invocation bytes nor base64url text"
            }
        })
    }
}

impl fmt::Display for InvocationFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvocationFault::Malformed(m) => write!(f, "malformed invocation: {m}"),
            InvocationFault::WrongKey => {
                f.write_str("the invocation's kid is not the holder key's")
            }
            InvocationFault::BadSignature => {
                f.write_str("the invocation's signature does not verify with the holder key")
            }
            InvocationFault::Unreadable(why) => write!(f, "unreadable invocation: {why}"),
        }
    }
}

/// Which part of an invocation differs from the actual call (`invocation_mismatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// It signs another envelope.
    Envelope,
    /// It signs another audience.
    Audience,
    /// It signs another message id.
    MessageId,
    /// It signs another tool.
    Tool,
    /// It signs another class.
    Class,
    /// It signs another body.
    Body,
    /// Its iat is before the envelope's nbf − leeway.
    IatBeforeNbf,
    /// Its iat is after now + leeway.
    IatInFuture,
    /// Its iat is at or after the envelope's exp + leeway.
    IatAfterExp,
}

impl Mismatch {
    /// A stable snake_case word, for details in logs and JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            Mismatch::Envelope => "envelope",
            Mismatch::Audience => "audience",
            Mismatch::MessageId => "message_id",
            Mismatch::Tool => "tool",
            Mismatch::Class => "class",
            Mismatch::Body => "body",
            Mismatch::IatBeforeNbf => "iat_before_nbf",
            Mismatch::IatInFuture => "iat_in_future",
            Mismatch::IatAfterExp => "iat_after_exp",
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mismatch::Envelope => "the invocation signs another envelope",
            Mismatch::Audience => "the invocation signs another audience",
            Mismatch::MessageId => "the invocation signs another message id",
            Mismatch::Tool => "the invocation signs another tool",
            Mismatch::Class => "the invocation signs another class",
            Mismatch::Body => "the invocation signs another body",
            Mismatch::IatBeforeNbf => "the invocation was made before the envelope's nbf",
            Mismatch::IatInFuture => "the invocation's iat is in the future",
            Mismatch::IatAfterExp => "the invocation was made after the envelope expired",
        })
    }
}

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

/// A fault of one link of a delegation chain: which link (0 is the root, the leaf the last)
/// and what is wrong with it, for a `bad_delegation` or `not_attenuated` denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLink<F> {
    /// The link's index in the chain, root first.
    pub link: u8,
    /// What is wrong with it.
    pub fault: F,
}

impl<F: fmt::Display> fmt::Display for AtLink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}: {}", self.link, self.fault)
    }
}

impl DelegationFault {
    /// This fault at link `link` of the chain (0 is the root).
    pub const fn at(self, link: u8) -> AtLink<Self> {
        AtLink { link, fault: self }
    }

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
    /// A tool grant that parent grants covering its pattern and classes cover only with
    /// args the child's are not narrower than (`docs/spec.md` §16): which member, which
    /// rule.
    Args(NotNarrower),
}

impl Widening {
    /// This widening by link `link` of the chain (its parent is link `link - 1`).
    pub const fn at(self, link: u8) -> AtLink<Self> {
        AtLink { link, fault: self }
    }

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
            Widening::Args(_) => "args",
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
            Widening::Args(why) => return write!(f, "{why}"),
        })
    }
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
