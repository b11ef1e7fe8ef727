//! The outer COSE_Sign1 structure and its signature.

use ciborium_ll::Header;

use crate::cbor::Reader;
use crate::claims::Claims;
use crate::ed25519::verify_strict_chunks;
use crate::error::{Denial, Malformed, MalformedKind};
use crate::keys::{Kid, TrustedKey};
use crate::wire::{
    ENVELOPE_AAD, MAX_ENVELOPE_LEN, SIG_STRUCTURE_PREFIX, TAG_COSE_SIGN1, header, nint_arg,
};

/// COSE header label `alg`, as a head argument.
const LABEL_ALG: u64 = header::ALG as u64;
/// COSE header label `kid`, as a head argument.
const LABEL_KID: u64 = header::KID as u64;
/// EdDSA (-8), as the argument of its negative-integer head.
const ALG_EDDSA_ARG: u64 = nint_arg(header::ALG_EDDSA);

/// An envelope whose structure has been checked but whose signature has not.
///
/// Nothing in it can be trusted; [`crate::Verifier`] turns it into a
/// [`crate::VerifiedEnvelope`].
#[derive(Debug, Clone, Copy)]
pub struct UntrustedEnvelope<'a> {
    bytes: &'a [u8],
    /// The protected header item, head included, as received.
    protected_item: &'a [u8],
    /// The payload item, head included, as received.
    payload_item: &'a [u8],
    payload: &'a [u8],
    payload_offset: usize,
    kid: Kid,
    signature: [u8; 64],
}

impl<'a> UntrustedEnvelope<'a> {
    /// Decodes the outer structure: tag 18, the four-element array, a protected header of
    /// exactly `{1: -8, 4: kid}`, an empty unprotected header, a byte-string payload and a
    /// 64-byte signature, with nothing after it. The claims are not decoded here.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(Malformed::new(MAX_ENVELOPE_LEN, MalformedKind::TooLarge));
        }
        let mut r = Reader::new(bytes, 0);
        match r.tag()? {
            Some(TAG_COSE_SIGN1) => {}
            Some(_) => return Err(Malformed::new(0, MalformedKind::Tag)),
            None => return Err(Malformed::new(0, MalformedKind::Untagged)),
        }
        let at = r.pos();
        if r.array()? != 4 {
            return Err(r.error_at(at, MalformedKind::UnexpectedType));
        }

        let protected_start = r.pos();
        let protected = r.bytes()?;
        let protected_item = r.slice(protected_start, r.pos());
        let kid = decode_protected(protected, r.offset() - protected.len())?;

        let at = r.pos();
        if r.map()? != 0 {
            return Err(r.error_at(at, MalformedKind::UnprotectedHeader));
        }

        let payload_start = r.pos();
        let payload = r.bytes()?;
        let payload_item = r.slice(payload_start, r.pos());
        let payload_offset = r.offset() - payload.len();

        let signature = r.bytes_exact::<64>()?;
        r.finish()?;

        Ok(UntrustedEnvelope {
            bytes,
            protected_item,
            payload_item,
            payload,
            payload_offset,
            kid,
            signature,
        })
    }

    /// The key id from the protected header (unauthenticated until verified).
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// The envelope as received.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The claims, decoded WITHOUT checking the signature. For display (`laissez inspect`)
    /// and diagnostics only; never base a decision on them.
    pub fn claims_unverified(&self) -> Result<Claims<'a>, Denial> {
        Claims::decode(self.payload, self.payload_offset)
    }

    /// Strict Ed25519 over the Sig_structure, streamed from the received bytes.
    pub(crate) fn verify_signature(&self, key: &TrustedKey) -> Result<(), Denial> {
        // external_aad as a byte string: head 0x4a (10 bytes), then the text.
        let aad_head = [0x40 | ENVELOPE_AAD.len() as u8];
        let chunks: [&[u8]; 5] = [
            SIG_STRUCTURE_PREFIX,
            self.protected_item,
            &aad_head,
            ENVELOPE_AAD,
            self.payload_item,
        ];
        if verify_strict_chunks(key, &chunks, &self.signature) {
            Ok(())
        } else {
            Err(Denial::BadSignature)
        }
    }

    pub(crate) const fn payload(&self) -> (&'a [u8], usize) {
        (self.payload, self.payload_offset)
    }
}

/// Decodes the protected header: exactly `{1: -8, 4: bstr .size 8}`, in that order.
fn decode_protected(protected: &[u8], base: usize) -> Result<Kid, Malformed> {
    let mut r = Reader::new(protected, base);
    if r.map()? != 2 {
        return Err(Malformed::new(base, MalformedKind::ProtectedHeader));
    }
    let at = r.pos();
    if r.head()? != Header::Positive(LABEL_ALG) {
        return Err(r.error_at(at, MalformedKind::ProtectedHeader));
    }
    let at = r.pos();
    if r.head()? != Header::Negative(ALG_EDDSA_ARG) {
        return Err(r.error_at(at, MalformedKind::Algorithm));
    }
    let at = r.pos();
    if r.head()? != Header::Positive(LABEL_KID) {
        return Err(r.error_at(at, MalformedKind::ProtectedHeader));
    }
    let kid = r.bytes_exact::<8>()?;
    r.finish()?;
    Ok(Kid::from_bytes(kid))
}
