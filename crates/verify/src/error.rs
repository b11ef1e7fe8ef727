//! Denial reasons: the contract's reason codes, plus where a decode failed and why.

use core::fmt;

use crate::args::ArgPath;
use crate::fault::{AtLink, DelegationFault, InvocationFault, Mismatch, Widening};
use crate::reason::Reason;

pub use crate::malformed::{Malformed, MalformedKind};
pub use crate::reason::UnknownReason;

/// Why a verifier refused an envelope or a request.
///
/// The variants are the reasons of `docs/spec.md` §2, in the order the checks run;
/// [`Denial::reason`] gives its [`Reason`], whose code is the stable snake_case string that
/// logs, JSON and other implementations use. The first failing check is the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// Not an envelope as the format defines it; carries the byte offset and what was wrong.
    Malformed(Malformed),
    /// The envelope's kid names no trusted key.
    UnknownKey,
    /// Strict Ed25519 verification failed.
    BadSignature,
    /// A link of a delegation chain does not hold.
    BadDelegation(AtLink<DelegationFault>),
    /// Grant version other than 1, or a claim or grant key this version does not know.
    Unsupported,
    /// A delegated envelope grants more than its parent.
    NotAttenuated(AtLink<Widening>),
    /// `now < nbf - leeway`.
    NotYetValid,
    /// `iat > now + leeway`: the envelope claims to be issued in the future (its reason is
    /// `not_yet_valid`).
    IssuedInFuture,
    /// `now >= exp + leeway`.
    Expired,
    /// `exp - nbf` exceeds the verifier's maximum lifetime.
    LifetimeTooLong,
    /// The verifier's audience is not among the envelope's `aud`.
    WrongAudience,
    /// An expected agent was given and differs from `sub`.
    WrongAgent,
    /// The worker's tool catalogue does not list the requested tool.
    UnknownTool,
    /// No tool pattern matches the requested tool.
    ToolNotGranted,
    /// A pattern matches the tool, but none of the matching grants allows the class.
    ClassNotGranted,
    /// Grants match the tool and class but the body satisfies the args of none of them, or a
    /// budget that applies finds no amount in it (`docs/spec.md` §16, §17): the first member
    /// that failed, or the body itself.
    ArgumentsNotGranted(ArgPath),
    /// A revocation record the worker holds covers the envelope (`docs/spec.md` §14).
    Revoked,
    /// The envelope is holder-bound and no invocation came with the call (or there was no
    /// call at all): detail `holder_bound`.
    InvocationRequired,
    /// The worker's policy requires holder binding and the leaf is a bearer envelope (no
    /// `cnf`): `invocation_required`, detail `require_holder`.
    HolderRequired,
    /// The invocation is not an invocation, names another key, or its signature fails.
    BadInvocation(InvocationFault),
    /// The invocation signs another call, or its iat is out of range.
    InvocationMismatch(Mismatch),
    /// The call's class needs approval and fewer than `needed` approvals counted, or the
    /// policy requires approval for the class and the envelope has no rule covering it
    /// (then `needed` is 0).
    ApprovalRequired {
        /// How many distinct approvers counted.
        counted: u8,
        /// How many the rule needs; 0 when no rule covers the class.
        needed: u8,
    },
    /// The use ledger already granted `max_uses` distinct messages.
    UsesExhausted,
    /// This exact message already completed under this envelope.
    Replayed,
}

impl Denial {
    /// The reason this denial reports.
    pub const fn reason(&self) -> Reason {
        match self {
            Denial::Malformed(_) => Reason::Malformed,
            Denial::UnknownKey => Reason::UnknownKey,
            Denial::BadSignature => Reason::BadSignature,
            Denial::BadDelegation(_) => Reason::BadDelegation,
            Denial::Unsupported => Reason::Unsupported,
            Denial::NotAttenuated(_) => Reason::NotAttenuated,
            Denial::NotYetValid | Denial::IssuedInFuture => Reason::NotYetValid,
            Denial::Expired => Reason::Expired,
            Denial::LifetimeTooLong => Reason::LifetimeTooLong,
            Denial::WrongAudience => Reason::WrongAudience,
            Denial::WrongAgent => Reason::WrongAgent,
            Denial::UnknownTool => Reason::UnknownTool,
            Denial::ToolNotGranted => Reason::ToolNotGranted,
            Denial::ClassNotGranted => Reason::ClassNotGranted,
            Denial::ArgumentsNotGranted(_) => Reason::ArgumentsNotGranted,
            Denial::Revoked => Reason::Revoked,
            Denial::InvocationRequired | Denial::HolderRequired => Reason::InvocationRequired,
            Denial::BadInvocation(_) => Reason::BadInvocation,
            Denial::InvocationMismatch(_) => Reason::InvocationMismatch,
            Denial::ApprovalRequired { .. } => Reason::ApprovalRequired,
            Denial::UsesExhausted => Reason::UsesExhausted,
            Denial::Replayed => Reason::Replayed,
        }
    }

