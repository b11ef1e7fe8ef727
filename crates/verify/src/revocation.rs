//! Revocation records (`docs/spec.md` §14): a COSE_Sign1 of at most 4096 bytes, signed by a
//! trusted issuer key with the external_aad `laissez/v1/revocation` (so a record never
//! verifies as an envelope or an invocation, nor they as a record), whose payload is
//! `{1: iat, 2: until, 3: [+ entry]}`.
//!
//! Decoding reads the record in place and checks every entry once; [`VerifiedRecord::entries`]
//! then reads them again lazily, without allocating. What a worker holds answers the
//! [`Revocations`] trait: [`RevocationList`] over a slice of verified records here, and
//! `RevocationSet` (feature `std`) with hash lookups.

use core::fmt;

use crate::cbor::{Key, Reader};
use crate::keys::{self, Kid, TrustedKey};
use crate::malformed::{Malformed, MalformedKind};
use crate::sign1::Sign1;
use crate::verified::VerifiedEnvelope;
use crate::wire::{MAX_RECORD_LEN, REVOCATION_AAD, record};

#[cfg(feature = "std")]
mod set;
#[cfg(feature = "std")]
pub use set::{Applied, ApplyError, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RECORDS, RevocationSet};

/// Why a revocation record is not applied. A worker logs it and goes on: a bad record is
/// never fatal and never revokes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a record as the format defines it (offset and kind).
    Malformed(Malformed),
    /// More than 64 entries.
    TooManyEntries,
    /// `until` is before `iat`, or more than 7 days after it.
    UntilOutOfRange,
    /// Its kid names no trusted key.
    UnknownKey,
    /// Its signature does not verify under the trusted key its kid names.
    BadSignature,
}

impl RecordError {
    /// A stable snake_case code, for logs and JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            RecordError::Malformed(_) => "malformed",
            RecordError::TooManyEntries => "too_many_entries",
            RecordError::UntilOutOfRange => "until_out_of_range",
            RecordError::UnknownKey => "unknown_key",
            RecordError::BadSignature => "bad_signature",
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Malformed(m) => write!(f, "malformed revocation record: {m}"),
            RecordError::TooManyEntries => write!(
                f,
                "the revocation record has more than {} entries",
                record::MAX_ENTRIES
            ),
            RecordError::UntilOutOfRange => f.write_str(
                "the revocation record's until is before its iat or over 7 days after it",
            ),
            RecordError::UnknownKey => {
                f.write_str("the revocation record's kid names no trusted key")
            }
            RecordError::BadSignature => {
                f.write_str("the revocation record's signature does not verify")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RecordError {}

impl From<Malformed> for RecordError {
    fn from(m: Malformed) -> Self {
        RecordError::Malformed(m)
    }
}

/// One entry of a record: what it revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry<'a> {
    /// Kind 0: the envelope with this cti.
    Cti([u8; 16]),
    /// Kind 1: every envelope signed by this key or bound to it (`cnf`).
    Kid(Kid),
    /// Kind 2: every envelope for this agent (`sub`) issued up to the record's iat.
    Sub(&'a str),
    /// Kind 3: every envelope of this session (`sid`) issued up to the record's iat.
    Sid(&'a str),
    /// Kind 4: every envelope on behalf of this principal (`obo`) issued up to the record's
    /// iat.
    Obo(&'a str),
    /// A kind this version does not know: skipped (the record's other entries still apply).
    Unknown {
        /// The entry's kind.
        kind: u64,
        /// Byte offset of the entry in the record.
        offset: usize,
    },
}

/// Reads one entry: `[kind, value]`, kind a uint; a value of an unknown kind may be any
/// deterministic item.
fn read_entry<'a>(r: &mut Reader<'a>) -> Result<Entry<'a>, Malformed> {
    let (at, offset) = (r.pos(), r.offset());
    if r.array()? != 2 {
        return Err(r.error_at(at, MalformedKind::UnexpectedType));
    }
    Ok(match r.uint()? {
        record::KIND_CTI => Entry::Cti(r.bytes_exact::<16>()?),
        record::KIND_KID => Entry::Kid(Kid::from_bytes(r.bytes_exact::<8>()?)),
        record::KIND_SUB => Entry::Sub(r.text()?),
        record::KIND_SID => Entry::Sid(r.text()?),
        record::KIND_OBO => Entry::Obo(r.text()?),
        kind => {
            r.skip(3)?;
            Entry::Unknown { kind, offset }
        }
    })
}

/// The entries of a record, read lazily from its bytes.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Every entry was checked when the record was decoded.
        read_entry(&mut self.reader).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// The parts of a record both the untrusted and the verified view share.
#[derive(Debug, Clone, Copy)]
struct Body<'a> {
    iat: u64,
    until: u64,
    /// The entries, after the array head.
    entries: &'a [u8],
    entries_base: usize,
    count: usize,
    unknown: usize,
}

impl<'a> Body<'a> {
    fn entries(&self) -> Entries<'a> {
        Entries {
            reader: Reader::new(self.entries, self.entries_base),
            remaining: self.count,
        }
    }
}

