//! The records a worker holds, indexed for hash lookups (`docs/spec.md` §14).
//!
//! A query costs a fixed number of hash lookups whatever the number of records held: by cti,
//! by the signer's and the holder's kid, and by sub, sid and obo (each of those names keeps
//! the (iat, until) of the records that name it, almost always one). Records are dropped
//! once `until + leeway` has passed ([`RevocationSet::prune`]). Memory is bounded: at most
//! [`DEFAULT_MAX_RECORDS`] records and [`DEFAULT_MAX_ENTRIES`] entries by default; past
//! either, [`RevocationSet::apply`] fails with [`ApplyError::Full`] and the record is not
//! held.

use std::boxed::Box;
use std::collections::HashMap;
use std::fmt;
use std::vec::Vec;

use crate::keys::{Kid, TrustedKey};
use crate::policy::{DEFAULT_LEEWAY, MAX_LEEWAY};
use crate::revocation::{Entry, RecordError, RevocationQuery, Revocations, VerifiedRecord};

/// Most records a set holds by default.
pub const DEFAULT_MAX_RECORDS: usize = 65_536;

/// Most entries (over all records) a set holds by default.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 20;

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
}

/// Why a record was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyError {
    /// The record does not decode or does not verify.
    Record(RecordError),
    /// The set is full (`records` and `entries` are its limits).
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
                "the revocation set is full ({records} records or {entries} entries held)"
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

/// The records a worker holds, answering [`Revocations`] with hash lookups.
#[derive(Debug)]
pub struct RevocationSet {
    leeway: u64,
    max_records: usize,
    max_entries: usize,
    /// Held records by SHA-256 of their bytes: their until and number of entries.
    records: HashMap<[u8; 32], (u64, usize)>,
    entries: usize,
    /// The latest until of any record naming the cti / kid.
    ctis: HashMap<[u8; 16], u64>,
    kids: HashMap<Kid, u64>,
    subs: HashMap<Box<str>, Vec<Hold>>,
    sids: HashMap<Box<str>, Vec<Hold>>,
    obos: HashMap<Box<str>, Vec<Hold>>,
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
            ctis: HashMap::new(),
            kids: HashMap::new(),
            subs: HashMap::new(),
            sids: HashMap::new(),
            obos: HashMap::new(),
        }
    }

    /// Keeps records `leeway` seconds past their until (at most [`MAX_LEEWAY`]).
    #[must_use]
    pub fn with_leeway(mut self, leeway: u64) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Holds at most `records` records and `entries` entries.
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

    /// Whether a record is still kept at `now`.
    fn live(&self, until: u64, now: u64) -> bool {
        now < until.saturating_add(self.leeway)
    }

    /// Holds a verified record from now on. A record whose `until + leeway` has passed is
    /// not held; the same record twice is held once.
    pub fn apply(&mut self, record: &VerifiedRecord<'_>, now: u64) -> Result<Applied, ApplyError> {
        let until = record.until();
        if !self.live(until, now) {
            return Ok(Applied::Expired);
        }
        let digest = record.digest();
        if self.records.contains_key(&digest) {
            return Ok(Applied::AlreadyHeld);
        }
        let count = record.len();
        if self.records.len() >= self.max_records
            || self.entries.saturating_add(count) > self.max_entries
        {
            return Err(ApplyError::Full {
                records: self.max_records,
                entries: self.max_entries,
            });
        }
        let hold = Hold {
            iat: record.iat(),
            until,
        };
        for entry in record.entries() {
            match entry {
                Entry::Cti(cti) => later(self.ctis.entry(cti).or_insert(until), until),
                Entry::Kid(kid) => later(self.kids.entry(kid).or_insert(until), until),
                Entry::Sub(name) => push(&mut self.subs, name, hold),
                Entry::Sid(name) => push(&mut self.sids, name, hold),
                Entry::Obo(name) => push(&mut self.obos, name, hold),
                Entry::Unknown { .. } => {}
            }
        }
        self.records.insert(digest, (until, count));
        self.entries += count;
        Ok(Applied::Added {
            unknown_entries: record.unknown_entries(),
        })
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
        self.records.retain(|_, (until, count)| {
            let keep = live(*until);
            if !keep {
                freed += *count;
            }
            keep
        });
        self.entries -= freed;
        self.ctis.retain(|_, until| live(*until));
        self.kids.retain(|_, until| live(*until));
        for names in [&mut self.subs, &mut self.sids, &mut self.obos] {
            names.retain(|_, holds| {
                holds.retain(|h| live(h.until));
                !holds.is_empty()
            });
        }
        before - self.records.len()
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
        self.ctis.contains_key(&q.cti)
            || self.kids.contains_key(&q.signer)
            || q.holder.is_some_and(|h| self.kids.contains_key(&h))
            || held_since(&self.subs, Some(q.sub), q.issued)
            || held_since(&self.sids, q.sid, q.issued)
            || held_since(&self.obos, q.obo, q.issued)
    }
}
