//! Where a worker keeps the revocation records it applied (`docs/spec.md` §14,
//! `docs/ledger.md`): every backend keeps each record, by the SHA-256 of its bytes, until its
//! `until` plus [`RECORD_GRACE_SECS`], and the stream offset its follower reached. A restart,
//! a crash, or another worker sharing the Redis ledger knows them at once.
//!
//! The ledger does not verify records: the follower verifies each before keeping it, and
//! again when it loads them (the trusted keys may have changed in between). At most
//! [`MAX_KEPT_RECORDS`] records are kept; past that, [`LedgerError::RevocationsFull`].

use std::collections::HashMap;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::LedgerError;

/// How long past its `until` a record is kept: the largest leeway a verifier accepts.
pub const RECORD_GRACE_SECS: u64 = laissez_verify::MAX_LEEWAY;

/// Most records one ledger keeps. Records of 4096 bytes at most: 256 MiB at worst.
pub const MAX_KEPT_RECORDS: usize = 65_536;

/// What [`RevocationStore::keep_record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kept {
    /// Kept from now on.
    New,
    /// The same record was already kept.
    AlreadyKept,
    /// Its `until` plus the grace has passed: not kept.
    Expired,
}

/// Whether a record kept until `until` is still kept at `now`.
pub const fn is_live(until: u64, now: u64) -> bool {
    now < until.saturating_add(RECORD_GRACE_SECS)
}

/// The SHA-256 of a record's bytes: its key in every backend.
pub fn record_digest(record: &[u8]) -> [u8; 32] {
    Sha256::digest(record).into()
}

/// Keeps revocation records and the follower's stream offset.
pub trait RevocationStore: Send + Sync {
    /// Keeps `record` (already verified by the caller) until `until` + the grace. Drops the
    /// records whose time has passed at `now` first.
    fn keep_record(
        &self,
        record: &[u8],
        until: u64,
        now: u64,
    ) -> impl Future<Output = Result<Kept, LedgerError>> + Send;

    /// Every record still kept at `now`, in no particular order.
    fn kept_records(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, LedgerError>> + Send;

    /// Notes that the follower of `stream` applied everything up to `offset`. An offset
    /// below the one saved is ignored (two followers sharing a ledger move it forward only).
    fn save_offset(
        &self,
        stream: &str,
        offset: u64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The offset saved for `stream`, if any.
    fn saved_offset(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<u64>, LedgerError>> + Send;
}

/// Records and offsets in memory: the [`crate::MemoryLedger`]'s, and the pure rules every
/// backend follows.
#[derive(Debug, Default)]
pub(crate) struct KeptRecords {
    records: HashMap<[u8; 32], (u64, Vec<u8>)>,
    offsets: HashMap<String, u64>,
}

impl KeptRecords {
    pub(crate) fn keep(
        &mut self,
        record: &[u8],
        until: u64,
        now: u64,
    ) -> Result<Kept, LedgerError> {
        if !is_live(until, now) {
            return Ok(Kept::Expired);
        }
        if self.records.len() >= MAX_KEPT_RECORDS {
            self.records.retain(|_, (u, _)| is_live(*u, now));
        }
        let digest = record_digest(record);
        if self.records.contains_key(&digest) {
            return Ok(Kept::AlreadyKept);
        }
        if self.records.len() >= MAX_KEPT_RECORDS {
            return Err(LedgerError::RevocationsFull {
                limit: MAX_KEPT_RECORDS,
            });
        }
        self.records.insert(digest, (until, record.to_vec()));
        Ok(Kept::New)
    }

    pub(crate) fn live(&self, now: u64) -> Vec<Vec<u8>> {
        self.records
            .values()
            .filter(|(until, _)| is_live(*until, now))
            .map(|(_, bytes)| bytes.clone())
            .collect()
    }

    pub(crate) fn save_offset(&mut self, stream: &str, offset: u64) {
        let held = self.offsets.entry(stream.to_owned()).or_insert(offset);
        *held = (*held).max(offset);
    }

    pub(crate) fn offset(&self, stream: &str) -> Option<u64> {
        self.offsets.get(stream).copied()
    }
}
