//! Ed25519 secret keys (PKCS#8 PEM) and public keys (SubjectPublicKeyInfo PEM).
//!
//! The PEM and DER work is ed25519-dalek's `pkcs8`/`pem` support; this module only adds
//! the laissez rules on top: the kid, the key checks of `docs/spec.md` §3 on every public key that
//! becomes trusted, and several public keys in one trust file.

use core::fmt;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::{self, LineEnding};
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use laissez_verify::{Kid, TrustedKey};
use rand_core::TryCryptoRng;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::KeyError;

/// The PEM label of a PKCS#8 secret key.
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// The PEM label of a SubjectPublicKeyInfo public key.
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// An Ed25519 signing key.
///
/// Invariant: the secret bytes never leave this value except as a `Zeroizing` PEM string
/// ([`SecretKey::to_pkcs8_pem`]); they are wiped when it is dropped (the inner
/// `SigningKey` zeroizes itself), and `Debug` prints only the kid.
pub struct SecretKey {
    inner: SigningKey,
    /// The public key, already checked as a [`TrustedKey`]: the self-check after signing
    /// verifies with it.
    public: TrustedKey,
}

// The only field holding secret material is `SigningKey`, which zeroizes on drop.
impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    // Never print key bytes: the kid is enough to tell keys apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, KeyError> {
        SecretKey::generate_with(&mut getrandom::SysRng)
    }

    /// A fresh key from `rng` (tests and reproducible demos pass a seeded RNG).
    pub fn generate_with<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<SecretKey, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(seed.as_mut())
            .map_err(|_| KeyError::Rng)?;
        SecretKey::from_seed(&seed)
    }

    /// The key whose RFC 8032 secret (seed) is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        SecretKey::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(inner: SigningKey) -> Result<SecretKey, KeyError> {
        // A public key derived from a seed is always a sound point; checking anyway keeps
        // "every key we sign with is one a verifier would trust" a local fact.
        let public = TrustedKey::from_bytes(inner.verifying_key().as_bytes())
            .map_err(KeyError::UntrustedPublicKey)?;
        Ok(SecretKey { inner, public })
    }

    /// Reads a PKCS#8 PEM secret key (`-----BEGIN PRIVATE KEY-----`), as OpenSSL
    /// (`openssl genpkey -algorithm ed25519`) and Python's `cryptography` write it.
    /// A public key embedded in the document (PKCS#8 v2) must match the secret.
    pub fn from_pkcs8_pem(pem: &str) -> Result<SecretKey, KeyError> {
        if !pem.contains(&format!("-----BEGIN {PRIVATE_KEY_LABEL}-----")) {
            return Err(KeyError::NotPrivateKeyPem);
        }
        // Not `SigningKey::from_pkcs8_pem`: its PEM decoder drops the decoded DER (the seed
        // in it) unwiped when the DER turns out malformed. Decoding into our own wiped buffer
        // covers every path; the PEM text is longer than the DER it holds.
        let pem = pem.trim();
        let mut buffer = Zeroizing::new(vec![0u8; pem.len()]);
        let (label, der) =
            pem::decode(pem.as_bytes(), &mut buffer).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        if label != PRIVATE_KEY_LABEL {
            return Err(KeyError::NotPrivateKeyPem);
        }
        // The seed passes through ed25519's `KeypairBytes`, wiped on drop since this crate
        // turns on ed25519's `zeroize` feature (Cargo.toml).
        let inner = SigningKey::from_pkcs8_der(der).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        SecretKey::from_signing_key(inner)
    }

    /// The PKCS#8 v1 PEM document (what OpenSSL writes), wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        // `From<&SigningKey>` copies the seed straight into the `KeypairBytes`, which wipes it
        // on drop (ed25519's `zeroize` feature), as `to_pkcs8_der` wipes its scratch copy; the
        // DER and PEM are `SecretDocument` and `Zeroizing<String>`. No bare seed array is made.
        let mut doc = KeypairBytes::from(&self.inner);
        // v1 (no embedded public key) is what OpenSSL and `cryptography` write and read.
        doc.public_key = None;
        doc.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Pkcs8(e.to_string()))
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        public_key_pem(&self.public)
    }

    /// The public key, checked as `docs/spec.md` §3 requires.
    pub const fn public_key(&self) -> TrustedKey {
        self.public
    }

    /// The key id: first 8 bytes of SHA-256 of the raw public key.
    pub const fn kid(&self) -> Kid {
        self.public.kid()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.inner
    }
}

/// The SubjectPublicKeyInfo PEM of a public key.
pub fn public_key_pem(key: &TrustedKey) -> Result<String, KeyError> {
    ed25519_dalek::pkcs8::PublicKeyBytes(*key.as_bytes())
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Spki(e.to_string()))
}

/// Reads one SubjectPublicKeyInfo PEM public key and checks it (`docs/spec.md` §3).
pub fn parse_public_key_pem(pem: &str) -> Result<TrustedKey, KeyError> {
    // PublicKeyBytes does no point arithmetic, so a bad point reaches TrustedKey's checks
    // and gets their precise error instead of a generic decoding failure.
    let raw = ed25519_dalek::pkcs8::PublicKeyBytes::from_public_key_pem(pem.trim())
        .map_err(|e| KeyError::Spki(e.to_string()))?;
    TrustedKey::from_bytes(raw.as_ref()).map_err(KeyError::UntrustedPublicKey)
}

