//! Where a worker keeps the revocation records it applied (`docs/spec.md` §14,
//! `docs/ledger.md`): every backend keeps each record, by the SHA-256 of its bytes, until its
//! `until` plus [`RECORD_GRACE_SECS`], and the [`StreamMark`] its follower last caught up to.
//! A restart, a crash, or another worker sharing the Redis ledger knows them at once.
//!
//! The ledger does not verify records: the follower verifies each before keeping it, and
//! again when it loads them (the trusted keys may have changed in between). At most
//! [`MAX_KEPT_RECORDS`] records are kept; past that, [`LedgerError::RevocationsFull`].

use std::collections::HashMap;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::LedgerError;

/// How long past its `until` a record is kept: the largest leeway a verifier accepts.
pub const RECORD_GRACE_SECS: u64 = laissez_verify::policy::MAX_LEEWAY;

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

/// Where a follower last caught up: the offset of its own barrier in the stream and a proof
/// that only that barrier carries (its random value). A follower resumes there only when it
/// reads that proof at that offset again: a re-created stream never passes for the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMark {
    /// The barrier's offset.
    pub offset: u64,
    /// What the barrier carries (opaque to the ledger; at most [`MAX_PROOF_LEN`] bytes).
    pub proof: String,
}

/// The longest [`StreamMark::proof`] a ledger keeps.
pub const MAX_PROOF_LEN: usize = 256;
const _: () = assert!(MAX_PROOF_LEN == 256, "the InvalidRequest text names it");

impl StreamMark {
    /// The mark as the backends store it: `offset` and `proof` separated by one space.
    pub(crate) fn encode(&self) -> Result<String, LedgerError> {
        if self.proof.len() > MAX_PROOF_LEN {
            return Err(LedgerError::InvalidRequest(
                "a stream mark's proof is at most 256 bytes",
            ));
        }
        Ok(format!("{} {}", self.offset, self.proof))
    }

    /// The inverse of [`StreamMark::encode`].
    pub(crate) fn decode(text: &str) -> Result<Self, LedgerError> {
        text.split_once(' ')
            .and_then(|(offset, proof)| {
                Some(StreamMark {
                    offset: offset.parse().ok()?,
                    proof: proof.to_owned(),
                })
            })
            .ok_or_else(|| LedgerError::Corrupt(format!("revocation stream mark {text:?}")))
    }
}

/// Keeps revocation records and where the follower of each stream last caught up.
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

    /// Notes that a follower of `stream` caught up to `mark`, every record before it kept.
    /// Replaces the mark saved (the latest proven catch-up wins; any proven mark is safe).
    fn save_mark(
        &self,
        stream: &str,
        mark: &StreamMark,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The mark saved for `stream`, if any.
    fn saved_mark(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<StreamMark>, LedgerError>> + Send;
}

/// Records and offsets in memory: the [`crate::MemoryLedger`]'s, and the pure rules every
/// backend follows.
#[derive(Debug, Default)]
pub(crate) struct KeptRecords {
    records: HashMap<[u8; 32], (u64, Vec<u8>)>,
    marks: HashMap<String, String>,
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

    pub(crate) fn save_mark(&mut self, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
        self.marks.insert(stream.to_owned(), mark.encode()?);
        Ok(())
    }

    pub(crate) fn mark(&self, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
        self.marks
            .get(stream)
            .map(|m| StreamMark::decode(m))
            .transpose()
    }
}
