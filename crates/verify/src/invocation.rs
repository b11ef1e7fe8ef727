//! The invocation: the holder's signature over one exact call (`docs/spec.md` §11), a
//! COSE_Sign1 of at most 1024 bytes whose payload is the call's six fields and `iat`,
//! signed with the external_aad `laissez/v1/invocation`, so it never verifies as an envelope
//! and an envelope never verifies as an invocation.

use crate::keys::{Kid, TrustedKey};
use crate::malformed::Malformed;
use crate::sign1::Sign1;
use crate::signed_call::{self, CallField, Signer};
use crate::wire::{INVOCATION_AAD, MAX_INVOCATION_LEN};

pub use crate::call::{Attached, Call, CallError};
pub use crate::fault::{InvocationFault, Mismatch, Unreadable};
pub use crate::verified::VerifiedCall;

/// An invocation whose structure has been checked but whose signature has not.
#[derive(Debug, Clone, Copy)]
pub struct UntrustedInvocation<'a> {
    sign1: Sign1<'a>,
    /// The call it signs, its fields checked as `Call::from_digests` checks them, except an
    /// empty audience, which only ever mismatches.
    call: Call<'a>,
    iat: u64,
}

impl<'a> UntrustedInvocation<'a> {
    /// Decodes an invocation: the COSE_Sign1 shape, at most 1024 bytes, and a payload of
    /// exactly `{1: bstr .size 32, 2: tstr, 3: tstr, 4: tstr, 5: uint, 6: bstr .size 32,
    /// 7: uint}`, deterministic, with a message id of 1 to 256 bytes, a tool name (never a
    /// pattern) and a class of exactly one of 1, 2 or 4.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Malformed> {
        let sign1 = Sign1::decode(bytes, MAX_INVOCATION_LEN)?;
        let signed = signed_call::decode(sign1.payload, sign1.payload_offset, Signer::Holder)?;
        Ok(UntrustedInvocation {
            sign1,
            call: signed.call,
            iat: signed.iat,
        })
    }

    /// The kid of the key that claims to have signed it.
    pub const fn kid(&self) -> Kid {
        self.sign1.kid
    }

    /// When the holder made it (unauthenticated until the signature holds).
    pub const fn iat(&self) -> u64 {
        self.iat
    }

    /// The call it signs (unauthenticated until the signature holds).
    pub const fn call(&self) -> Call<'a> {
        self.call
    }

    /// Whether the signature holds under `holder` with the invocation aad.
    pub(crate) fn signature_holds(&self, holder: &TrustedKey) -> bool {
        self.sign1.signature_holds(holder, INVOCATION_AAD)
    }

    /// Checks that `holder` made it: its kid and its signature. For a signer checking its
    /// own output, and for tools; a worker uses [`crate::Verifier::check_call`], which also
    /// compares the call and the times.
    pub fn verify_signature(&self, holder: &TrustedKey) -> Result<(), InvocationFault> {
        if self.kid() != holder.kid() {
            return Err(InvocationFault::WrongKey);
        }
        if !self.signature_holds(holder) {
            return Err(InvocationFault::BadSignature);
        }
        Ok(())
    }

    /// The first field that differs from `call`, in the call's key order.
    pub(crate) fn mismatch(&self, call: &Call<'_>) -> Option<Mismatch> {
        signed_call::first_difference(&self.call, call).map(|field| match field {
            CallField::Envelope => Mismatch::Envelope,
            CallField::Audience => Mismatch::Audience,
            CallField::MessageId => Mismatch::MessageId,
            CallField::Tool => Mismatch::Tool,
            CallField::Class => Mismatch::Class,
            CallField::Body => Mismatch::Body,
        })
    }
}
