//! What becomes of a delivery that does not run, decided in one pure function from how far
//! it got: no I/O, no clock, no broker. `process` gathers the facts, [`decide`] turns them
//! into a [`Verdict`], and `settle` carries it out. The reasons and details are the gate's and
//! the ledger's own ([`Denial::detail`], [`NotGranted::reason`]): nothing is worded here but
//! what only a delivery can get wrong (its headers).

use std::borrow::Cow;

use laissez_ledger::NotGranted;
use laissez_verify::{Denial, Reason};

use crate::headers::HeaderError;

/// How far a delivery got, and what stopped it: the headers are read first, the gate asked
/// only once they were read, and the ledger only once the gate allowed the call.
#[derive(Debug)]
pub(crate) enum Facts {
    /// The headers could not be read, or the class header contradicts the catalogue.
    Headers(HeaderError),
    /// The gate refused the call.
    Refused(Denial),
    /// The gate allowed the call, but a value the handler must get cannot reach it (a control
    /// character where the worker refuses one,
    /// [`crate::ConsumerConfig::refuse_control_characters`]): which value,
    /// for the audit detail. The ledger was not asked.
    Unpassable(&'static str),
    /// The gate allowed the call; the ledger granted no use.
    NotGranted(NotGranted),
}

/// What to do with a delivery that does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Never run: dead-letter, with one audit event. The text is a detail for the audit event
    /// (empty when the reason says it all).
    Deny(Reason, Cow<'static, str>),
    /// Not run now, not denied: back to the queue later. Not a decision (no audit event, no
    /// observer call). The text, when given, is logged as a warning.
    Requeue(Reason, Option<String>),
}

/// The verdict for `facts`. Total: every input has exactly one verdict.
pub(crate) fn decide(facts: &Facts) -> Verdict {
    match facts {
        Facts::Headers(error) => Verdict::Deny(error.reason(), error.detail().into()),
        Facts::Refused(denial) => Verdict::Deny(denial.reason(), detail(denial)),
        Facts::Unpassable(what) => Verdict::Deny(Reason::Malformed, (*what).into()),
        Facts::NotGranted(not_granted) => {
            let reason = not_granted.reason();
            if reason.requeues() {
                // Unreachable, corrupt, or held by another worker: the grant is never assumed.
                let warning = match not_granted {
                    NotGranted::Failed(error) => Some(error.to_string()),
                    _ => None,
                };
                Verdict::Requeue(reason, warning)
            } else {
                // A budget's name is the request's own text: written out, not borrowed.
                Verdict::Deny(reason, owned(not_granted.detail()))
            }
        }
    }
}

/// A detail written out; the empty one borrowed.
fn owned(detail: &str) -> Cow<'static, str> {
    if detail.is_empty() {
        Cow::Borrowed("")
    } else {
        Cow::Owned(detail.to_owned())
    }
}

/// The gate's detail: a fixed word borrowed as it is, a formatted one ("k of m", a decoder's
/// error) written out.
fn detail(denial: &Denial) -> Cow<'static, str> {
    let detail = denial.detail();
    if detail.is_empty() {
        Cow::Borrowed("")
    } else {
        Cow::Owned(detail.to_string())
    }
}

#[cfg(test)]
mod tests {
    use laissez_ledger::{LedgerError, Outcome};
    use laissez_verify::delegation::DelegationFault;
    use laissez_verify::invocation::{InvocationFault, Mismatch, Unreadable};

    use super::*;

    fn ledger(answer: NotGranted) -> Verdict {
        decide(&Facts::NotGranted(answer))
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
    fn a_refusal_is_denied_with_the_gates_reason_and_detail_never_requeued() {
        let denials = [
            Denial::UnknownKey,
            Denial::Expired,
            Denial::Revoked,
            Denial::HolderRequired,
            Denial::InvocationRequired,
            Denial::BadInvocation(InvocationFault::Unreadable(Unreadable::TooLong)),
            Denial::InvocationMismatch(Mismatch::Body),
            Denial::ApprovalRequired {
                counted: 1,
                needed: 2,
            },
            Denial::BadDelegation(DelegationFault::WrongParent.at(1)),
        ];
        for denial in denials {
            assert_eq!(
                decide(&Facts::Refused(denial)),
                Verdict::Deny(denial.reason(), denial.detail().to_string().into()),
                "{denial:?}"
            );
            assert!(!denial.reason().requeues());
        }
    }

    #[test]
    fn a_value_that_cannot_reach_the_handler_is_malformed() {
        assert_eq!(
            decide(&Facts::Unpassable("control_in_message_id")),
            Verdict::Deny(Reason::Malformed, "control_in_message_id".into())
        );
    }

    #[test]
    fn each_ledger_answer_has_its_verdict() {
        let refused = |outcome| ledger(NotGranted::Refused(outcome));
        assert_eq!(
            refused(Outcome::InFlight),
            Verdict::Requeue(Reason::InFlight, None)
        );
        assert_eq!(
            refused(Outcome::Replayed),
            Verdict::Deny(Reason::Replayed, "".into())
        );
        assert_eq!(
            refused(Outcome::Exhausted),
            Verdict::Deny(Reason::UsesExhausted, "".into())
        );
        assert_eq!(
            refused(Outcome::Abandoned),
            Verdict::Deny(Reason::Abandoned, "".into())
        );
        assert_eq!(
            refused(Outcome::BudgetExhausted {
                link: 1,
                index: 0,
                budget: "billing.refund:amount".into(),
            }),
            Verdict::Deny(Reason::BudgetExhausted, "billing.refund:amount".into())
        );
        assert_eq!(
            refused(Outcome::OtherCall),
            Verdict::Deny(Reason::Replayed, "message_id_spent_on_another_call".into())
        );
    }

    #[test]
    fn each_ledger_error_has_its_verdict() {
        let failed = |error| ledger(NotGranted::Failed(error));
        assert_eq!(
            failed(LedgerError::Expired),
            Verdict::Deny(Reason::Expired, "".into())
        );
        assert_eq!(
            failed(LedgerError::InvalidMessageId),
            Verdict::Deny(Reason::Malformed, "message_id_refused_by_ledger".into())
        );
        assert_eq!(
            failed(LedgerError::InvalidRequest("lease")),
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
                failed(error),
                Verdict::Requeue(Reason::LedgerUnavailable, Some(text))
            );
        }
    }
}