/// A revocation record whose structure has been checked but whose signature has not.
#[derive(Debug, Clone, Copy)]
pub struct UntrustedRecord<'a> {
    sign1: Sign1<'a>,
    body: Body<'a>,
}

impl<'a> UntrustedRecord<'a> {
    /// Decodes a record: the COSE_Sign1 shape, at most 4096 bytes, a payload of exactly
    /// `{1: uint, 2: uint, 3: [+ entry]}` (deterministic), 1 to 64 entries each `[uint,
    /// value]` with the value the kind requires (any item for an unknown kind), and
    /// `iat ≤ until ≤ iat + 7 days`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let sign1 = Sign1::decode(bytes, MAX_RECORD_LEN)?;
        let mut r = Reader::new(sign1.payload, sign1.payload_offset);
        let at = r.pos();
        let pairs = r.map()?;
        let mut prev = None;
        let (mut iat, mut until, mut entries) = (None, None, None);
        for _ in 0..pairs {
            let key_at = r.pos();
            match r.key(&mut prev, 1)? {
                Key::Uint(k) if k == record::IAT as u64 => iat = Some(r.uint()?),
                Key::Uint(k) if k == record::UNTIL as u64 => until = Some(r.uint()?),
                Key::Uint(k) if k == record::ENTRIES as u64 => {
                    entries = Some(read_entries(&mut r)?);
                }
                _ => return Err(r.error_at(key_at, MalformedKind::UnknownField).into()),
            }
        }
        r.finish()?;
        let (Some(iat), Some(until), Some((entries, entries_base, count, unknown))) =
            (iat, until, entries)
        else {
            return Err(r.error_at(at, MalformedKind::MissingClaim).into());
        };
        if until < iat || until - iat > record::MAX_KEEP {
            return Err(RecordError::UntilOutOfRange);
        }
        Ok(UntrustedRecord {
            sign1,
            body: Body {
                iat,
                until,
                entries,
                entries_base,
                count,
                unknown,
            },
        })
    }

    /// The kid of the key that claims to have signed it.
    pub const fn kid(&self) -> Kid {
        self.sign1.kid
    }

    /// When it was made (unauthenticated until the signature holds).
    pub const fn iat(&self) -> u64 {
        self.body.iat
    }

    /// Until when a worker keeps it (unauthenticated until the signature holds).
    pub const fn until(&self) -> u64 {
        self.body.until
    }

    /// Its entries (unauthenticated until the signature holds).
    pub fn entries(&self) -> Entries<'a> {
        self.body.entries()
    }

    /// Checks the signature under the trusted key its kid names, with the record aad.
    pub fn verify(&self, keys: &[TrustedKey]) -> Result<VerifiedRecord<'a>, RecordError> {
        let key = keys::find(keys, &self.kid()).ok_or(RecordError::UnknownKey)?;
        if !self.sign1.signature_holds(&key, REVOCATION_AAD) {
            return Err(RecordError::BadSignature);
        }
        Ok(VerifiedRecord {
            bytes: self.sign1.bytes,
            kid: key.kid(),
            body: self.body,
        })
    }
}

/// Reads the entries array: its bytes after the head, their offset, the count and how many
/// are of an unknown kind.
fn read_entries<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], usize, usize, usize), RecordError> {
    let at = r.pos();
    let count = r.array()?;
    if count == 0 {
        return Err(r.error_at(at, MalformedKind::EmptyList).into());
    }
    if count > record::MAX_ENTRIES {
        return Err(RecordError::TooManyEntries);
    }
    let (start, base) = (r.pos(), r.offset());
    let mut unknown = 0;
    for _ in 0..count {
        if let Entry::Unknown { .. } = read_entry(r)? {
            unknown += 1;
        }
    }
    Ok((r.slice(start, r.pos()), base, count, unknown))
}

/// A record signed by a trusted issuer key: apply it.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedRecord<'a> {
    bytes: &'a [u8],
    kid: Kid,
    body: Body<'a>,
}

