//! One ledger type for callers that choose the backend at run time (the sidecar).

use crate::revocations::{Kept, RevocationStore, StreamMark};
use crate::{
    Begin, Cti, LeaseToken, LedgerError, MemoryLedger, Outcome, RedbLedger, RedisLedger, Usage,
    UseLedger,
};

/// A [`UseLedger`] whose backend is chosen at run time. Available with both the `redb` and the
/// `redis` features.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyLedger {
    /// The embedded file ledger.
    Redb(RedbLedger),
    /// The shared Redis ledger.
    Redis(RedisLedger),
    /// In memory: one process, nothing survives it. For tests.
    Memory(MemoryLedger),
}

impl AnyLedger {
    /// Whether the ledger answers now, without spending anything: the backend's `ping`
    /// (a read through redb's writer thread, a Redis `PING`). For readiness probes.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.ping().await,
            AnyLedger::Redis(l) => l.ping().await,
            AnyLedger::Memory(l) => l.ping(),
        }
    }

    /// What the ledger holds for `cti` under `ancestors` (their ctis, root first; empty for
    /// an envelope that is not delegated), read without spending anything: for
    /// `laissez approve`, which offers only what a worker would be granted.
    pub async fn usage_in(&self, ancestors: &[Cti], cti: &Cti) -> Result<Usage, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.usage_in(ancestors, cti).await,
            AnyLedger::Redis(l) => l.usage_in(ancestors, cti).await,
            AnyLedger::Memory(l) => Ok(l.usage_in(ancestors, cti)),
        }
    }
}

impl UseLedger for AnyLedger {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.begin(req).await,
            AnyLedger::Redis(l) => l.begin(req).await,
            AnyLedger::Memory(l) => l.begin(req).await,
        }
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.complete(cti, message_id, lease).await,
            AnyLedger::Redis(l) => l.complete(cti, message_id, lease).await,
            AnyLedger::Memory(l) => l.complete(cti, message_id, lease).await,
        }
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.release(cti, message_id, lease).await,
            AnyLedger::Redis(l) => l.release(cti, message_id, lease).await,
            AnyLedger::Memory(l) => l.release(cti, message_id, lease).await,
        }
    }
}

impl RevocationStore for AnyLedger {
    async fn keep_record(&self, record: &[u8], until: u64, now: u64) -> Result<Kept, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.keep_record(record, until, now).await,
            AnyLedger::Redis(l) => l.keep_record(record, until, now).await,
            AnyLedger::Memory(l) => l.keep_record(record, until, now).await,
        }
    }

    async fn kept_records(&self, now: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.kept_records(now).await,
            AnyLedger::Redis(l) => l.kept_records(now).await,
            AnyLedger::Memory(l) => l.kept_records(now).await,
        }
    }

    async fn save_mark(&self, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.save_mark(stream, mark).await,
            AnyLedger::Redis(l) => l.save_mark(stream, mark).await,
            AnyLedger::Memory(l) => l.save_mark(stream, mark).await,
        }
    }

    async fn saved_mark(&self, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.saved_mark(stream).await,
            AnyLedger::Redis(l) => l.saved_mark(stream).await,
            AnyLedger::Memory(l) => l.saved_mark(stream).await,
        }
    }
}
