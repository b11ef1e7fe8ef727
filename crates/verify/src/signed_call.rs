//! The payload shared by the objects that sign one call: an invocation (`docs/spec.md` §11)
//! and an approval (§12). Both are the call's six keys and `7: iat`; an approval adds
//! `8: exp` and an optional `9: by`. One decoder, so the two read a call identically.

use crate::call::Call;
use crate::cbor::{Key, Reader};
use crate::malformed::{Malformed, MalformedKind};
use crate::tools::{ActionClass, is_tool_name};
use crate::wire::{MAX_MESSAGE_ID_LEN, call};

/// Who signed the call, which decides the keys after the six.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    /// An invocation: exactly keys 1..=7.
    Holder,
    /// An approval: keys 1..=8, and 9 optionally.
    Approver,
}

/// A decoded signed-call payload; nothing authenticated yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedCall<'a> {
    /// The call, its fields checked as `Call::from_digests` checks them, except an empty
    /// audience, which only ever mismatches.
    pub(crate) call: Call<'a>,
    pub(crate) iat: u64,
    /// Present exactly when the signer is an approver.
    pub(crate) exp: Option<u64>,
    pub(crate) by: Option<&'a str>,
}

/// Decodes `payload` (at byte `offset` of the object) as `signer`'s call map: deterministic,
/// exactly the keys `signer` has, a message id of 1 to 256 bytes, a tool name (never a
/// pattern) and a class of exactly one of 1, 2 or 4.
pub(crate) fn decode(
    payload: &[u8],
    offset: usize,
    signer: Signer,
) -> Result<SignedCall<'_>, Malformed> {
    let mut r = Reader::new(payload, offset);
    let at = r.pos();
    let pairs = r.map()?;
    let mut prev = None;
    let (mut envelope_digest, mut audience, mut message_id, mut tool) = (None, None, None, None);
    let (mut class, mut body_digest, mut iat, mut exp, mut by) = (None, None, None, None, None);
    let approver = signer == Signer::Approver;
    for _ in 0..pairs {
        let key_at = r.pos();
        match r.key(&mut prev, 1)? {
            Key::Uint(k) if k == call::ENV as u64 => {
                envelope_digest = Some(r.bytes_exact::<32>()?);
            }
            Key::Uint(k) if k == call::AUD as u64 => audience = Some(r.text()?),
            Key::Uint(k) if k == call::MSG as u64 => {
                let at = r.pos();
                let id = r.text()?;
                if id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN {
                    return Err(r.error_at(at, MalformedKind::MessageId));
                }
                message_id = Some(id);
            }
            Key::Uint(k) if k == call::TOOL as u64 => {
                let at = r.pos();
                let name = r.text()?;
                if !is_tool_name(name) {
                    return Err(r.error_at(at, MalformedKind::ToolPattern));
                }
                tool = Some(name);
            }
            Key::Uint(k) if k == call::CLASS as u64 => {
                let at = r.pos();
                class = Some(match r.uint()? {
                    1 => ActionClass::Read,
                    2 => ActionClass::Write,
                    4 => ActionClass::Destructive,
                    _ => return Err(r.error_at(at, MalformedKind::Class)),
                });
            }
            Key::Uint(k) if k == call::BODY as u64 => {
                body_digest = Some(r.bytes_exact::<32>()?);
            }
            Key::Uint(k) if k == call::IAT as u64 => iat = Some(r.uint()?),
            Key::Uint(k) if approver && k == call::EXP as u64 => exp = Some(r.uint()?),
            Key::Uint(k) if approver && k == call::BY as u64 => by = Some(r.text()?),
            _ => return Err(r.error_at(key_at, MalformedKind::UnknownField)),
        }
    }
    let missing = r.error_at(at, MalformedKind::MissingClaim);
    let (
        Some(envelope_digest),
        Some(audience),
        Some(message_id),
        Some(tool),
        Some(class),
        Some(body_digest),
        Some(iat),
    ) = (
        envelope_digest,
        audience,
        message_id,
        tool,
        class,
        body_digest,
        iat,
    )
    else {
        return Err(missing);
    };
    if approver && exp.is_none() {
        return Err(missing);
    }
    r.finish()?;
    Ok(SignedCall {
        call: Call::unchecked(
            envelope_digest,
            audience,
            message_id,
            tool,
            class,
            body_digest,
        ),
        iat,
        exp,
        by,
    })
}

/// The first field of `signed` that differs from `actual`, in the call's key order.
pub(crate) fn first_difference(signed: &Call<'_>, actual: &Call<'_>) -> Option<CallField> {
    if signed.envelope_digest() != actual.envelope_digest() {
        Some(CallField::Envelope)
    } else if signed.audience() != actual.audience() {
        Some(CallField::Audience)
    } else if signed.message_id() != actual.message_id() {
        Some(CallField::MessageId)
    } else if signed.tool() != actual.tool() {
        Some(CallField::Tool)
    } else if signed.class() != actual.class() {
        Some(CallField::Class)
    } else if signed.body_digest() != actual.body_digest() {
        Some(CallField::Body)
    } else {
        None
    }
}

/// One of a call's six fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallField {
    Envelope,
    Audience,
    MessageId,
    Tool,
    Class,
    Body,
}
