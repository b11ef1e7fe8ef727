//! The one vocabulary of outcomes: the contract's denial reasons (`docs/spec.md` §2) and the
//! queue outcomes a worker adds (`docs/spec.md` §9). Every layer that reports a decision —
//! the middleware's decision lines, the CLI's JSON, audit events, the examples — speaks
//! [`Reason`]; no other list of reason strings exists.

use core::fmt;
use core::str::FromStr;

/// Why a message did not run, or what became of it instead.
///
/// The first group are the contract's reasons, in the order the verifier checks them; the
/// second group are the outcomes of a worker on a queue. [`Reason::code`] is the stable
/// snake_case string that logs, JSON and other implementations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// Not an envelope (or call) as the format defines it.
    Malformed,
    /// The envelope's kid names no trusted key.
    UnknownKey,
    /// Strict Ed25519 verification failed.
    BadSignature,
    /// A link of a delegation chain does not hold.
    BadDelegation,
    /// A grant version or claim this verifier does not know.
    Unsupported,
    /// A delegated envelope grants more than its parent.
    NotAttenuated,
    /// `now < nbf - leeway`.
    NotYetValid,
    /// `now >= exp + leeway`.
    Expired,
    /// `exp - nbf` exceeds the verifier's maximum lifetime.
    LifetimeTooLong,
    /// The verifier's audience is not in `aud`.
    WrongAudience,
    /// An expected agent was given and differs from `sub`.
    WrongAgent,
    /// The worker's tool catalogue does not list the tool.
    UnknownTool,
    /// No pattern of the grant matches the tool.
    ToolNotGranted,
    /// A pattern matches, but no matching grant allows the class.
    ClassNotGranted,
    /// Grants match the tool and class, but the call's body satisfies the args of none of
    /// them; or a budget that applies finds no amount in the body (`docs/spec.md` §16, §17).
    ArgumentsNotGranted,
    /// A revocation record covers the envelope.
    Revoked,
    /// A holder-bound envelope came without an invocation, or the policy requires holder
    /// binding and the envelope has none.
    InvocationRequired,
    /// The invocation is not §11's shape, names another key, or its signature fails.
    BadInvocation,
    /// The invocation signs another call, or its iat is out of range.
    InvocationMismatch,
    /// The class needs approval and too few approvals counted (or no rule covers a class
    /// the policy requires approval for).
    ApprovalRequired,
    /// `max_uses` distinct messages were already granted.
    UsesExhausted,
    /// This message's amount would take a budget of the chain past its limit.
    BudgetExhausted,
    /// This (cti, message id) already completed, or was spent on another call.
    Replayed,
    /// Requeued, not run: another worker holds this message's use under a lease.
    InFlight,
    /// Requeued, not run: the ledger could not be reached.
    LedgerUnavailable,
    /// Dead-lettered, never run: an at-most-once message whose earlier run may or may not
    /// have happened (an expired lease), or one retried past the ledger's take-over cap.
    Abandoned,
    /// Dead-lettered after the handler failed.
    HandlerFailed,
}

impl Reason {
    /// Every reason, the contract's first in check order, then the queue outcomes.
    pub const ALL: [Reason; 27] = [
        Reason::Malformed,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::BadDelegation,
        Reason::Unsupported,
        Reason::NotAttenuated,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::LifetimeTooLong,
        Reason::WrongAudience,
        Reason::WrongAgent,
        Reason::UnknownTool,
        Reason::ToolNotGranted,
        Reason::ClassNotGranted,
        Reason::ArgumentsNotGranted,
        Reason::Revoked,
        Reason::InvocationRequired,
        Reason::BadInvocation,
        Reason::InvocationMismatch,
        Reason::ApprovalRequired,
        Reason::UsesExhausted,
        Reason::BudgetExhausted,
        Reason::Replayed,
        Reason::InFlight,
        Reason::LedgerUnavailable,
        Reason::Abandoned,
        Reason::HandlerFailed,
    ];

    /// The stable snake_case code, e.g. `"bad_signature"`.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::BadDelegation => "bad_delegation",
            Reason::Unsupported => "unsupported",
            Reason::NotAttenuated => "not_attenuated",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::WrongAudience => "wrong_audience",
            Reason::WrongAgent => "wrong_agent",
            Reason::UnknownTool => "unknown_tool",
            Reason::ToolNotGranted => "tool_not_granted",
            Reason::ClassNotGranted => "class_not_granted",
            Reason::ArgumentsNotGranted => "arguments_not_granted",
            Reason::Revoked => "revoked",
            Reason::InvocationRequired => "invocation_required",
            Reason::BadInvocation => "bad_invocation",
            Reason::InvocationMismatch => "invocation_mismatch",
            Reason::ApprovalRequired => "approval_required",
            Reason::UsesExhausted => "uses_exhausted",
            Reason::BudgetExhausted => "budget_exhausted",
            Reason::Replayed => "replayed",
            Reason::InFlight => "in_flight",
            Reason::LedgerUnavailable => "ledger_unavailable",
            Reason::Abandoned => "abandoned",
            Reason::HandlerFailed => "handler_failed",
        }
    }

    /// Whether a message with this outcome goes back to its queue (it did not run and may
    /// run later) rather than to the dead-letter exchange.
    pub const fn requeues(self) -> bool {
        matches!(self, Reason::InFlight | Reason::LedgerUnavailable)
    }

    /// Whether the verifier decided it after the envelope's signature held, so the claims
    /// read from it (cti, agent) are authentic.
    pub const fn after_signature(self) -> bool {
        !matches!(
            self,
            Reason::Malformed
                | Reason::UnknownKey
                | Reason::BadSignature
                | Reason::BadDelegation
                | Reason::Unsupported
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A string that is no reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownReason;

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a laissez reason code")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UnknownReason {}

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or(UnknownReason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_and_parse_back() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.code().parse::<Reason>(), Ok(*r));
            assert!(
                r.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            for other in &Reason::ALL[i + 1..] {
                assert_ne!(r.code(), other.code());
            }
        }
        assert_eq!("Malformed".parse::<Reason>(), Err(UnknownReason));
    }

    #[test]
    fn only_queue_outcomes_requeue() {
        let requeued: usize = Reason::ALL.iter().filter(|r| r.requeues()).count();
        assert_eq!(requeued, 2);
        assert!(Reason::InFlight.requeues() && Reason::LedgerUnavailable.requeues());
    }
}
