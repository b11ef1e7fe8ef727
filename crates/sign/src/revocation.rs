//! The issuer's side of revocation (`docs/spec.md` §14): a signed record that takes
//! authority away from envelopes by cti, key, agent, session or principal.

use std::fmt;

use ciborium::value::Value;
use laissez_verify::Kid;
use laissez_verify::revocation::{RecordError, VerifiedRecord};
use laissez_verify::wire::{MAX_RECORD_LEN, REVOCATION_AAD, record};

use crate::builder::unix_now;
use crate::encode::{encode_sign1, int, text, to_bytes, uint};
use crate::keys::SecretKey;
use crate::text::encode_text;

/// How long a record is kept by default: 168 h, the most the format allows.
pub const DEFAULT_KEEP: u64 = record::MAX_KEEP;

/// What one entry of a record revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoke {
    /// One envelope, by its cti.
    Cti([u8; 16]),
    /// Every envelope signed by, or holder-bound to, the key with this kid.
    Kid(Kid),
    /// Every envelope for this agent (`sub`) issued up to the record's iat.
    Agent(String),
    /// Every envelope of this session (`sid`) issued up to the record's iat.
    Session(String),
    /// Every envelope on behalf of this principal (`obo`) issued up to the record's iat.
    Principal(String),
}

/// Why a record could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationError {
    /// No entry: a record revokes at least one thing.
    NoEntries,
    /// More than 64 entries (the count).
    TooManyEntries(usize),
    /// A keep of 0 or over 7 days (seconds asked).
    KeepOutOfRange(u64),
    /// The record would exceed 4096 bytes (its length).
    TooLarge(usize),
    /// The CBOR encoder failed.
    Encoding(String),
    /// The signed record did not verify with laissez-verify (a bug).
    SelfCheck(RecordError),
}

impl RevocationError {
    /// A stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            RevocationError::NoEntries => "no_entries",
            RevocationError::TooManyEntries(_) => "too_many_entries",
            RevocationError::KeepOutOfRange(_) => "keep_out_of_range",
            RevocationError::TooLarge(_) => "too_large",
            RevocationError::Encoding(_) => "encoding",
            RevocationError::SelfCheck(_) => "self_check",
        }
    }
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationError::NoEntries => {
                f.write_str("a revocation record needs at least one entry")
            }
            RevocationError::TooManyEntries(n) => write!(
                f,
                "{n} entries: a revocation record holds at most {}",
                record::MAX_ENTRIES
            ),
            RevocationError::KeepOutOfRange(s) => {
                write!(f, "keep of {s} s: must be 1 s to 7 days (168h)")
            }
            RevocationError::TooLarge(n) => {
                write!(f, "the record would be {n} bytes, over {MAX_RECORD_LEN}")
            }
            RevocationError::Encoding(e) => write!(f, "encoding failed: {e}"),
            RevocationError::SelfCheck(e) => write!(f, "the signed record does not verify: {e}"),
        }
    }
}

impl std::error::Error for RevocationError {}

/// Builds a revocation record and signs it with a trusted issuer key.
///
/// ```
/// use laissez_sign::{RevocationBuilder, SecretKey};
/// use laissez_verify::revocation::VerifiedRecord;
///
/// let issuer = SecretKey::generate()?;
/// // The task is done: nothing of it runs any more.
/// let record = RevocationBuilder::new().session("task-42").sign(&issuer)?;
/// let keys = [issuer.public_key()];
/// assert_eq!(VerifiedRecord::verify(record.as_bytes(), &keys)?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RevocationBuilder {
    entries: Vec<Revoke>,
    iat: Option<u64>,
    keep: Option<u64>,
}

impl RevocationBuilder {
    /// A builder with no entry, made now, kept [`DEFAULT_KEEP`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry.
    #[must_use]
    pub fn revoke(mut self, what: Revoke) -> Self {
        self.entries.push(what);
        self
    }

    /// Revokes one envelope by its cti.
    #[must_use]
    pub fn cti(self, cti: [u8; 16]) -> Self {
        self.revoke(Revoke::Cti(cti))
    }

    /// Revokes every envelope signed by or bound to the key `kid`.
    #[must_use]
    pub fn kid(self, kid: Kid) -> Self {
        self.revoke(Revoke::Kid(kid))
    }

    /// Revokes every envelope for `agent` issued up to now.
    #[must_use]
    pub fn agent(self, agent: &str) -> Self {
        self.revoke(Revoke::Agent(agent.to_owned()))
    }

    /// Revokes every envelope of `session` issued up to now.
    #[must_use]
    pub fn session(self, session: &str) -> Self {
        self.revoke(Revoke::Session(session.to_owned()))
    }