/// Reads a trust file's text: one or more `PUBLIC KEY` PEM blocks, concatenated. Text
/// outside the blocks (comments) is ignored, as OpenSSL does; a `PRIVATE KEY` block is an
/// error, since a trust file is shared and must not hold secrets.
pub fn parse_trust_pem(text: &str) -> Result<Vec<TrustedKey>, KeyError> {
    let mut keys = Vec::new();
    let mut block: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(label) = pem_boundary(trimmed, "BEGIN") {
            if label != PUBLIC_KEY_LABEL {
                return Err(KeyError::UnexpectedPemBlock {
                    line: index + 1,
                    label: label.to_owned(),
                });
            }
            block = Some(String::new());
        }
        if let Some(current) = block.as_mut() {
            current.push_str(trimmed);
            current.push('\n');
        }
        if pem_boundary(trimmed, "END").is_some() {
            let Some(pem) = block.take() else {
                return Err(KeyError::UnexpectedPemBlock {
                    line: index + 1,
                    label: "END without BEGIN".to_owned(),
                });
            };
            let key = parse_public_key_pem(&pem).map_err(|e| KeyError::InTrustBlock {
                block: keys.len() + 1,
                source: Box::new(e),
            })?;
            keys.push(key);
        }
    }
    if block.is_some() {
        return Err(KeyError::Spki("PEM block has no END line".to_owned()));
    }
    if keys.is_empty() {
        return Err(KeyError::NoPublicKeys);
    }
    Ok(keys)
}

/// `Some(label)` when `line` is `-----{kind} {label}-----`.
fn pem_boundary<'l>(line: &'l str, kind: &str) -> Option<&'l str> {
    line.strip_prefix("-----")?
        .strip_suffix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroize;

    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = SecretKey::from_seed(&[7u8; 32]).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SecretKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.kid(), key.kid());
        let public = parse_public_key_pem(&key.public_key_pem().unwrap()).unwrap();
        assert_eq!(public, key.public_key());
    }

    #[test]
    fn ed25519_zeroize_feature_is_on() {
        // ed25519-dalek's `zeroize` feature does not turn on ed25519's, and without it the
        // PKCS#8 `KeypairBytes` and `to_pkcs8_der`'s scratch copy keep the seed after they
        // are dropped. Freed memory cannot be read in safe code, so check the feature
        // through an impl it gates: this does not compile without it.
        fn wipeable<T: Zeroize>() {}
        wipeable::<ed25519::Signature>();
    }

    #[test]
    fn damaged_pem_is_refused_and_v2_is_read() {
        let key = SecretKey::from_seed(&[7u8; 32]).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let damaged = pem.replacen("MC4CAQAw", "MC4CAQA*", 1);
        assert_ne!(damaged, *pem);
        assert!(matches!(
            SecretKey::from_pkcs8_pem(&damaged),
            Err(KeyError::Pkcs8(_))
        ));
        // A PKCS#8 v2 document (public key embedded) that matches is read.
        let v2 = key.inner.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(SecretKey::from_pkcs8_pem(&v2).unwrap().kid(), key.kid());
    }

    #[test]
    fn debug_prints_no_key_material() {
        let key = SecretKey::from_seed(&[0x42u8; 32]).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.kid().to_string()));
        assert!(!debug.contains("42, 42"), "{debug}");
        assert!(!debug.to_lowercase().contains("4242"), "{debug}");
    }

    #[test]
    fn trust_file_takes_many_blocks_and_comments() {
        let a = SecretKey::from_seed(&[1u8; 32]).unwrap();
        let b = SecretKey::from_seed(&[2u8; 32]).unwrap();
        let text = format!(
            "# orchestrator A\n{}\n# orchestrator B\n{}",
            a.public_key_pem().unwrap(),
            b.public_key_pem().unwrap()
        );
        let keys = parse_trust_pem(&text).unwrap();
        assert_eq!(keys, vec![a.public_key(), b.public_key()]);
    }

    #[test]
    fn trust_file_refuses_secrets_and_emptiness() {
        let a = SecretKey::from_seed(&[1u8; 32]).unwrap();
        let secret = a.to_pkcs8_pem().unwrap();
        assert!(matches!(
            parse_trust_pem(&secret),
            Err(KeyError::UnexpectedPemBlock { line: 1, .. })
        ));
        assert!(matches!(
            parse_trust_pem("nothing here\n"),
            Err(KeyError::NoPublicKeys)
        ));
    }

    #[test]
    fn small_order_public_key_is_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let pem = ed25519_dalek::pkcs8::PublicKeyBytes(identity)
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert!(matches!(
            parse_public_key_pem(&pem),
            Err(KeyError::UntrustedPublicKey(
                laissez_verify::keys::KeyError::SmallOrder
            ))
        ));
    }

    #[test]
    fn secret_key_pem_with_mismatched_public_key_is_refused() {
        let a = SecretKey::from_seed(&[1u8; 32]).unwrap();
        let b = SecretKey::from_seed(&[2u8; 32]).unwrap();
        let doc = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: a.signing_key().to_bytes(),
            public_key: Some(ed25519_dalek::pkcs8::PublicKeyBytes(
                *b.public_key().as_bytes(),
            )),
        };
        let pem = doc.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(matches!(
            SecretKey::from_pkcs8_pem(&pem),
            Err(KeyError::Pkcs8(_))
        ));
    }
}
