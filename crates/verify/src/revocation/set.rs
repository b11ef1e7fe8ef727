//! The records a worker holds, indexed for hash lookups (`docs/spec.md` §14).
//!
//! A query costs a fixed number of hash lookups whatever the number of records held: by cti,
//! by the signer's and the holder's kid, and by sub, sid and obo (each of those names keeps
//! the (iat, until) of the records that name it, almost always one). Records are dropped
//! once `until + leeway` has passed ([`RevocationSet::prune`]).
//!
//! Memory is bounded per signer: at most [`DEFAULT_MAX_RECORDS`] records and
//! [`DEFAULT_MAX_ENTRIES`] entries signed by one key, so a leaked key fills its own quota and
//! no other's. Past it, [`RevocationSet::apply`] fails with [`ApplyError::Full`], the record
//! is not held and the set is not [`complete`](RevocationSet::is_complete) (the worker must
//! take no work) until a kid record revokes that signer. A record with a kid entry is always
//! held, whatever the quotas, and never dropped before its time; it drops every other record
//! signed by the key it revokes, and the set holds none of that key's later ones (a revoked
//! key's records no longer count: revocation only takes authority away, and they would only
//! fill the set).

use std::boxed::Box;
use std::collections::HashMap;
use std::fmt;
use std::vec::Vec;

use super::{Entry, RecordError, RevocationQuery, Revocations, VerifiedRecord};
use crate::keys::{Kid, TrustedKey};
use crate::policy::{DEFAULT_LEEWAY, MAX_LEEWAY};

/// Most records a set holds by default from one signer (kid records aside).
pub const DEFAULT_MAX_RECORDS: usize = 16_384;

/// Most entries (over its records) a set holds by default from one signer (kid records
/// aside).
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 18;

/// What [`RevocationSet::apply`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// Now held. `unknown_entries` entries were of a kind this version does not know and
    /// were skipped (log them).
    Added {
        /// Entries skipped.
        unknown_entries: usize,
    },
    /// The same record (same bytes) was already held.
    AlreadyHeld,
    /// Its `until + leeway` has passed: nothing to hold.
    Expired,
    /// Its signer is revoked by a held kid record, and it has no kid entry: not held.
    SignerRevoked,
}

/// Why a record was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyError {
    /// The record does not decode or does not verify.
    Record(RecordError),
    /// The signer's quota is full (`records` and `entries` are its limits per signer).
    Full {
        /// Its record limit.
        records: usize,
        /// Its entry limit.
        entries: usize,
    },
}

impl ApplyError {
    /// A stable snake_case code, for logs and JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            ApplyError::Record(e) => e.code(),
            ApplyError::Full { .. } => "revocations_full",
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Record(e) => e.fmt(f),
            ApplyError::Full { records, entries } => write!(
                f,
                "the signer's quota in the revocation set is full ({records} records or {entries} entries held)"
            ),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<RecordError> for ApplyError {
    fn from(e: RecordError) -> Self {
        ApplyError::Record(e)
    }
}

/// One record's hold on a name: made at `iat`, kept until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    iat: u64,
    until: u64,
}

/// One entry of a held record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Cti([u8; 16]),
    Kid(Kid),
    Sub(Box<str>),
    Sid(Box<str>),
    Obo(Box<str>),
}

/// A held record: who signed it, when, and what it names.
#[derive(Debug)]
struct HeldRecord {
    signer: Kid,
    hold: Hold,
    /// Whether it has a kid entry: then always held, and never counted in a quota.
    names_kid: bool,
    /// Its entries, unknown kinds included (what the limits count).
    count: usize,
    entries: Box<[Owned]>,
}

/// What one signer's records (kid records aside) take.
#[derive(Debug, Clone, Copy, Default)]
struct Quota {
    records: usize,
    entries: usize,
}

/// The indexes over the held records, rebuilt whole when records are dropped.
#[derive(Debug, Default)]
struct Index {
    /// The latest until of any record naming the cti / kid.
    ctis: HashMap<[u8; 16], u64>,
    kids: HashMap<Kid, u64>,
    subs: HashMap<Box<str>, Vec<Hold>>,
    sids: HashMap<Box<str>, Vec<Hold>>,
    obos: HashMap<Box<str>, Vec<Hold>>,
}