impl<'a> VerifiedRecord<'a> {
    /// Decodes and verifies `bytes` under `keys` (any trusted issuer key may revoke).
    pub fn verify(bytes: &'a [u8], keys: &[TrustedKey]) -> Result<Self, RecordError> {
        UntrustedRecord::decode(bytes)?.verify(keys)
    }

    /// The record's bytes as received.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// SHA-256 of the record's bytes: its identity in a ledger.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.bytes).into()
    }

    /// The kid of the issuer key that signed it.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// When it was made: "issued up to iat" entries cover envelopes whose own iat (or nbf,
    /// when they have none) is at most this.
    pub const fn iat(&self) -> u64 {
        self.body.iat
    }

    /// Until when a worker keeps it (plus its leeway); after that it may forget it.
    pub const fn until(&self) -> u64 {
        self.body.until
    }

    /// Its entries, in wire order, unknown kinds included (as [`Entry::Unknown`]).
    pub fn entries(&self) -> Entries<'a> {
        self.body.entries()
    }

    /// How many entries it has.
    pub const fn len(&self) -> usize {
        self.body.count
    }

    /// Always false: a record has at least one entry.
    pub const fn is_empty(&self) -> bool {
        self.body.count == 0
    }

    /// How many of its entries are of a kind this version does not know (skipped).
    pub const fn unknown_entries(&self) -> usize {
        self.body.unknown
    }

    /// Whether one of its entries covers the envelope `query` describes.
    pub fn covers(&self, query: &RevocationQuery<'_>) -> bool {
        self.entries()
            .any(|entry| query.matches(&entry, self.body.iat))
    }
}

/// What revocation looks at in an envelope: its cti, the kid of its signer and of its holder
/// key (`cnf`), its agent, session and principal, and when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationQuery<'a> {
    /// The envelope's cti.
    pub cti: [u8; 16],
    /// The kid of the key that signed it.
    pub signer: Kid,
    /// The kid of its holder key (`cnf`), when holder-bound.
    pub holder: Option<Kid>,
    /// Its agent (`sub`).
    pub sub: &'a str,
    /// Its session (`sid`).
    pub sid: Option<&'a str>,
    /// Its principal (`obo`).
    pub obo: Option<&'a str>,
    /// When it was issued: its iat, or its nbf when it has none.
    pub issued: u64,
}

impl<'a> RevocationQuery<'a> {
    /// The query for a verified envelope.
    pub fn of(envelope: &VerifiedEnvelope<'a>) -> Self {
        let claims = envelope.claims();
        RevocationQuery {
            cti: *claims.cti(),
            signer: envelope.kid(),
            holder: claims.holder().map(TrustedKey::kid),
            sub: claims.sub(),
            sid: claims.sid(),
            obo: claims.obo(),
            issued: claims.iat().unwrap_or(claims.nbf()),
        }
    }

    /// Whether `entry`, from a record made at `record_iat`, covers this envelope.
    pub fn matches(&self, entry: &Entry<'_>, record_iat: u64) -> bool {
        let issued_before = self.issued <= record_iat;
        match *entry {
            Entry::Cti(cti) => cti == self.cti,
            Entry::Kid(kid) => kid == self.signer || Some(kid) == self.holder,
            Entry::Sub(sub) => issued_before && sub == self.sub,
            Entry::Sid(sid) => issued_before && Some(sid) == self.sid,
            Entry::Obo(obo) => issued_before && Some(obo) == self.obo,
            Entry::Unknown { .. } => false,
        }
    }
}

/// The revocation records a worker holds (`docs/spec.md` §14). The verifier asks it about
/// every envelope it checks, after `class_not_granted` and before `invocation_required`.
pub trait Revocations {
    /// Whether a held record covers the envelope `query` describes.
    fn revokes(&self, query: &RevocationQuery<'_>) -> bool;
}

/// The empty revocation set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn revokes(&self, _: &RevocationQuery<'_>) -> bool {
        false
    }
}

/// Verified records held in a slice, without allocation: each query reads every entry of
/// every record. For a few records; a worker that holds many uses `RevocationSet`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RevocationList<'r> {
    records: &'r [VerifiedRecord<'r>],
}

impl<'r> RevocationList<'r> {
    /// A list over `records`.
    pub const fn new(records: &'r [VerifiedRecord<'r>]) -> Self {
        RevocationList { records }
    }
}

impl Revocations for RevocationList<'_> {
    fn revokes(&self, query: &RevocationQuery<'_>) -> bool {
        self.records.iter().any(|r| r.covers(query))
    }
}