    /// The same denial, a chain's fault placed at link `link` (other denials as they are):
    /// a link is checked without knowing its place, the chain loop knows it.
    pub(crate) const fn at_link(self, link: usize) -> Self {
        // A chain holds at most four links.
        let link = if link > u8::MAX as usize {
            u8::MAX
        } else {
            link as u8
        };
        match self {
            Denial::BadDelegation(at) => Denial::BadDelegation(at.fault.at(link)),
            Denial::NotAttenuated(at) => Denial::NotAttenuated(at.fault.at(link)),
            other => other,
        }
    }

    /// The stable reason code of the contract, e.g. `"bad_signature"`.
    pub const fn code(&self) -> &'static str {
        self.reason().code()
    }

    /// What the reason does not say, in the one wording every front-end reports as the
    /// `detail` (`docs/spec.md` §15): empty when the reason says it all. No allocation:
    /// format it, or test [`Detail::is_empty`].
    pub const fn detail(&self) -> Detail<'_> {
        Detail(self)
    }
}

/// The detail of a [`Denial`] ([`Denial::detail`]): displays as a snake_case word, "k of m",
/// or the decoder's error; empty when the reason says it all.
#[derive(Debug, Clone, Copy)]
pub struct Detail<'d>(&'d Denial);

impl Detail<'_> {
    /// Whether there is nothing to say beyond the reason.
    pub const fn is_empty(&self) -> bool {
        matches!(self.word(), Some(word) if word.is_empty())
    }

    /// The detail when it is one fixed word (or nothing); `None` when it is formatted.
    const fn word(&self) -> Option<&'static str> {
        Some(match self.0 {
            Denial::InvocationRequired => "holder_bound",
            Denial::HolderRequired => "require_holder",
            Denial::BadInvocation(InvocationFault::Malformed(_)) => return None,
            Denial::BadInvocation(InvocationFault::WrongKey) => "wrong_key",
            Denial::BadInvocation(InvocationFault::BadSignature) => "bad_signature",
            Denial::BadInvocation(InvocationFault::Unreadable(why)) => why.code(),
            Denial::InvocationMismatch(field) => field.code(),
            // The worker's policy requires approval and no rule of the chain covers the class.
            Denial::ApprovalRequired { needed: 0, .. } => "require_approval",
            Denial::ApprovalRequired { .. } => return None,
            // The member that failed, or `body`.
            Denial::ArgumentsNotGranted(_) => return None,
            // A chain's: which link fails (`docs/spec.md` §13), or which field widens.
            Denial::BadDelegation(at) => at.fault.code(),
            Denial::NotAttenuated(at) => at.fault.code(),
            Denial::IssuedInFuture => "iat",
            _ => "",
        })
    }
}

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.word(), self.0) {
            (Some(word), _) => f.write_str(word),
            (None, Denial::BadInvocation(InvocationFault::Malformed(m))) => {
                write!(f, "malformed: {m}")
            }
            (None, Denial::ApprovalRequired { counted, needed }) => {
                write!(f, "{counted} of {needed}")
            }
            (None, Denial::ArgumentsNotGranted(path)) => write!(f, "{path}"),
            (None, _) => Ok(()),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Malformed(m) => write!(f, "malformed envelope: {m}"),
            Denial::UnknownKey => f.write_str("the envelope's key id names no trusted key"),
            Denial::BadSignature => f.write_str("the signature does not verify"),
            Denial::BadDelegation(at) => write!(f, "bad delegation at {at}"),
            Denial::NotAttenuated(at) => write!(f, "not attenuated at {at}"),
            Denial::Unsupported => f.write_str(
                "the envelope uses a grant version or claim this verifier does not know",
            ),
            Denial::NotYetValid => {
                f.write_str("the envelope is not valid yet (nbf is in the future)")
            }
            Denial::IssuedInFuture => {
                f.write_str("the envelope is not valid yet (iat is in the future)")
            }
            Denial::Expired => f.write_str("the envelope has expired"),
            Denial::LifetimeTooLong => {
                f.write_str("the envelope's lifetime exceeds this verifier's maximum")
            }
            Denial::WrongAudience => f.write_str("the envelope is not addressed to this audience"),
            Denial::WrongAgent => f.write_str("the envelope was issued to a different agent"),
            Denial::UnknownTool => {
                f.write_str("this worker's tool catalogue does not list the tool")
            }
            Denial::ToolNotGranted => f.write_str("the envelope grants no such tool"),
            Denial::ClassNotGranted => {
                f.write_str("the tool is granted, but not for this action class")
            }
            Denial::ArgumentsNotGranted(path) if path.is_body() => f.write_str(
                "the call has no body, or one that is no JSON object the granted arguments or a budget can read",
            ),
            Denial::ArgumentsNotGranted(path) => {
                write!(f, "the call's arguments are not granted at {path}")
            }
            Denial::Revoked => f.write_str("a revocation record covers the envelope"),
            Denial::InvocationRequired => f.write_str(
                "the envelope is holder-bound (or the policy requires it to be) and no invocation came with the call",
            ),
            Denial::HolderRequired => f.write_str(
                "the worker's policy requires a holder-bound envelope; this one is not holder-bound (no cnf)",
            ),
            Denial::BadInvocation(fault) => write!(f, "bad invocation: {fault}"),
            Denial::InvocationMismatch(m) => write!(f, "invocation mismatch: {m}"),
            Denial::ApprovalRequired { needed: 0, .. } => f.write_str(
                "the class needs approval by this worker's policy, and the envelope has no approval rule for it",
            ),
            Denial::ApprovalRequired { counted, needed } => write!(
                f,
                "the class needs approval: {counted} of {needed} approvals counted"
            ),
            Denial::UsesExhausted => f.write_str("the envelope's uses are exhausted"),
            Denial::Replayed => f.write_str("this message already ran under this envelope"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Denial {}

impl From<Malformed> for Denial {
    fn from(m: Malformed) -> Self {
        Denial::Malformed(m)
    }
}

// The conversions into the reason live with `Denial`, not with `Reason`: the list of reasons
// is below every layer (the middleware and ledger use it without a denial), so it names none.
impl From<Denial> for Reason {
    fn from(denial: Denial) -> Self {
        denial.reason()
    }
}

impl From<&Denial> for Reason {
    fn from(denial: &Denial) -> Self {
        denial.reason()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::fault::Unreadable;
    use crate::malformed::MalformedKind;

    #[test]
    fn each_denial_has_its_one_detail() {
        let malformed = Malformed::new(3, MalformedKind::Truncated);
        let cases = [
            (Denial::InvocationRequired, "holder_bound"),
            (Denial::HolderRequired, "require_holder"),
            (
                Denial::BadInvocation(InvocationFault::Malformed(malformed)),
                "malformed: input ends inside an item at byte 3",
            ),
            (
                Denial::BadInvocation(InvocationFault::WrongKey),
                "wrong_key",
            ),
            (
                Denial::BadInvocation(InvocationFault::BadSignature),
                "bad_signature",
            ),
            (
                Denial::BadInvocation(InvocationFault::Unreadable(Unreadable::TooLong)),
                "too_long",
            ),
            (Denial::InvocationMismatch(Mismatch::Body), "body"),
            (
                Denial::ApprovalRequired {
                    counted: 1,
                    needed: 2,
                },
                "1 of 2",
            ),
            (
                Denial::ApprovalRequired {
                    counted: 0,
                    needed: 0,
                },
                "require_approval",
            ),
            (
                Denial::BadDelegation(DelegationFault::WrongParent.at(1)),
                "wrong_parent",
            ),
            (Denial::NotAttenuated(Widening::MaxUses.at(2)), "max_uses"),
            (Denial::IssuedInFuture, "iat"),
        ];
        for (denial, detail) in cases {
            assert_eq!(denial.detail().to_string(), detail, "{denial:?}");
            assert!(!denial.detail().is_empty(), "{denial:?}");
        }
        for denial in [
            Denial::Malformed(malformed),
            Denial::UnknownKey,
            Denial::BadSignature,
            Denial::NotYetValid,
            Denial::Expired,
            Denial::Revoked,
            Denial::UsesExhausted,
        ] {
            assert!(denial.detail().is_empty(), "{denial:?}");
            assert_eq!(denial.detail().to_string(), "", "{denial:?}");
        }
    }
}
