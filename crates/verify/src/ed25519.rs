//! Strict Ed25519 verification over a message given in chunks, without allocation.
//!
//! Crate-private: the verifier calls it on the Sig_structure of each signed object. It is
//! public only under the `hazmat` feature (as `laissez_verify::hazmat`), for the differential
//! test against ed25519-dalek's `verify_strict` and for benchmarks: callers that are not
//! checking this code should verify envelopes, never raw signatures.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use crate::keys::TrustedKey;

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
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
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
