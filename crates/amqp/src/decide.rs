//! What becomes of a delivery, decided in one pure function from what was learnt about it:
//! no I/O, no clock, no broker. `process` gathers the facts, [`decide`] turns them into a
//! [`Verdict`], and `settle` carries it out.

use std::borrow::Cow;

use laissez_ledger::{LeaseToken, LedgerError, Outcome};
use laissez_verify::{Denial, InvocationFault, Reason};

use crate::headers::{HeaderError, InvocationHeaderError};

/// How far a delivery got, and what stopped it or what the ledger said: the headers are read
/// first, the envelope is verified only once they were read, and the ledger is asked only once
/// the envelope verified.
#[derive(Debug)]
pub(crate) enum Facts {
    /// The headers could not be read, or the class header contradicts the catalogue.
    Headers(HeaderError),
    /// The headers were read; the verifier refused the envelope or the call (the call's
    /// invocation included).
    Verification(Denial),
    /// The envelope holds for the call, but it is a bearer envelope (no `cnf`) and the worker
    /// requires holder binding: `invocation_required`.
    NotHolderBound,
    /// The envelope is holder-bound and holds for the call, but its `laissez-invocation`
    /// header could not be read: `bad_invocation`, in the verifier's place for it.
    InvocationHeader(InvocationHeaderError),
    /// The envelope verified for this call, but a value the handler must get cannot reach it
    /// (a NUL byte where the worker refuses one, [`crate::ConsumerConfig::refuse_nul`]):
    /// which value, for the audit detail. The ledger was not asked.
    Unpassable(&'static str),
    /// The envelope verified for this call; the ledger answered `begin`.
    Ledger(Result<Outcome, LedgerError>),
}

/// The use the ledger granted this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The use number, `1..=max_uses`.
    pub(crate) use_number: u64,
    /// The lease to complete or release.
    pub(crate) lease: LeaseToken,
    /// Whether this run takes over an earlier lease.
    pub(crate) taken_over: bool,
}

/// What to do with the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run the handler under this grant.
    Run(Grant),
    /// Never run: dead-letter, with one audit event. The text is a detail for the audit event
    /// (empty when the reason says it all): a snake_case word, or for a malformed invocation
    /// the decoder's error.
    Deny(Reason, Cow<'static, str>),
    /// Not run now, not denied: back to the queue later. Not a decision (no audit event, no
    /// observer call). The text, when given, is logged as a warning.
    Requeue(Reason, Option<String>),
}

/// The verdict for `facts`. Total: every input has exactly one verdict, and nothing but a
/// grant runs the handler.
pub(crate) fn decide(facts: &Facts) -> Verdict {
    match facts {
        Facts::Headers(error) => Verdict::Deny(error.reason(), error.detail().into()),
        Facts::Verification(denial) => Verdict::Deny(denial.reason(), detail(denial)),
        Facts::NotHolderBound => Verdict::Deny(Reason::InvocationRequired, "require_holder".into()),
        Facts::InvocationHeader(error) => Verdict::Deny(error.reason(), error.detail().into()),
        Facts::Unpassable(what) => Verdict::Deny(Reason::Malformed, (*what).into()),
        Facts::Ledger(Ok(outcome)) => from_outcome(outcome),
        Facts::Ledger(Err(error)) => from_error(error),
    }
}

