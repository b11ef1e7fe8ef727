//! The call of a delivery and its check (`docs/spec.md` §11, §12): the call as delivered, and
//! `Verifier::check_call` with the delivery's invocation and approvals, its refusals turned
//! into the facts [`crate::decide`] needs.

use laissez_verify::{ActionClass, Attached, Call, CallError, Denial, Kid, VerifiedChain};

use crate::decide::Facts;
use crate::headers::{HeaderError, ToolCallHeaders};

/// The call a delivery asks for, as delivered.
pub(crate) fn call_of<'a>(
    audience: &'a str,
    headers: &ToolCallHeaders<'a>,
    class: ActionClass,
    body: &[u8],
) -> Result<Call<'a>, Facts> {
    // The leaf: the envelope the call runs under.
    Call::new(
        &headers.envelope,
        audience,
        headers.message_id,
        headers.tool,
        class,
        body,
    )
    .map_err(|error| {
        // Unreachable: the tool passed the grammar when it was read, a non-empty message id
        // (an AMQP short string) is at most 255 bytes, and the configuration refuses an empty
        // audience. Never run what cannot be checked.
        Facts::Headers(match error {
            CallError::Tool => HeaderError::BadTool,
            _ => HeaderError::MissingMessageId,
        })
    })
}

/// `Verifier::check_chain_call` with the delivery's invocation and approvals (the leaf's
/// holder signs the invocation; every approval rule of the chain holds); the approvers that
/// counted on success. An unreadable `laissez-invocation` header is checked as an invocation
/// of no bytes, so that it is `bad_invocation` exactly where an invocation would be checked,
/// and its facts then say what was wrong with the header. A bearer envelope refused because
/// the worker requires holder binding has facts of its own, for the audit detail.
pub(crate) fn check_call(
    verifier: &laissez_verify::Verifier<'_>,
    chain: &VerifiedChain<'_>,
    now: u64,
    call: &Call<'_>,
    headers: &ToolCallHeaders<'_>,
) -> Result<Vec<Kid>, Facts> {
    let (bytes, unreadable) = match &headers.invocation {
        None => (None, None),
        Some(Ok(bytes)) => (Some(&bytes[..]), None),
        Some(Err(error)) => (Some(&[][..]), Some(*error)),
    };
    let approvals: Vec<&[u8]> = headers.approvals.iter().map(|a| &a[..]).collect();
    let attached = Attached::new(bytes, &approvals);
    match (
        verifier.check_chain_call(chain, now, call, attached),
        unreadable,
    ) {
        (Ok(counted), _) => Ok(counted.as_slice().to_vec()),
        (Err(Denial::InvocationRequired), _) if chain.leaf().claims().holder().is_none() => {
            Err(Facts::NotHolderBound)
        }
        (Err(Denial::BadInvocation(_)), Some(error)) => Err(Facts::InvocationHeader(error)),
        (Err(denial), _) => Err(Facts::Verification(denial)),
    }
}
