//! Trusted public keys and their key ids.

use core::fmt;

use curve25519_dalek::Scalar;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// A key id: the first 8 bytes of SHA-256 over the raw 32-byte public key.
///
/// Displayed as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid([u8; 8]);

impl Kid {
    /// A kid from its 8 bytes, as read from a protected header.
    pub const fn from_bytes(bytes: [u8; 8]) -> Kid {
        Kid(bytes)
    }

    /// The kid's 8 bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The kid of a raw Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> Kid {
        let digest = Sha256::digest(public_key);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Kid(kid)
    }

    /// Parses 16 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Kid> {
        let hex = hex.as_bytes();
        if hex.len() != 16 {
            return None;
        }
        let mut kid = [0u8; 8];
        for (out, pair) in kid.iter_mut().zip(hex.chunks_exact(2)) {
            *out = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Kid(kid))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes bytes as lowercase hex without allocating.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({self})")
    }
}

/// Why a public key cannot be trusted (`docs/spec.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not the canonical encoding of a curve point.
    NotCanonical,
    /// The point has small order (it would accept forged signatures).
    SmallOrder,
    /// The point has a torsion component.
    NotTorsionFree,
}

impl KeyError {
    /// A stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            KeyError::NotCanonical => "not_canonical",
            KeyError::SmallOrder => "small_order",
            KeyError::NotTorsionFree => "not_torsion_free",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::NotCanonical => "public key is not a canonical curve point encoding",
            KeyError::SmallOrder => "public key is a small-order point",
            KeyError::NotTorsionFree => "public key has a torsion component",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyError {}

/// A public key the verifier trusts, with its kid.
///
/// Invariant: the key decompresses and re-compresses to the same bytes, is not of small
/// order and is torsion-free. The only constructor checks all three, so verification never
/// needs to look at the key again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    kid: Kid,
    key: VerifyingKey,
}

impl TrustedKey {
    /// Checks a raw 32-byte Ed25519 public key and computes its kid.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<TrustedKey, KeyError> {
        let compressed = CompressedEdwardsY(*bytes);
        let point = compressed.decompress().ok_or(KeyError::NotCanonical)?;
        if point.compress().as_bytes() != bytes {
            return Err(KeyError::NotCanonical);
        }
        if point.is_small_order() {
            return Err(KeyError::SmallOrder);
        }
        if !is_torsion_free(&point) {
            return Err(KeyError::NotTorsionFree);
        }
        // The point is decompressed once: the verifying key is built from it.
        Ok(TrustedKey {
            kid: Kid::of(bytes),
            key: VerifyingKey::from(point),
        })
    }

    /// The key id.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// The raw public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    pub(crate) const fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Whether `[L]P` is the identity (P has no torsion component), in variable time: a public
/// key is public, so the constant-time multiplication of `EdwardsPoint::is_torsion_free`
/// buys nothing here, and this check runs for every holder key (`cnf`) an envelope names.
/// `L` itself is no reduced scalar, so `[L]P` is computed as `[L − 1]P + P`.
fn is_torsion_free(point: &EdwardsPoint) -> bool {
    let l_minus_one = Scalar::ZERO - Scalar::ONE;
    let lp = EdwardsPoint::vartime_double_scalar_mul_basepoint(&l_minus_one, point, &Scalar::ZERO)
        + point;
    lp.is_identity()
}

/// Finds the trusted key named by `kid` (the first, should two share a kid).
pub(crate) fn find(keys: &[TrustedKey], kid: &Kid) -> Option<TrustedKey> {
    keys.iter().find(|k| k.kid == *kid).copied()
}

#[cfg(test)]
mod torsion_tests {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};

    use super::*;

    #[test]
    fn the_variable_time_check_agrees_with_curve25519_dalek() {
        let mut p = ED25519_BASEPOINT_POINT;
        for i in 0..64u64 {
            for t in EIGHT_TORSION {
                let q = p + t;
                assert_eq!(
                    is_torsion_free(&q),
                    q.is_torsion_free(),
                    "point {i} + torsion"
                );
            }
            p *= Scalar::from(i + 3);
        }
        assert!(is_torsion_free(&EdwardsPoint::default()));
        assert!(EdwardsPoint::default().is_identity());
    }
}