/// The audit detail of a verifier's denial: for the invocation's reasons what is wrong, in the
/// words of `laissez verify --json` (`docs/spec.md` §11); for `approval_required` how many
/// approvals counted of how many are needed, "k of m" (§12), or `require_approval` when the
/// worker's policy requires approval and no rule covers the class; for `bad_delegation` the
/// link's fault and for `not_attenuated` the field that widens; empty for the others,
/// whose reason says it all.
fn detail(denial: &Denial) -> Cow<'static, str> {
    match denial {
        // A bearer envelope refused by the policy is `Facts::NotHolderBound`.
        Denial::InvocationRequired => "holder_bound".into(),
        Denial::BadInvocation(InvocationFault::Malformed(m)) => format!("malformed: {m}").into(),
        Denial::BadInvocation(InvocationFault::WrongKey) => "wrong_key".into(),
        Denial::BadInvocation(InvocationFault::BadSignature) => "bad_signature".into(),
        Denial::BadInvocation(other) => other.to_string().into(),
        Denial::InvocationMismatch(field) => field.code().into(),
        // The worker's policy requires approval and no rule of the envelope covers the class.
        Denial::ApprovalRequired { needed: 0, .. } => "require_approval".into(),
        Denial::ApprovalRequired { counted, needed } => format!("{counted} of {needed}").into(),
        // A chain's: which link fails (`docs/spec.md` §13), or which field widens.
        Denial::BadDelegation(fault) => fault.code().into(),
        Denial::NotAttenuated(field) => field.code().into(),
        _ => "".into(),
    }
}

fn from_outcome(outcome: &Outcome) -> Verdict {
    match outcome {
        Outcome::Granted {
            use_number,
            lease,
            taken_over,
        } => Verdict::Run(Grant {
            use_number: *use_number,
            lease: *lease,
            taken_over: *taken_over,
        }),
        Outcome::InFlight => Verdict::Requeue(Reason::InFlight, None),
        Outcome::Replayed => Verdict::Deny(Reason::Replayed, "".into()),
        Outcome::Exhausted => Verdict::Deny(Reason::UsesExhausted, "".into()),
        Outcome::Abandoned => Verdict::Deny(Reason::Abandoned, "".into()),
        // The message id was first granted for another tool or class: to the contract, a
        // message id spent on one call and presented for another is a replay.
        Outcome::OtherCall => {
            Verdict::Deny(Reason::Replayed, "message_id_spent_on_another_call".into())
        }
        // An answer this version does not know: never run, never invent a reason for it.
        other => Verdict::Requeue(
            Reason::LedgerUnavailable,
            Some(format!("unknown ledger outcome {other:?}")),
        ),
    }
}

