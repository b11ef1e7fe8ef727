//! The invocation: the holder's signature over one exact call (`docs/spec.md` §11), a
//! COSE_Sign1 of at most 1024 bytes whose payload is the call's six fields and `iat`,
//! signed with the external_aad `laissez/v1/invocation`, so it never verifies as an envelope
//! and an envelope never verifies as an invocation.

use core::fmt;

use crate::call::Call;
use crate::error::Malformed;
use crate::keys::{Kid, TrustedKey};
use crate::sign1::Sign1;
use crate::signed_call::{self, CallField, Signer};
use crate::wire::{INVOCATION_AAD, MAX_INVOCATION_LEN};

/// An invocation whose structure has been checked but whose signature has not.
#[derive(Debug, Clone, Copy)]
pub struct UntrustedInvocation<'a> {
    sign1: Sign1<'a>,
    /// The call it signs, its fields checked as `Call::from_digests` checks them, except an
    /// empty audience, which only ever mismatches.
    call: Call<'a>,
    iat: u64,
}

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
