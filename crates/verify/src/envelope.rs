//! The envelope: a COSE_Sign1 (`crate::sign1`) of at most 4096 bytes whose payload is the
//! claims set, signed with the external_aad `laissez/v1`.

use crate::claims::Claims;
use crate::error::Denial;
use crate::keys::{Kid, TrustedKey};
use crate::malformed::Malformed;
use crate::sign1::Sign1;
use crate::wire::{ENVELOPE_AAD, MAX_ENVELOPE_LEN};

/// An envelope whose structure has been checked but whose signature has not.
///
/// Nothing in it can be trusted; [`crate::Verifier`] turns it into a
/// [`crate::VerifiedEnvelope`].
#[derive(Debug, Clone, Copy)]
pub struct UntrustedEnvelope<'a> {
    sign1: Sign1<'a>,
}

impl<'a> UntrustedEnvelope<'a> {
    /// Decodes the outer structure: tag 18, the four-element array, a protected header of
    /// exactly `{1: -8, 4: kid}`, an empty unprotected header, a byte-string payload and a
    /// 64-byte signature, with nothing after it. The claims are not decoded here.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Malformed> {
        Ok(UntrustedEnvelope {
            sign1: Sign1::decode(bytes, MAX_ENVELOPE_LEN)?,
        })
    }

    /// The key id from the protected header (unauthenticated until verified).
    pub const fn kid(&self) -> Kid {
        self.sign1.kid
    }

    /// The envelope as received.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.sign1.bytes
    }

    /// The claims, decoded WITHOUT checking the signature. For display (`laissez inspect`)
    /// and diagnostics only; never base a decision on them.
    pub fn claims_unverified(&self) -> Result<Claims<'a>, Denial> {
        Claims::decode(self.sign1.payload, self.sign1.payload_offset)
    }

    /// Strict Ed25519 over the Sig_structure with the envelope's aad.
    pub(crate) fn verify_signature(&self, key: &TrustedKey) -> Result<(), Denial> {
        if self.sign1.signature_holds(key, ENVELOPE_AAD) {
            Ok(())
        } else {
            Err(Denial::BadSignature)
        }
    }

    pub(crate) const fn payload(&self) -> (&'a [u8], usize) {
        (self.sign1.payload, self.sign1.payload_offset)
    }
}