fn from_error(error: &LedgerError) -> Verdict {
    match error {
        // The ledger's clock says the envelope has expired.
        LedgerError::Expired => Verdict::Deny(Reason::Expired, "".into()),
        // The request itself is refused: retrying cannot help.
        LedgerError::InvalidMessageId => {
            Verdict::Deny(Reason::Malformed, "message_id_refused_by_ledger".into())
        }
        LedgerError::InvalidRequest(_) => {
            Verdict::Deny(Reason::Malformed, "request_refused_by_ledger".into())
        }
        // Unreachable, corrupt, or anything else: the grant is never assumed.
        other => Verdict::Requeue(Reason::LedgerUnavailable, Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use laissez_verify::{Mismatch, UntrustedEnvelope, UntrustedInvocation};

    use super::*;

    const LEASE: LeaseToken = LeaseToken::from_bytes([9; 16]);

    fn ledger(answer: Result<Outcome, LedgerError>) -> Verdict {
        decide(&Facts::Ledger(answer))
    }

    #[test]
    fn every_header_error_is_denied_malformed_with_its_detail() {
        let errors = [
            HeaderError::MissingMessageId,
            HeaderError::MissingEnvelope,
            HeaderError::BadEnvelope,
            HeaderError::MissingTool,
            HeaderError::BadTool,
            HeaderError::BadClass,
            HeaderError::ClassDisagrees,
            HeaderError::ApprovalsNotArray,
            HeaderError::TooManyApprovals,
            HeaderError::ApprovalTooLong,
            HeaderError::ApprovalNotText,
            HeaderError::ApprovalNotBytesOrText,
        ];
        let mut details = Vec::new();
        for error in errors {
            let Verdict::Deny(reason, detail) = decide(&Facts::Headers(error)) else {
                panic!("{error:?} must be denied");
            };
            assert_eq!(reason, Reason::Malformed, "{error:?}");
            assert_eq!(detail, error.detail());
            assert!(!details.contains(&detail), "details are distinct");
            details.push(detail);
        }
    }

    #[test]
    fn every_verifier_denial_is_denied_with_its_own_reason() {
        let malformed = Denial::Malformed(UntrustedEnvelope::decode(&[0x00]).unwrap_err());
        let denials = [
            malformed,
            Denial::UnknownKey,
            Denial::BadSignature,
            Denial::Unsupported,
            Denial::NotYetValid,
            Denial::Expired,
            Denial::LifetimeTooLong,
            Denial::WrongAudience,
            Denial::WrongAgent,
            Denial::UnknownTool,
            Denial::ToolNotGranted,
            Denial::ClassNotGranted,
            Denial::Revoked,
            Denial::UsesExhausted,
            Denial::Replayed,
        ];
        for denial in denials {
            assert_eq!(
                decide(&Facts::Verification(denial)),
                Verdict::Deny(denial.reason(), "".into()),
                "{denial:?}"
            );
            assert!(!denial.reason().requeues());
        }
    }

    #[test]
    fn a_chains_denials_name_the_fault_or_the_field() {
        use laissez_verify::{DelegationFault, Widening};
        assert_eq!(
            decide(&Facts::Verification(Denial::BadDelegation(
                DelegationFault::WrongParent
            ))),
            Verdict::Deny(Reason::BadDelegation, "wrong_parent".into())
        );
        assert_eq!(
            decide(&Facts::Verification(Denial::NotAttenuated(
                Widening::MaxUses
            ))),
            Verdict::Deny(Reason::NotAttenuated, "max_uses".into())
        );
    }

    #[test]
    fn each_holder_denial_is_denied_with_its_reason_and_what_is_wrong() {
        let malformed = UntrustedInvocation::decode(&[0x00]).unwrap_err();
        let cases = [
            (
                Facts::Verification(Denial::InvocationRequired),
                Reason::InvocationRequired,
                "holder_bound".to_owned(),
            ),
            (
                Facts::NotHolderBound,
                Reason::InvocationRequired,
                "require_holder".to_owned(),
            ),
            (
                Facts::Verification(Denial::BadInvocation(InvocationFault::WrongKey)),
                Reason::BadInvocation,
                "wrong_key".to_owned(),
            ),
            (
                Facts::Verification(Denial::BadInvocation(InvocationFault::BadSignature)),
                Reason::BadInvocation,
                "bad_signature".to_owned(),
            ),
            (
                Facts::Verification(Denial::BadInvocation(InvocationFault::Malformed(malformed))),
                Reason::BadInvocation,
                format!("malformed: {malformed}"),
            ),
            (
                Facts::InvocationHeader(InvocationHeaderError::WrongType),
                Reason::BadInvocation,
                "invocation_header_not_bytes_or_text".to_owned(),
            ),
            (
                Facts::InvocationHeader(InvocationHeaderError::TooLong),
                Reason::BadInvocation,
                "invocation_header_too_long".to_owned(),
            ),
            (
                Facts::InvocationHeader(InvocationHeaderError::NotText),
                Reason::BadInvocation,
                "invocation_header_not_base64url".to_owned(),
            ),
        ];
        for (facts, reason, detail) in cases {
            assert_eq!(
                decide(&facts),
                Verdict::Deny(reason, detail.into()),
                "{facts:?}"
            );
        }
        for field in [
            Mismatch::Envelope,
            Mismatch::Audience,
            Mismatch::MessageId,
            Mismatch::Tool,
            Mismatch::Class,
            Mismatch::Body,
            Mismatch::IatBeforeNbf,
            Mismatch::IatInFuture,
            Mismatch::IatAfterExp,
        ] {
            assert_eq!(
                decide(&Facts::Verification(Denial::InvocationMismatch(field))),
                Verdict::Deny(Reason::InvocationMismatch, field.code().into())
            );
        }
    }

    #[test]
    fn an_approval_denial_says_k_of_m_or_that_the_policy_requires_one() {
        let cases = [
            (0, 2, "0 of 2"),
            (1, 2, "1 of 2"),
            (2, 3, "2 of 3"),
            (0, 0, "require_approval"),
        ];
        for (counted, needed, detail) in cases {
            assert_eq!(
                decide(&Facts::Verification(Denial::ApprovalRequired {
                    counted,
                    needed
                })),
                Verdict::Deny(Reason::ApprovalRequired, detail.into())
            );
        }
    }

    #[test]
    fn a_value_that_cannot_reach_the_handler_is_malformed() {
        assert_eq!(
            decide(&Facts::Unpassable("nul_in_message_id")),
            Verdict::Deny(Reason::Malformed, "nul_in_message_id".into())
        );
    }

    #[test]
    fn only_a_grant_runs() {
        for taken_over in [false, true] {
            let granted = Outcome::Granted {
                use_number: 3,
                lease: LEASE,
                taken_over,
            };
            assert_eq!(
                ledger(Ok(granted)),
                Verdict::Run(Grant {
                    use_number: 3,
                    lease: LEASE,
                    taken_over
                })
            );
        }
    }

    #[test]
    fn each_ledger_answer_has_its_verdict() {
        assert_eq!(
            ledger(Ok(Outcome::InFlight)),
            Verdict::Requeue(Reason::InFlight, None)
        );
        assert_eq!(
            ledger(Ok(Outcome::Replayed)),
            Verdict::Deny(Reason::Replayed, "".into())
        );
        assert_eq!(
            ledger(Ok(Outcome::Exhausted)),
            Verdict::Deny(Reason::UsesExhausted, "".into())
        );
        assert_eq!(
            ledger(Ok(Outcome::Abandoned)),
            Verdict::Deny(Reason::Abandoned, "".into())
        );
        assert_eq!(
            ledger(Ok(Outcome::OtherCall)),
            Verdict::Deny(Reason::Replayed, "message_id_spent_on_another_call".into())
        );
    }

    #[test]
    fn each_ledger_error_has_its_verdict() {
        assert_eq!(
            ledger(Err(LedgerError::Expired)),
            Verdict::Deny(Reason::Expired, "".into())
        );
        assert_eq!(
            ledger(Err(LedgerError::InvalidMessageId)),
            Verdict::Deny(Reason::Malformed, "message_id_refused_by_ledger".into())
        );
        assert_eq!(
            ledger(Err(LedgerError::InvalidRequest("lease"))),
            Verdict::Deny(Reason::Malformed, "request_refused_by_ledger".into())
        );
        // Whatever else goes wrong, the message is requeued, never run and never denied.
        for error in [
            LedgerError::Unavailable {
                backend: "redis",
                detail: "connection refused".into(),
            },
            LedgerError::LeaseNotHeld,
            LedgerError::Corrupt("bad row".into()),
        ] {
            let text = error.to_string();
            assert_eq!(
                ledger(Err(error)),
                Verdict::Requeue(Reason::LedgerUnavailable, Some(text))
            );
        }
    }

    #[test]
    fn requeues_carry_only_requeueing_reasons_and_denials_never_do() {
        let answers = [
            Ok(Outcome::InFlight),
            Ok(Outcome::Replayed),
            Ok(Outcome::Exhausted),
            Ok(Outcome::Abandoned),
            Ok(Outcome::OtherCall),
            Err(LedgerError::Expired),
            Err(LedgerError::InvalidMessageId),
            Err(LedgerError::LeaseNotHeld),
        ];
        for answer in answers {
            match ledger(answer) {
                Verdict::Requeue(reason, _) => assert!(reason.requeues()),
                Verdict::Deny(reason, _) => assert!(!reason.requeues()),
                Verdict::Run(_) => panic!("only a grant runs"),
            }
        }
    }
}