    /// Revokes every envelope on behalf of `principal` issued up to now.
    #[must_use]
    pub fn obo(self, principal: &str) -> Self {
        self.revoke(Revoke::Principal(principal.to_owned()))
    }

    /// States when the record is made (default: now). "Issued up to iat" entries cover
    /// envelopes issued at or before it.
    #[must_use]
    pub fn iat(mut self, iat: u64) -> Self {
        self.iat = Some(iat);
        self
    }

    /// How long workers keep it, in seconds (1 to 7 days; default [`DEFAULT_KEEP`]). Keep it
    /// at least as long as the longest-lived envelope it revokes may still be valid.
    #[must_use]
    pub fn keep_secs(mut self, secs: u64) -> Self {
        self.keep = Some(secs);
        self
    }

    /// Encodes, signs with `key` under the record aad, and verifies the result.
    pub fn sign(&self, key: &SecretKey) -> Result<SignedRecord, RevocationError> {
        if self.entries.is_empty() {
            return Err(RevocationError::NoEntries);
        }
        if self.entries.len() > record::MAX_ENTRIES {
            return Err(RevocationError::TooManyEntries(self.entries.len()));
        }
        let keep = self.keep.unwrap_or(DEFAULT_KEEP);
        if keep == 0 || keep > record::MAX_KEEP {
            return Err(RevocationError::KeepOutOfRange(keep));
        }
        let iat = self.iat.unwrap_or_else(unix_now);
        let until = iat
            .checked_add(keep)
            .ok_or(RevocationError::KeepOutOfRange(keep))?;
        let entries = self.entries.iter().map(entry_value).collect();
        // Keys 1, 2, 3: already in the bytewise order of their encodings.
        let payload = Value::Map(vec![
            (int(record::IAT), uint(iat)),
            (int(record::UNTIL), uint(until)),
            (int(record::ENTRIES), Value::Array(entries)),
        ]);
        let payload = to_bytes(&payload).map_err(RevocationError::Encoding)?;
        let bytes =
            encode_sign1(payload, REVOCATION_AAD, key).map_err(RevocationError::Encoding)?;
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RevocationError::TooLarge(bytes.len()));
        }
        let keys = [key.public_key()];
        let checked = VerifiedRecord::verify(&bytes, &keys).map_err(RevocationError::SelfCheck)?;
        if checked.iat() != iat || checked.until() != until || checked.len() != self.entries.len() {
            return Err(RevocationError::Encoding(
                "the record decodes to other values".into(),
            ));
        }
        Ok(SignedRecord { bytes, iat, until })
    }
}

fn entry_value(entry: &Revoke) -> Value {
    let (kind, value) = match entry {
        Revoke::Cti(cti) => (record::KIND_CTI, Value::Bytes(cti.to_vec())),
        Revoke::Kid(kid) => (record::KIND_KID, Value::Bytes(kid.as_bytes().to_vec())),
        Revoke::Agent(s) => (record::KIND_SUB, text(s)),
        Revoke::Session(s) => (record::KIND_SID, text(s)),
        Revoke::Principal(s) => (record::KIND_OBO, text(s)),
    };
    Value::Array(vec![uint(kind), value])
}

/// A signed revocation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    bytes: Vec<u8>,
    iat: u64,
    until: u64,
}

impl SignedRecord {
    /// The raw record (starts with 0xd2): the body of its stream message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw record, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The text form: base64url without padding.
    pub fn to_text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// When it was made.
    pub const fn iat(&self) -> u64 {
        self.iat
    }

    /// Until when workers keep it.
    pub const fn until(&self) -> u64 {
        self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_refused_before_signing() {
        let key = SecretKey::from_seed(&[3u8; 32]).unwrap();
        assert_eq!(
            RevocationBuilder::new().sign(&key).unwrap_err(),
            RevocationError::NoEntries
        );
        let mut many = RevocationBuilder::new();
        for i in 0..65u8 {
            many = many.cti([i; 16]);
        }
        assert_eq!(many.sign(&key).unwrap_err().code(), "too_many_entries");
        for keep in [0, record::MAX_KEEP + 1] {
            let b = RevocationBuilder::new().session("s").keep_secs(keep);
            assert_eq!(
                b.sign(&key).unwrap_err(),
                RevocationError::KeepOutOfRange(keep)
            );
        }
        let long = "x".repeat(2000);
        let b = RevocationBuilder::new()
            .agent(&long)
            .agent(&long)
            .agent(&long);
        assert!(matches!(b.sign(&key), Err(RevocationError::TooLarge(_))));
    }
}
