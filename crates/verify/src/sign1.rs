//! The outer COSE_Sign1 shape shared by every signed laissez object (envelope, invocation):
//! tag 18, four items, a protected header of exactly `{1: -8, 4: kid}`, an empty unprotected
//! header, a byte-string payload and a 64-byte signature, nothing after it, and a size limit
//! checked before any decoding (`docs/spec.md` §1). Objects differ in their limit, their
//! payload and their external_aad (domain separation: one never verifies as another).

use ciborium_ll::Header;

use crate::cbor::Reader;
use crate::ed25519::verify_strict_chunks;
use crate::keys::{Kid, TrustedKey};
use crate::malformed::{Malformed, MalformedKind};
use crate::wire::{SIG_STRUCTURE_PREFIX, TAG_COSE_SIGN1, header, nint_arg};

/// COSE header label `alg`, as a head argument.
const LABEL_ALG: u64 = header::ALG as u64;
/// COSE header label `kid`, as a head argument.
const LABEL_KID: u64 = header::KID as u64;
/// EdDSA (-8), as the argument of its negative-integer head.
const ALG_EDDSA_ARG: u64 = nint_arg(header::ALG_EDDSA);

/// A decoded COSE_Sign1, borrowed from the bytes as received; nothing verified yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sign1<'a> {
    pub(crate) bytes: &'a [u8],
    /// The protected header item, head included, as received.
    protected_item: &'a [u8],
    /// The payload item, head included, as received.
    payload_item: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) payload_offset: usize,
    pub(crate) kid: Kid,
    signature: [u8; 64],
}

impl<'a> Sign1<'a> {
    /// Decodes the outer structure of an object of at most `max_len` bytes.
    pub(crate) fn decode(bytes: &'a [u8], max_len: usize) -> Result<Self, Malformed> {
        if bytes.len() > max_len {
            return Err(Malformed::new(max_len, MalformedKind::TooLarge));
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

        Ok(Sign1 {
            bytes,
            protected_item,
            payload_item,
            payload,
            payload_offset,
            kid,
            signature,
        })
    }

    /// Strict Ed25519 over the Sig_structure with `aad`, streamed from the received bytes.
    pub(crate) fn signature_holds(&self, key: &TrustedKey, aad: &[u8]) -> bool {
        // The aad is at most 23 bytes, so its byte-string head is one byte.
        let Some(head) = u8::try_from(aad.len()).ok().filter(|n| *n < 24) else {
            return false;
        };
        let aad_head = [0x40 | head];
        let chunks: [&[u8]; 5] = [
            SIG_STRUCTURE_PREFIX,
            self.protected_item,
            &aad_head,
            aad,
            self.payload_item,
        ];
        verify_strict_chunks(key, &chunks, &self.signature)
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