impl Index {
    fn add(&mut self, record: &HeldRecord) {
        let (hold, until) = (record.hold, record.hold.until);
        for entry in record.entries.iter() {
            match entry {
                Owned::Cti(cti) => later(self.ctis.entry(*cti).or_insert(until), until),
                Owned::Kid(kid) => later(self.kids.entry(*kid).or_insert(until), until),
                Owned::Sub(name) => push(&mut self.subs, name, hold),
                Owned::Sid(name) => push(&mut self.sids, name, hold),
                Owned::Obo(name) => push(&mut self.obos, name, hold),
            }
        }
    }
}

/// The records a worker holds, answering [`Revocations`] with hash lookups.
#[derive(Debug)]
pub struct RevocationSet {
    leeway: u64,
    max_records: usize,
    max_entries: usize,
    /// Held records by SHA-256 of their bytes.
    records: HashMap<[u8; 32], HeldRecord>,
    entries: usize,
    quotas: HashMap<Kid, Quota>,
    /// Signers one of whose records was refused (quota full), not revoked since.
    refused: HashMap<Kid, u64>,
    index: Index,
}

impl Default for RevocationSet {
    fn default() -> Self {
        RevocationSet::new()
    }
}

impl RevocationSet {
    /// An empty set with the default leeway and limits.
    pub fn new() -> Self {
        RevocationSet {
            leeway: DEFAULT_LEEWAY,
            max_records: DEFAULT_MAX_RECORDS,
            max_entries: DEFAULT_MAX_ENTRIES,
            records: HashMap::new(),
            entries: 0,
            quotas: HashMap::new(),
            refused: HashMap::new(),
            index: Index::default(),
        }
    }

