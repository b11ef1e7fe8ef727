//! The outer COSE_Sign1 structure and its signature.

use ciborium_ll::Header;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use crate::claims::Claims;
use crate::error::{Denial, Malformed, MalformedKind};
use crate::keys::{Kid, TrustedKey};
use crate::{EXTERNAL_AAD, MAX_ENVELOPE_LEN, cbor::Reader};

/// COSE tag for COSE_Sign1.
const TAG_COSE_SIGN1: u64 = 18;
/// COSE header label `alg`.
const LABEL_ALG: u64 = 1;
/// COSE header label `kid`.
const LABEL_KID: u64 = 4;
/// COSE algorithm EdDSA (-8), as the CBOR negative argument `-1 - n`.
const ALG_EDDSA_ARG: u64 = 7;

/// The start of every Sig_structure: a 4-element array and the text "Signature1".
const SIG_STRUCTURE_PREFIX: &[u8; 12] = b"\x84\x6aSignature1";

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
        let aad_head = [0x40 | EXTERNAL_AAD.len() as u8];
        let chunks: [&[u8]; 5] = [
            SIG_STRUCTURE_PREFIX,
            self.protected_item,
            &aad_head,
            EXTERNAL_AAD,
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

/// Strict Ed25519 (the criteria of ed25519-dalek's `verify_strict`) of `signature` over the
/// concatenation of `chunks`, without buffering the message and without allocating.
///
/// The equation is checked here on curve25519-dalek's primitives rather than through
/// ed25519-dalek's verifiers, for two reasons: their failure value boxes its cause as soon as
/// any crate in the build enables ed25519-dalek's `alloc` feature (so a denial would allocate),
/// and their S check is relaxed by its `legacy_compatibility` feature, which any crate in the
/// build could enable. The criteria:
/// - S is canonical (`S < l`), so `(R, S + l)` is not a second valid signature;
/// - R is not of small order (an encoding that does not decompress, or a non-canonical one,
///   fails the final comparison);
/// - A (the key) is canonical, not of small order and torsion-free: checked when it became a
///   [`TrustedKey`];
/// - `[S]B - [k]A`, with `k = SHA-512(R || A || M) mod l`, compresses to exactly the bytes of
///   R (a byte comparison, so a non-canonical encoding of R fails).
///
/// RFC 8032, Wycheproof and CCTV vectors in `tests/ed25519_vectors.rs` pin this behaviour.
pub fn verify_strict_chunks(key: &TrustedKey, chunks: &[&[u8]], signature: &[u8; 64]) -> bool {
    let (r_bytes, s_bytes) = signature.split_at(32);
    let (Ok(r_bytes), Ok(s_bytes)) = (<[u8; 32]>::try_from(r_bytes), <[u8; 32]>::try_from(s_bytes))
    else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    // R must not have small order. Only a canonical encoding can pass the byte comparison at
    // the end, so refusing the eight canonical small-order encodings refuses exactly what
    // decompressing R and testing its order would, without decompression's square root
    // (about a tenth of the whole verification).
    if SMALL_ORDER_ENCODINGS.contains(&r_bytes) {
        return false;
    }
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key.as_bytes());
    for chunk in chunks {
        hash.update(chunk);
    }
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    let minus_a = -key.verifying_key().to_edwards();
    let expected_r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
    expected_r.compress().to_bytes() == r_bytes
}

/// The canonical encodings of the eight points of small order (the 8-torsion subgroup), in
/// the order of curve25519-dalek's `EIGHT_TORSION`, from which a unit test derives them.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = [
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x80,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x85,
    ],
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0xfa,
    ],
];

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

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    use super::SMALL_ORDER_ENCODINGS;

    #[test]
    fn small_order_encodings_are_the_eight_torsion_points() {
        for (point, bytes) in EIGHT_TORSION.iter().zip(SMALL_ORDER_ENCODINGS) {
            assert_eq!(point.compress().to_bytes(), bytes);
            let decoded = CompressedEdwardsY(bytes).decompress().unwrap();
            assert!(decoded.is_small_order());
        }
        // Eight distinct points: the whole subgroup.
        for (i, a) in SMALL_ORDER_ENCODINGS.iter().enumerate() {
            assert!(SMALL_ORDER_ENCODINGS[i + 1..].iter().all(|b| a != b));
        }
    }
}