    /// Keeps records `leeway` seconds past their until (at most [`MAX_LEEWAY`]).
    #[must_use]
    pub fn with_leeway(mut self, leeway: u64) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Holds at most `records` records and `entries` entries from each signer (records
    /// with a kid entry are always held).
    #[must_use]
    pub fn with_limits(mut self, records: usize, entries: usize) -> Self {
        self.max_records = records;
        self.max_entries = entries;
        self
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Entries held, over all records.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Whether every record applied to it is held (or was dropped by the rules): false from
    /// the moment a signer's record is refused ([`ApplyError::Full`]) until a kid record
    /// revokes that signer. A worker whose set is not complete must take no work.
    pub fn is_complete(&self) -> bool {
        self.refused.is_empty()
    }

    /// Whether a record is still kept at `now`.
    fn live(&self, until: u64, now: u64) -> bool {
        now < until.saturating_add(self.leeway)
    }

    /// Whether `digest` is held already: a caller may skip verifying such bytes again.
    pub fn holds(&self, digest: &[u8; 32]) -> bool {
        self.records.contains_key(digest)
    }

    /// Holds a verified record from now on. A record whose `until + leeway` has passed is
    /// not held; the same record twice is held once; a record of a revoked signer without a
    /// kid entry is not held. A record with a kid entry is always held, and drops the other
    /// records of every key it names.
    pub fn apply(&mut self, record: &VerifiedRecord<'_>, now: u64) -> Result<Applied, ApplyError> {
        let until = record.until();
        if !self.live(until, now) {
            return Ok(Applied::Expired);
        }
        let digest = record.digest();
        if self.records.contains_key(&digest) {
            return Ok(Applied::AlreadyHeld);
        }
        let signer = record.kid();
        let entries: Box<[Owned]> = record
            .entries()
            .filter_map(|entry| match entry {
                Entry::Cti(cti) => Some(Owned::Cti(cti)),
                Entry::Kid(kid) => Some(Owned::Kid(kid)),
                Entry::Sub(name) => Some(Owned::Sub(name.into())),
                Entry::Sid(name) => Some(Owned::Sid(name.into())),
                Entry::Obo(name) => Some(Owned::Obo(name.into())),
                Entry::Unknown { .. } => None,
            })
            .collect();
        let names_kid = entries.iter().any(|e| matches!(e, Owned::Kid(_)));
        let count = record.len();
        if !names_kid {
            if self.index.kids.contains_key(&signer) {
                return Ok(Applied::SignerRevoked);
            }
            let quota = self.quotas.get(&signer).copied().unwrap_or_default();
            if quota.records >= self.max_records
                || quota.entries.saturating_add(count) > self.max_entries
            {
                later(self.refused.entry(signer).or_insert(until), until);
                return Err(ApplyError::Full {
                    records: self.max_records,
                    entries: self.max_entries,
                });
            }
            let quota = self.quotas.entry(signer).or_default();
            quota.records += 1;
            quota.entries += count;
        }
        let held = HeldRecord {
            signer,
            hold: Hold {
                iat: record.iat(),
                until,
            },
            names_kid,
            count,
            entries,
        };
        self.index.add(&held);
        let revoked: Vec<Kid> = held
            .entries
            .iter()
            .filter_map(|e| match e {
                Owned::Kid(kid) => Some(*kid),
                _ => None,
            })
            .collect();
        self.records.insert(digest, held);
        self.entries += count;
        if !revoked.is_empty() {
            self.drop_signed_by(&revoked);
        }
        Ok(Applied::Added {
            unknown_entries: record.unknown_entries(),
        })
    }

    /// Drops the records without a kid entry signed by any of `kids`, and forgets their
    /// refusals.
    fn drop_signed_by(&mut self, kids: &[Kid]) {
        for kid in kids {
            self.refused.remove(kid);
            self.quotas.remove(kid);
        }
        let before = self.records.len();
        let mut freed = 0;
        self.records.retain(|_, r| {
            let keep = r.names_kid || !kids.contains(&r.signer);
            if !keep {
                freed += r.count;
            }
            keep
        });
        if self.records.len() != before {
            self.entries = self.entries.saturating_sub(freed);
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        let mut index = Index::default();
        for record in self.records.values() {
            index.add(record);
        }
        self.index = index;
    }

    /// Decodes, verifies under `keys` and applies one record.
    pub fn apply_bytes(
        &mut self,
        bytes: &[u8],
        keys: &[TrustedKey],
        now: u64,
    ) -> Result<Applied, ApplyError> {
        let record = VerifiedRecord::verify(bytes, keys)?;
        self.apply(&record, now)
    }

    /// Drops every record whose `until + leeway` is at or before `now`; returns how many.
    pub fn prune(&mut self, now: u64) -> usize {
        let leeway = self.leeway;
        let live = |until: u64| now < until.saturating_add(leeway);
        let before = self.records.len();
        let mut freed = 0;
        let quotas = &mut self.quotas;
        self.records.retain(|_, r| {
            let keep = live(r.hold.until);
            if !keep {
                freed += r.count;
                if !r.names_kid
                    && let Some(q) = quotas.get_mut(&r.signer)
                {
                    q.records = q.records.saturating_sub(1);
                    q.entries = q.entries.saturating_sub(r.count);
                }
            }
            keep
        });
        self.quotas.retain(|_, q| q.records > 0);
        // A refusal ends when the refused record's time has passed.
        self.refused.retain(|_, until| live(*until));
        let dropped = before - self.records.len();
        if dropped > 0 {
            self.entries = self.entries.saturating_sub(freed);
            self.reindex();
        }
        dropped
    }
}

fn later(held: &mut u64, until: u64) {
    *held = (*held).max(until);
}

fn push(names: &mut HashMap<Box<str>, Vec<Hold>>, name: &str, hold: Hold) {
    match names.get_mut(name) {
        Some(holds) => holds.push(hold),
        None => {
            names.insert(name.into(), Vec::from([hold]));
        }
    }
}

fn held_since(names: &HashMap<Box<str>, Vec<Hold>>, name: Option<&str>, issued: u64) -> bool {
    name.and_then(|n| names.get(n))
        .is_some_and(|holds| holds.iter().any(|h| issued <= h.iat))
}

impl Revocations for RevocationSet {
    fn revokes(&self, q: &RevocationQuery<'_>) -> bool {
        let index = &self.index;
        index.ctis.contains_key(&q.cti)
            || index.kids.contains_key(&q.signer)
            || q.holder.is_some_and(|h| index.kids.contains_key(&h))
            || held_since(&index.subs, Some(q.sub), q.issued)
            || held_since(&index.sids, q.sid, q.issued)
            || held_since(&index.obos, q.obo, q.issued)
    }
}
